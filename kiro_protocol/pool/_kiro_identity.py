"""Who an account looks like to Kiro: machine id, regions, endpoints, and the request headers.

Kiro's services expect the Kiro IDE's own client strings; accounts that look unlike the IDE, or
that all share one machine id (the Go reference's constant), are what peers' users report as bans
(docs/kiro-protocol.md, What peers get wrong). So: one stable machine id per account, the
IDE's header set, client version strings configurable with the newest values seen as defaults,
and every call of an account sent to the region of its ``profileArn`` (docs/kiro-protocol.md,
Request headers, and Endpoints and regions).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from urllib.parse import quote

from ._credentials import AccountConfig, region_from_profile_arn

__all__ = [
    "KiroOperation",
    "request_head",
    "ClientVersions",
    "Endpoints",
    "DEFAULT_REGION",
    "machine_id",
    "api_region",
    "auth_region",
    "generate_headers",
    "mcp_headers",
    "usage_limits_headers",
]

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientVersions:
    """The client strings sent upstream. Defaults: newest official Kiro IDE values seen
    (docs/kiro-protocol.md, Client version strings)."""

    kiro_version: str = "0.11.107"
    #: aws-sdk-js of the streaming client (``generateAssistantResponse``).
    streaming_sdk_version: str = "1.0.34"
    #: aws-sdk-js of the runtime client (``getUsageLimits``).
    runtime_sdk_version: str = "1.0.0"
    #: aws-sdk-js of the SSO OIDC client (IdC refresh).
    oidc_sdk_version: str = "3.980.0"
    node_version: str = "22.22.0"
    system_version: str = "darwin#24.6.0"
    #: ``x-amzn-kiro-agent-mode``: ``vibe`` for the current IDE (the Go reference sent ``spec``).
    agent_mode: str = "vibe"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """URL templates; ``{region}`` is replaced per account. Overridable for tests and simulators."""

    api_base: str = "https://q.{region}.amazonaws.com"
    #: Region of accounts that configure none (``KIRO_REGION``).
    default_region: str = DEFAULT_REGION
    social_refresh: str = "https://prod.{region}.auth.desktop.kiro.dev/refreshToken"
    idc_refresh: str = "https://oidc.{region}.amazonaws.com/token"

    def generate_url(self, region: str) -> str:
        return self.api_base.format(region=region) + "/generateAssistantResponse"

    def mcp_url(self, region: str) -> str:
        return self.api_base.format(region=region) + "/mcp"

    def usage_limits_url(self, region: str, profile_arn: str | None) -> str:
        url = self.api_base.format(region=region) + "/getUsageLimits?origin=AI_EDITOR&resourceType=AGENTIC_REQUEST"
        if profile_arn:
            url += "&profileArn=" + quote(profile_arn, safe="")
        return url

    def models_url(self, region: str, profile_arn: str | None) -> str:
        url = self.api_base.format(region=region) + "/ListAvailableModels?origin=AI_EDITOR&maxResults=50"
        if profile_arn:
            url += "&profileArn=" + quote(profile_arn, safe="")
        return url


def machine_id(account: AccountConfig) -> str:
    """The account's machine id: the configured one, else SHA-256("KotlinNativeAPI/" + token).

    Derived from the *configured* refresh token, not a rotated one, so that it stays the same
    for the account's whole life (a changing machine id looks like a new device to Kiro).
    """
    if account.machine_id is not None:
        return account.machine_id
    return hashlib.sha256(f"KotlinNativeAPI/{account.refresh_token}".encode()).hexdigest()


def api_region(account: AccountConfig, profile_arn: str | None = None, default: str = DEFAULT_REGION) -> str:
    """Data-plane region: the region of the (current) profileArn, else the configured one."""
    return (
        region_from_profile_arn(profile_arn)
        or region_from_profile_arn(account.profile_arn)
        or account.region
        or default
    )


def auth_region(account: AccountConfig, default: str = DEFAULT_REGION) -> str:
    """Region of the refresh endpoint: where the account signed in (the configured region)."""
    return account.region or default


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def generate_headers(
    *,
    account: AccountConfig,
    access_token: str,
    url: str,
    invocation_id: str,
    versions: ClientVersions,
) -> tuple[tuple[str, str], ...]:
    """Headers of ``generateAssistantResponse``: the [PY]/[RS] set with the newest versions
    (docs/kiro-protocol.md, Request headers).

    No ``Connection: close`` (the adapter pools connections per account) and no ``Accept``
    (the IDE sends none; the answer is an EventStream either way).

    ``invocation_id`` is a fresh UUID the adapter draws per request (the core has no randomness).
    """
    mid = machine_id(account)
    v = versions
    ide = f"KiroIDE-{v.kiro_version}-{mid}"
    sdk = v.streaming_sdk_version
    return (
        ("Content-Type", "application/json"),
        ("x-amzn-codewhisperer-optout", "true"),
        ("x-amzn-kiro-agent-mode", v.agent_mode),
        ("x-amz-user-agent", f"aws-sdk-js/{sdk} {ide}"),
        (
            "User-Agent",
            f"aws-sdk-js/{sdk} ua/2.1 os/{v.system_version} lang/js md/nodejs#{v.node_version} "
            f"api/codewhispererstreaming#{sdk} m/E {ide}",
        ),
        ("host", _host(url)),
        ("amz-sdk-invocation-id", invocation_id),
        ("amz-sdk-request", "attempt=1; max=3"),
        ("Authorization", f"Bearer {access_token}"),
    )


def mcp_headers(
    *,
    account: AccountConfig,
    access_token: str,
    url: str,
    invocation_id: str,
    versions: ClientVersions,
    profile_arn: str | None,
) -> tuple[tuple[str, str], ...]:
    """Headers of an ``/mcp`` call (web search): the chat set without the opt-out and agent-mode
    headers, plus ``x-amzn-kiro-profile-arn`` when the account has one (Kiro refuses a search
    of an account whose profile it cannot see; docs/kiro-protocol.md, Web search through MCP)."""
    skip = ("x-amzn-codewhisperer-optout", "x-amzn-kiro-agent-mode")
    chat = generate_headers(
        account=account, access_token=access_token, url=url, invocation_id=invocation_id, versions=versions
    )
    headers = tuple(h for h in chat if h[0] not in skip)
    return headers + (("x-amzn-kiro-profile-arn", profile_arn),) if profile_arn else headers


class KiroOperation(enum.Enum):
    """What a call asks Kiro for: the same account, selection and failover, another endpoint."""

    #: ``generateAssistantResponse``: a model answer (an EventStream).
    GENERATE = "generate"
    #: ``/mcp`` ``tools/call`` of ``web_search``: search results (one JSON-RPC answer).
    WEB_SEARCH = "web_search"


def request_head(
    operation: KiroOperation,
    *,
    account: AccountConfig,
    access_token: str,
    profile_arn: str | None,
    endpoints: Endpoints,
    versions: ClientVersions,
    invocation_id: str,
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """URL and headers of ``operation`` for an account, in the region of its profileArn."""
    region = api_region(account, profile_arn, endpoints.default_region)
    if operation is KiroOperation.WEB_SEARCH:
        url = endpoints.mcp_url(region)
        headers = mcp_headers(
            account=account,
            access_token=access_token,
            url=url,
            invocation_id=invocation_id,
            versions=versions,
            profile_arn=profile_arn,
        )
        return url, headers
    url = endpoints.generate_url(region)
    return url, generate_headers(
        account=account, access_token=access_token, url=url, invocation_id=invocation_id, versions=versions
    )


def usage_limits_headers(
    *,
    account: AccountConfig,
    access_token: str,
    url: str,
    invocation_id: str,
    versions: ClientVersions,
) -> tuple[tuple[str, str], ...]:
    """Headers of ``getUsageLimits``: the runtime client's set (docs/kiro-protocol.md, Request
    headers)."""
    mid = machine_id(account)
    v = versions
    ide = f"KiroIDE-{v.kiro_version}-{mid}"
    sdk = v.runtime_sdk_version
    return (
        ("x-amz-user-agent", f"aws-sdk-js/{sdk} {ide}"),
        (
            "User-Agent",
            f"aws-sdk-js/{sdk} ua/2.1 os/{v.system_version} lang/js md/nodejs#{v.node_version} "
            f"api/codewhispererruntime#{sdk} m/N,E {ide}",
        ),
        ("host", _host(url)),
        ("amz-sdk-invocation-id", invocation_id),
        ("amz-sdk-request", "attempt=1; max=1"),
        ("Authorization", f"Bearer {access_token}"),
    )
