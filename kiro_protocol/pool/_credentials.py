"""Account configuration: the ``KIRO_AUTH_TOKEN`` JSON text parsed into account configs.

Pure: the adapter decides whether the environment value is a path and reads the file; this module
only sees the JSON text. Every error names the entry by index and description and says what is
wrong, and never quotes a value (values are refresh tokens and client secrets).

Accepted shape (the Go reference's, extended; docs/accounts.md, Configuration): a JSON array of
objects, or one object::

    [{"auth": "Social", "refreshToken": "...", "description": "work"},
     {"auth": "IdC", "refreshToken": "...", "clientId": "...", "clientSecret": "...",
      "region": "eu-central-1", "profileArn": "arn:aws:codewhisperer:...", "disabled": false}]

``auth`` is case-insensitive (``builder-id`` and ``iam`` mean IdC); when absent it is ``IdC`` if
both client fields are present and ``Social`` otherwise. Unknown keys are ignored (exports of other tools carry extra fields).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AuthMethod",
    "AccountConfig",
    "ConfigurationError",
    "parse_accounts",
    "parse_account",
    "region_from_profile_arn",
]

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
# arn:aws:codewhisperer:<region>:<account>:profile/<id>; other partitions (aws-cn) allowed.
_PROFILE_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):[0-9]*:\S+$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
# Kiro refresh tokens are several hundred characters; copy-paste accidents are much shorter.
_MIN_REFRESH_TOKEN = 20


class ConfigurationError(ValueError):
    """The account configuration is unusable; the message is safe to print (no secrets)."""


class AuthMethod(enum.Enum):
    """How an account's access token is refreshed."""

    #: Kiro's own auth service (Google/GitHub sign-in): ``prod.{region}.auth.desktop.kiro.dev``.
    SOCIAL = "Social"
    #: AWS IAM Identity Center / Builder ID via SSO OIDC: ``oidc.{region}.amazonaws.com/token``.
    IDC = "IdC"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountConfig:
    """One configured Kiro account. Secret fields are left out of ``repr``."""

    #: Position in the configured list (0-based), used in messages.
    index: int
    #: Stable key of this account in the state store: derived from the configured credentials,
    #: so a re-login (new refresh token in the config) starts from a clean state.
    account_id: str
    auth: AuthMethod
    #: The refresh token as configured (a rotated one lives in the state store).
    refresh_token: str = field(repr=False)
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    #: Configured accounts that are switched off stay listed (status page) but are never used.
    disabled: bool = False
    description: str | None = None
    #: Region of the auth service (refresh) and the default data-plane region.
    region: str | None = None
    profile_arn: str | None = None
    #: A configured machine id, already normalised to 64 hex chars (docs/kiro-protocol.md,
    #: Machine id).
    machine_id: str | None = None

    @property
    def label(self) -> str:
        """``#0 (work)``: how messages and the status page name this account."""
        return f"#{self.index} ({self.description})" if self.description else f"#{self.index}"


def region_from_profile_arn(profile_arn: str | None) -> str | None:
    """The region encoded in a ``profileArn`` (``arn:aws:codewhisperer:eu-central-1:…``), if any."""
    if not profile_arn:
        return None
    match = _PROFILE_ARN.match(profile_arn)
    if match is None or not _REGION.match(match.group(1)):
        return None
    return match.group(1)


def _normalise_machine_id(value: str) -> str | None:
    """64 hex chars as they are; a UUID without dashes, repeated twice ([PY]/[RS]); else None."""
    if _HEX64.match(value):
        return value.lower()
    if _UUID.match(value):
        compact = value.replace("-", "").lower()
        return compact + compact
    return None


def _account_id(auth: AuthMethod, refresh_token: str, client_id: str | None) -> str:
    digest = hashlib.sha256(f"kiro2api-account\0{auth.value}\0{client_id or ''}\0{refresh_token}".encode())
    return "acct-" + digest.hexdigest()[:16]


class _Entry:
    """Reads one raw entry, raising errors that name it."""

    def __init__(self, index: int, raw: dict[str, Any], source: str = "KIRO_AUTH_TOKEN entry") -> None:
        self.index = index
        self.raw = raw
        self.source = source
        desc = raw.get("description")
        self.description = desc.strip() if isinstance(desc, str) and desc.strip() else None

    def fail(self, problem: str) -> ConfigurationError:
        name = f"{self.source} {self.index}" + (f" ({self.description!r})" if self.description else "")
        return ConfigurationError(f"{name}: {problem}")

    def text(self, key: str, *, required: bool = False, secret: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.fail(f"`{key}` is missing or empty")
            return None
        if not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string, not {_json_type(value)}")
        if secret and value != value.strip():
            # A trailing newline from a copied file is the usual cause; say so without the value.
            raise self.fail(f"`{key}` has leading or trailing whitespace")
        return value.strip()

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(f"`{key}` must be true or false, not {_json_type(value)}")
        return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _parse_entry(entry: _Entry) -> AccountConfig:
    auth_text = entry.text("auth")
    client_id = entry.text("clientId", secret=True)
    client_secret = entry.text("clientSecret", secret=True)
    if auth_text is None:
        auth = AuthMethod.IDC if client_id and client_secret else AuthMethod.SOCIAL
    else:
        # ``builder-id`` and ``iam`` are the [PY] reference's names for IdC logins.
        by_name = {
            "social": AuthMethod.SOCIAL,
            "idc": AuthMethod.IDC,
            "builder-id": AuthMethod.IDC,
            "iam": AuthMethod.IDC,
        }
        found = by_name.get(auth_text.lower())
        if found is None:
            # Values are never quoted: a secret pasted into the wrong field must not be printed.
            raise entry.fail("`auth` must be \"Social\" or \"IdC\"")
        auth = found

    refresh_token = entry.text("refreshToken", required=True, secret=True)
    assert refresh_token is not None
    if "..." in refresh_token or "…" in refresh_token or len(refresh_token) < _MIN_REFRESH_TOKEN:
        raise entry.fail("`refreshToken` looks truncated (too short or contains '...')")

    if auth is AuthMethod.IDC:
        missing = [k for k, v in (("clientId", client_id), ("clientSecret", client_secret)) if not v]
        if missing:
            raise entry.fail(f"IdC accounts need {' and '.join(f'`{k}`' for k in missing)}")

    region = entry.text("region")
    if region is not None and not _REGION.match(region):
        raise entry.fail("`region` is not an AWS region name such as us-east-1")

    profile_arn = entry.text("profileArn")
    if profile_arn is not None and _PROFILE_ARN.match(profile_arn) is None:
        raise entry.fail("`profileArn` is not an ARN (arn:aws:codewhisperer:<region>:<account>:profile/<id>)")

    machine_id = None
    configured_mid = entry.text("machineId")
    if configured_mid is not None:
        machine_id = _normalise_machine_id(configured_mid)
        if machine_id is None:
            raise entry.fail("`machineId` must be 64 hex characters or a UUID")

    return AccountConfig(
        index=entry.index,
        account_id=_account_id(auth, refresh_token, client_id),
        auth=auth,
        refresh_token=refresh_token,
        client_id=client_id,
        client_secret=client_secret,
        disabled=entry.flag("disabled"),
        description=entry.description,
        region=region,
        profile_arn=profile_arn,
        machine_id=machine_id,
    )


def parse_accounts(text: str) -> tuple[AccountConfig, ...]:
    """Parse the ``KIRO_AUTH_TOKEN`` JSON text (an array of account objects, or one object).

    Returns every entry, disabled ones included (they are shown but never used).

    Raises:
        ConfigurationError: the text is not JSON of that shape, an entry is invalid, two entries
            hold the same refresh token, or no entry is enabled. The message names the entry
            and the problem and never contains a secret.
    """
    if not text.strip():
        raise ConfigurationError("KIRO_AUTH_TOKEN is empty: expected a JSON array of accounts")
    try:
        document = json.loads(text)
    except ValueError as exc:
        # JSONDecodeError's own message holds only the position, never the document.
        pos = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigurationError(f"KIRO_AUTH_TOKEN is not valid JSON{pos}") from None
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise ConfigurationError(
            f"KIRO_AUTH_TOKEN must be a JSON array of account objects, not {_json_type(document)}"
        )
    if not document:
        raise ConfigurationError("KIRO_AUTH_TOKEN holds no account")

    accounts: list[AccountConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(document):
        if not isinstance(raw, dict):
            raise ConfigurationError(f"KIRO_AUTH_TOKEN entry {index}: must be an object, not {_json_type(raw)}")
        entry = _Entry(index, raw)
        account = _parse_entry(entry)
        if account.refresh_token in seen:
            raise entry.fail(f"same `refreshToken` as entry {seen[account.refresh_token]}")
        seen[account.refresh_token] = index
        accounts.append(account)
    if all(a.disabled for a in accounts):
        raise ConfigurationError("KIRO_AUTH_TOKEN: every account is disabled")
    return tuple(accounts)


def parse_account(raw: object, *, index: int) -> AccountConfig:
    """One account object added at run time (the admin API), in ``KIRO_AUTH_TOKEN``'s entry shape;
    ``index``: its place after the configured accounts.

    Raises:
        ConfigurationError: the entry is invalid; the message names the field, never a value.
    """
    if not isinstance(raw, dict):
        raise ConfigurationError(f"an account must be a JSON object, not {_json_type(raw)}")
    return _parse_entry(_Entry(index, raw, source="account"))
