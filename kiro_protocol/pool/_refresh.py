"""Access-token refresh: request builders and answer parsers for Social and IdC accounts.

Social (Kiro's auth service) and IdC (AWS SSO OIDC) both take a refresh token and answer an
access token with its lifetime (docs/kiro-protocol.md, Refreshing access tokens); either may
rotate the refresh token, and then the old one stops working, so a rotated token must replace
the stored one (the Go reference throws it away and its accounts die after the first rotation).
``invalid_grant`` means the refresh token itself is dead: the account is disabled, not retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..http._messages import HttpRequest, HttpResponse
from ._credentials import AccountConfig, AuthMethod
from ._kiro_identity import ClientVersions, Endpoints, auth_region, machine_id
from ._redaction import redact

__all__ = [
    "RefreshedToken",
    "RefreshFailure",
    "build_refresh_request",
    "parse_refresh_response",
    "DEFAULT_EXPIRES_IN",
]

#: Used when a refresh answer has no ``expiresIn``: Kiro's tokens live one hour.
DEFAULT_EXPIRES_IN = 3600.0
# Bodies quoted in failure messages are cut; refresh error bodies hold no secrets, but may be long.
_MAX_QUOTED = 300
# Markers of a refresh token that will never work again ([RS]; OAuth 2.0 error codes).
_PERMANENT_MARKERS = ("invalid_grant", "Invalid refresh token", "invalid_client", "unauthorized_client")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshedToken:
    """A successful refresh. Secrets are left out of ``repr``."""

    access_token: str = field(repr=False)
    #: Absolute expiry, seconds since the epoch (``now + expiresIn``).
    expires_at: float
    #: A rotated refresh token, when the answer carried a different one.
    refresh_token: str | None = field(default=None, repr=False)
    #: Social refreshes report the account's profile ARN.
    profile_arn: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshFailure:
    """A failed refresh. ``permanent`` failures disable the account."""

    permanent: bool
    #: HTTP status, 0 when there was no answer.
    status: int
    #: Why, safe to show (no token is ever quoted).
    message: str


def build_refresh_request(
    account: AccountConfig,
    *,
    refresh_token: str,
    versions: ClientVersions,
    endpoints: Endpoints,
    invocation_id: str,
) -> HttpRequest:
    """The refresh call for ``account`` using its current ``refresh_token`` (maybe rotated).

    ``invocation_id`` is a fresh UUID drawn by the adapter (used by the IdC call).
    """
    region = auth_region(account, endpoints.default_region)
    if account.auth is AuthMethod.SOCIAL:
        url = endpoints.social_refresh.format(region=region)
        body = json.dumps({"refreshToken": refresh_token}, separators=(",", ":")).encode()
        headers: tuple[tuple[str, str], ...] = (
            ("Accept", "application/json, text/plain, */*"),
            ("Content-Type", "application/json"),
            ("User-Agent", f"KiroIDE-{versions.kiro_version}-{machine_id(account)}"),
            ("host", _host(url)),
        )
    else:
        url = endpoints.idc_refresh.format(region=region)
        body = json.dumps(
            {
                "clientId": account.client_id,
                "clientSecret": account.client_secret,
                "grantType": "refresh_token",
                "refreshToken": refresh_token,
            },
            separators=(",", ":"),
        ).encode()
        sdk = versions.oidc_sdk_version
        headers = (
            ("Content-Type", "application/json"),
            ("host", _host(url)),
            (
                "x-amz-user-agent",
                f"aws-sdk-js/{sdk} ua/2.1 os/other lang/js md/browser#unknown_unknown api/sso-oidc#{sdk} m/E KiroIDE",
            ),
            ("Accept", "*/*"),
            ("Accept-Language", "*"),
            ("sec-fetch-mode", "cors"),
            ("User-Agent", "node"),
            ("amz-sdk-invocation-id", invocation_id),
            ("amz-sdk-request", "attempt=1; max=4"),
        )
    return HttpRequest(method="POST", url=url, headers=headers, body=body)


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _quote(body: bytes, secrets: tuple[str, ...]) -> str:
    """The body as one cut line, with every secret (and anything token-shaped) replaced by ``***``."""
    text = " ".join(redact(body.decode("utf-8", "replace"), secrets).split())
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def parse_refresh_response(
    response: HttpResponse,
    *,
    now: float,
    previous_refresh_token: str,
    also_mask: tuple[str | None, ...] = (),
) -> RefreshedToken | RefreshFailure:
    """Interpret the refresh endpoint's answer (Social or IdC; both use camelCase keys).

    Args:
        response: the complete answer.
        now: the current time (seconds since the epoch), for the absolute expiry.
        previous_refresh_token: the token that was sent; never quoted, and a returned token
            equal to it is not a rotation.
        also_mask: other secrets never to quote from the body (the IdC client secret, the
            configured refresh token).
    """
    secrets = tuple(x for x in (previous_refresh_token, *also_mask) if x)
    if response.status != 200:
        quoted = _quote(response.body, secrets)
        text = response.body.decode("utf-8", "replace")
        permanent = response.status in (400, 401) and any(m in text for m in _PERMANENT_MARKERS)
        what = "the refresh token was rejected" if permanent else "refresh failed"
        return RefreshFailure(
            permanent=permanent,
            status=response.status,
            message=f"{what} (HTTP {response.status}: {quoted or 'no body'})",
        )
    try:
        obj = json.loads(response.body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return RefreshFailure(permanent=False, status=200, message="refresh answer is not a JSON object")
    access_token = obj.get("accessToken")
    if not isinstance(access_token, str) or not access_token:
        return RefreshFailure(permanent=False, status=200, message="refresh answer has no accessToken")
    expires_in = obj.get("expiresIn", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not 0 < expires_in < 10**8:
        return RefreshFailure(permanent=False, status=200, message="refresh answer has an invalid expiresIn")
    rotated = obj.get("refreshToken")
    profile_arn = obj.get("profileArn")
    return RefreshedToken(
        access_token=access_token,
        expires_at=now + float(expires_in),
        refresh_token=rotated if isinstance(rotated, str) and rotated and rotated != previous_refresh_token else None,
        profile_arn=profile_arn if isinstance(profile_arn, str) and profile_arn else None,
    )
