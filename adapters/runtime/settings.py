"""Every operator setting, read once at start-up: flags > environment > ``.env`` > defaults.

The table ``SETTINGS`` is the single source: the loader, ``kiro2api serve --help`` and
``docs/configuration.md`` are all generated from it (a test keeps the document current).
Invalid values stop start-up with a ``SettingsError`` that names every offending variable;
secret values never appear in messages or reprs.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kiro_protocol import parse_model_map

from .dotenv import DotenvError, read_dotenv
from .json_codec import JSON_CODEC_CHOICES, orjson_installed
from .logging import mask_secret
from .no_proxy import NoProxy, parse_no_proxy

__all__ = [
    "Settings",
    "SettingsError",
    "SettingSpec",
    "SETTINGS",
    "IGNORED_GO_SETTINGS",
    "load_settings",
    "settings_help",
    "configuration_markdown",
]

MIB = 1024 * 1024


class SettingsError(ValueError):
    """One or more settings are invalid. ``problems`` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


# -- value parsers: each takes the raw text and returns the value or raises ValueError ----------


def _str(raw: str) -> str:
    return raw


def _opt_str(raw: str) -> str | None:
    return raw or None


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _positive_float(unit_seconds: float) -> Callable[[str], float]:
    """A positive number in some unit, converted to seconds."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise ValueError(f"must be a positive number, got {raw!r}")
        return value * unit_seconds

    return parse


def _seconds_or_zero(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be 0 or a positive number, got {raw!r}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false (also 1/0, yes/no, on/off), got {raw!r}")


_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "fatal": "CRITICAL",
    "critical": "CRITICAL",
}


def _log_level(raw: str) -> str:
    try:
        return _LEVELS[raw.strip().lower()]
    except KeyError:
        raise ValueError(f"expected one of debug, info, warn, error, critical; got {raw!r}") from None


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower().replace("-", "_")
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {raw!r}")
        return value

    return parse


def _json_codec(raw: str) -> str:
    value = _choice(*JSON_CODEC_CHOICES)(raw)
    if value == "orjson" and not orjson_installed():
        raise ValueError("orjson is not installed (pip install 'kiro2api[fast]'), or choose auto or stdlib")
    return value


def _url_template(raw: str) -> str:
    value = raw.strip().rstrip("/")
    try:
        parts = urlsplit(value.replace("{region}", "us-east-1"))
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    if "{" in value.replace("{region}", "") or "}" in value.replace("{region}", ""):
        raise ValueError("the only placeholder allowed is {region}")
    return value


def _proxy_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        # The URL may hold a password: describe it, never quote it.
        raise ValueError("expected http://[user:password@]host:port (or https://, socks5://)")
    return value


def _state_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("memory://", "sqlite://", "redis://", "rediss://", "unix://")):
        raise ValueError("expected memory://, sqlite:///path or redis://host:port/db")
    return value


def _model_map(raw: str) -> dict[str, str]:
    # One parser for the map, the model table's own (so the rules cannot drift).
    try:
        return parse_model_map(raw)
    except ValueError as exc:
        detail = str(exc).removeprefix("KIRO_MODEL_MAP").lstrip(": ")
        raise ValueError(f"the value {detail}" if detail.startswith(("is ", "must ")) else detail) from None


def _region(raw: str) -> str:
    value = raw.strip()
    parts = value.split("-")
    if len(parts) < 3 or not all(p.isalnum() and p.islower() or p.isdigit() for p in parts):
        raise ValueError(f"expected an AWS region such as us-east-1, got {raw!r}")
    return value


def _workers(raw: str) -> int:
    if raw.strip().lower() == "auto":
        # One per core this process may run on (a CPU set narrower than the machine counts).
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return _int_range(1, 1024)(raw)


def _host(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"expected an address such as 127.0.0.1 or 0.0.0.0, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingSpec:
    """One environment variable: where it lands, how it is parsed, its default and meaning."""

    #: The environment variable.
    env: str
    #: The ``Settings`` attribute it fills (None for the ``*_FILE`` and token variables handled apart).
    attr: str | None
    #: The default as written in the docs (the raw text parsed when the variable is unset).
    default: str
    #: One line for ``--help`` and docs/configuration.md.
    help: str
    #: Parser of the raw text.
    parse: Callable[[str], Any] = _str
    #: Whether the value is a secret (masked in reprs and never quoted in errors).
    secret: bool = False
    #: Names read when ``env`` is unset: the Go original's settings that mean the same here.
    aliases: tuple[str, ...] = ()


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(env="HOST", attr="host", default="127.0.0.1", parse=_host,
                help="Address to listen on (0.0.0.0 for every interface)."),
    SettingSpec(env="PORT", attr="port", default="8080", parse=_int_range(0, 65535),
                help="Port to listen on (0 picks a free port)."),
    SettingSpec(env="KIRO_CLIENT_TOKEN", attr=None, default="(generated)", secret=True,
                help="The token clients must send (x-api-key or Authorization: Bearer). "
                     "Unset: a random token is generated at the first start, kept for the next ones in a file "
                     "only its owner reads (kiro2api-client-token beside a SQLite KIRO_STATE, else "
                     "$XDG_STATE_HOME/kiro2api/client-token) and printed at each start."),
    SettingSpec(env="KIRO_CLIENT_TOKEN_FILE", attr=None, default="",
                help="Read KIRO_CLIENT_TOKEN from this file instead (secret mounts)."),
    SettingSpec(env="KIRO_ADMIN_TOKEN", attr=None, default="", secret=True,
                help="Turns on the admin API (/admin/api/...) and the dashboard (/admin): the token that opens them "
                     "(at least 16 characters, different from every client key; see docs/admin.md). Unset: both are off."),
    SettingSpec(env="KIRO_ADMIN_TOKEN_FILE", attr=None, default="",
                help="Read KIRO_ADMIN_TOKEN from this file instead (secret mounts)."),
    SettingSpec(env="KIRO_AUTH_TOKEN", attr=None, default="", secret=True,
                help="The Kiro accounts: a JSON array, or the path of a file holding one (see docs/accounts.md). "
                     "Unset: no accounts are configured."),
    SettingSpec(env="KIRO_AUTH_TOKEN_FILE", attr=None, default="",
                help="Read the KIRO_AUTH_TOKEN JSON from this file (secret mounts)."),
    SettingSpec(env="TOKEN_SELECTION_STRATEGY", attr="token_selection_strategy", default="optimal",
                parse=_choice("optimal", "sequential", "round_robin"),
                help="How an account is picked: optimal (most remaining credits), sequential, round_robin."),
    SettingSpec(env="KIRO_STATE", attr="state_url", default="sqlite:///./kiro2api-state.db", parse=_state_url,
                help="Where account state lives: memory://, sqlite:///path or redis://host:port/db."),
    SettingSpec(env="KIRO_STATE_KEY", attr=None, default="", secret=True,
                help="Encrypts the secrets KIRO_STATE keeps (access and refresh tokens, client secrets) with "
                     "AES-256-GCM: 32 random bytes as base64url (see docs/accounts.md#secrets-at-rest). "
                     "Unset: they are stored unencrypted (said at start-up)."),
    SettingSpec(env="KIRO_STATE_KEY_FILE", attr=None, default="",
                help="Read KIRO_STATE_KEY from this file instead (secret mounts)."),
    SettingSpec(env="KIRO_STATE_KEY_PREVIOUS", attr=None, default="", secret=True,
                help="Rotation: the former KIRO_STATE_KEY (or a comma-separated list); secrets sealed with it "
                     "still open, and are sealed again with KIRO_STATE_KEY at start-up."),
    SettingSpec(env="KIRO_USAGE_RETENTION_DAYS", attr="usage_retention_days", default="30", parse=_seconds_or_zero,
                help="How long the usage record of each model request is kept in KIRO_STATE (days; see "
                     "docs/usage.md). 0: usage is not recorded."),
    SettingSpec(env="KIRO_REGION", attr="region", default="us-east-1", parse=_region,
                help="Default AWS region of the Kiro endpoints (an account's profileArn region wins)."),
    SettingSpec(env="KIRO_UPSTREAM_URL", attr="upstream_url", default="https://q.{region}.amazonaws.com",
                parse=_url_template,
                help="Base URL of generateAssistantResponse, getUsageLimits and ListAvailableModels."),
    SettingSpec(env="KIRO_SOCIAL_REFRESH_URL", attr="social_refresh_url",
                default="https://prod.{region}.auth.desktop.kiro.dev/refreshToken", parse=_url_template,
                help="Refresh endpoint of Social (Kiro desktop) accounts."),
    SettingSpec(env="KIRO_IDC_REFRESH_URL", attr="idc_refresh_url", default="https://oidc.{region}.amazonaws.com/token",
                parse=_url_template, help="Refresh endpoint of IdC (AWS SSO OIDC) accounts."),
    SettingSpec(env="SIMULATOR_WITHOUT_ACCOUNTS", attr="simulator_without_accounts", default="true", parse=_bool,
                help="Without KIRO_AUTH_TOKEN, answer from the built-in upstream simulator (said loudly at "
                     "start-up and in /health); false: model requests get 503."),
    SettingSpec(env="KIRO_MODEL_MAP", attr="model_map", default="", parse=_model_map,
                help='Extra model names: a JSON object {"client model": "Kiro model id"}.'),
    SettingSpec(env="MAX_TOOL_DESCRIPTION_LENGTH", attr="max_tool_description_length", default="10000",
                parse=_int_range(1, 10_000_000), help="Tool descriptions longer than this are cut (characters)."),
    SettingSpec(env="KIRO_JSON_CODEC", attr="json_codec", default="auto", parse=_json_codec,
                help="JSON codec of request bodies, Kiro bodies and upstream events: auto (orjson when installed, "
                     "the `fast` extra), stdlib or orjson. The same results either way; orjson is faster."),
    SettingSpec(env="DISABLE_STREAM", attr="disable_stream", default="false", parse=_bool,
                help="Buffer each answer and send it in one piece when complete (streaming clients still get SSE)."),
    SettingSpec(env="MAX_CONCURRENT_SESSIONS", attr="max_concurrent_sessions", default="0",
                parse=_int_range(0, 1_000_000),
                help="Requests served at once; beyond it clients get 529 overloaded_error. 0: no limit."),
    SettingSpec(env="KIRO_WAIT_FOR_ACCOUNT_SECONDS", attr="wait_for_account", default="30", parse=_seconds_or_zero,
                help="When every account is only briefly out (throttled, at its connection cap), a request waits "
                     "this long at most for one, first come first served; then 429 with retry-after. 0: no wait."),
    SettingSpec(env="KIRO_MAX_CONNECTIONS_PER_ACCOUNT", attr="max_connections_per_account", default="100",
                parse=_int_range(1, 100_000),
                help="Upstream calls in flight per account and process; beyond it a request takes another "
                     "account or waits (KIRO_WAIT_FOR_ACCOUNT_SECONDS)."),
    SettingSpec(env="MAX_REQUEST_BODY_BYTES", attr="max_request_body_bytes", default=str(20 * MIB),
                parse=_int_range(1024, 2**40), help="Largest request body; larger bodies get 413 unread."),
    SettingSpec(env="PING_INTERVAL_SECONDS", attr="ping_interval", default="15", parse=_positive_float(1),
                help="Interval of SSE ping events while a stream is idle."),
    SettingSpec(env="REQUEST_TIMEOUT_MINUTES", attr="request_timeout", default="10", parse=_positive_float(60),
                aliases=("SIMPLE_REQUEST_TIMEOUT_MINUTES",),
                help="Deadline of a whole non-streaming upstream call. Unset: SIMPLE_REQUEST_TIMEOUT_MINUTES of the "
                     "Go original is read instead (one deadline serves every non-streaming call here)."),
    SettingSpec(env="STREAM_REQUEST_TIMEOUT_MINUTES", attr="stream_request_timeout", default="30",
                parse=_positive_float(60), aliases=("SESSION_TIMEOUT_MINUTES",),
                help="Deadline of a whole streaming upstream call, the longest a request may hold its session. "
                     "Unset: SESSION_TIMEOUT_MINUTES of the Go original is read instead."),
    SettingSpec(env="UPSTREAM_CONNECT_TIMEOUT_SECONDS", attr="upstream_connect_timeout", default="15",
                parse=_positive_float(1), help="Time allowed to connect (TCP + TLS) to an upstream host."),
    SettingSpec(env="UPSTREAM_READ_TIMEOUT_SECONDS", attr="upstream_read_timeout", default="300",
                parse=_positive_float(1), help="Longest silence from upstream before the call fails."),
    SettingSpec(env="SERVER_HEADER_TIMEOUT_SECONDS", attr="server_header_timeout", default="60",
                parse=_positive_float(1),
                help="Time a client has to send a request head, also the idle limit of a kept-alive connection."),
    SettingSpec(env="SERVER_READ_TIMEOUT_MINUTES", attr="server_read_timeout", default="1", parse=_positive_float(60),
                help="Longest silence from a client while its request body is being read."),
    SettingSpec(env="SERVER_WRITE_TIMEOUT_MINUTES", attr="server_write_timeout", default="5",
                parse=_positive_float(60), help="Longest a write to a client may block before the client is dropped."),
    SettingSpec(env="WORKERS", attr="workers", default="1", parse=_workers,
                help="Server processes sharing the port (kiro2api serve only): a number, or auto for one per "
                     "core. They share account state through KIRO_STATE (see docs/workers.md)."),
    SettingSpec(env="SHUTDOWN_TIMEOUT_SECONDS", attr="shutdown_timeout", default="30", parse=_positive_float(1),
                help="On SIGTERM/SIGINT, how long running streams may continue before they are ended."),
    SettingSpec(env="HTTPS_PROXY", attr="https_proxy", default="", parse=_proxy_url, secret=True,
                help="Proxy for https:// upstream calls (http://[user:pass@]host:port or socks5://...); also read from https_proxy."),
    SettingSpec(env="NO_PROXY", attr="no_proxy", default="", parse=parse_no_proxy,
                help="Upstream hosts reached without HTTPS_PROXY: comma-separated domains (subdomains match; a "
                     "leading dot is optional), host:port, IP addresses or CIDR blocks, or * for all; also read "
                     "from no_proxy."),
    SettingSpec(env="TLS_CERT_FILE", attr="tls_cert_file", default="", parse=_opt_str,
                help="PEM certificate chain: with TLS_KEY_FILE, serve HTTPS (HTTP/2 and HTTP/1.1 via ALPN)."),
    SettingSpec(env="TLS_KEY_FILE", attr="tls_key_file", default="", parse=_opt_str,
                help="PEM private key matching TLS_CERT_FILE."),
    SettingSpec(env="LOG_LEVEL", attr="log_level", default="info", parse=_log_level,
                help="debug, info, warn (or warning), error, critical; any case."),
    SettingSpec(env="LOG_FORMAT", attr="log_format", default="text", parse=_choice("text", "json"),
                help="text (one readable line per event) or json (one JSON object per line)."),
    SettingSpec(env="LOG_FILE", attr="log_file", default="", parse=_opt_str,
                help="Also append log lines to this file (stderr gets them too, unless LOG_CONSOLE=false)."),
    SettingSpec(env="LOG_CONSOLE", attr="log_console", default="true", parse=_bool,
                help="false: with LOG_FILE set, log lines go to the file only, not to stderr (without LOG_FILE "
                     "they still go to stderr, and start-up says so)."),
    SettingSpec(env="METRICS_ENABLED", attr="metrics_enabled", default="true", parse=_bool,
                help="false: GET /metrics answers 404 even with the admin token (see docs/usage.md)."),
)

#: Settings of the Go original that mean nothing here: said at start-up when set, with the reason.
#: (Those it shares, or that map onto ours, are in ``SETTINGS``, some as ``aliases``.)
IGNORED_GO_SETTINGS: Mapping[str, str] = {
    "GIN_MODE": "it is the mode of Gin, the Go original's web framework, which kiro2api does not use "
                "(its debug mode also turned off upstream TLS verification, which kiro2api never does); "
                "use LOG_LEVEL=debug for detailed logs",
    "DEBUG": "use LOG_LEVEL=debug",
    "LOG_ENABLE_CALLER": "log lines name their logger (kiro2api.server, kiro2api.access...), not the calling "
                         "file and function",
    "LOG_CALLER_SKIP": "log lines name their logger, not the calling file and function",
}

_SECRET_ATTRS = frozenset({"client_token", "admin_token", "auth_token_json", "https_proxy"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The validated settings (durations in seconds). Build with ``load_settings``."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: The client token; masked in repr.
    client_token: str = field(default="", repr=False)
    #: True when no token was configured and ``client_token`` was generated at start-up.
    client_token_generated: bool = False
    #: The raw KIRO_AUTH_TOKEN JSON text (None: no accounts); parsed by ``kiro_protocol.pool._credentials``.
    auth_token_json: str | None = field(default=None, repr=False)
    token_selection_strategy: str = "optimal"
    #: KIRO_ADMIN_TOKEN (None: no admin API, no dashboard); masked in repr.
    admin_token: str | None = field(default=None, repr=False)
    simulator_without_accounts: bool = True
    state_url: str = "sqlite:///./kiro2api-state.db"
    #: KIRO_STATE_KEY then KIRO_STATE_KEY_PREVIOUS (32 bytes each; empty: secrets stored plain).
    state_keys: tuple[bytes, ...] = field(default=(), repr=False)
    usage_retention_days: float = 30.0
    region: str = "us-east-1"
    upstream_url: str = "https://q.{region}.amazonaws.com"
    social_refresh_url: str = "https://prod.{region}.auth.desktop.kiro.dev/refreshToken"
    idc_refresh_url: str = "https://oidc.{region}.amazonaws.com/token"
    model_map: Mapping[str, str] = field(default_factory=dict)
    max_tool_description_length: int = 10000
    json_codec: str = "auto"
    disable_stream: bool = False
    max_concurrent_sessions: int = 0
    wait_for_account: float = 30.0
    max_connections_per_account: int = 100
    max_request_body_bytes: int = 20 * MIB
    ping_interval: float = 15.0
    request_timeout: float = 600.0
    stream_request_timeout: float = 1800.0
    upstream_connect_timeout: float = 15.0
    upstream_read_timeout: float = 300.0
    server_header_timeout: float = 60.0
    server_read_timeout: float = 60.0
    server_write_timeout: float = 300.0
    workers: int = 1
    shutdown_timeout: float = 30.0
    https_proxy: str | None = field(default=None, repr=False)
    no_proxy: NoProxy = NoProxy()
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    log_file: str | None = None
    log_console: bool = True
    metrics_enabled: bool = True
    #: What start-up must say about the settings (recognised ones without effect here); no secret.
    notices: tuple[str, ...] = ()

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "state_keys":
                parts.append(f"state_keys=<{len(value)} key(s)>")
            elif f.name in _SECRET_ATTRS and value is not None:
                parts.append(f"{f.name}={mask_secret(str(value))!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @property
    def answers_from_simulator(self) -> bool:
        """No accounts configured, and the built-in simulator stands in for Kiro (every adapter)."""
        # With an admin token the accounts may come from the store (added at run time): real Kiro then.
        return self.auth_token_json is None and self.simulator_without_accounts and self.admin_token is None

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    def upstream_base(self, region: str | None = None) -> str:
        """The upstream base URL for ``region`` (default: ``KIRO_REGION``)."""
        return self.upstream_url.replace("{region}", region or self.region)

    def refresh_url(self, kind: str, region: str | None = None) -> str:
        """The refresh endpoint for an account of ``kind`` (``social`` or ``idc``) in ``region``."""
        template = self.idc_refresh_url if kind.lower() == "idc" else self.social_refresh_url
        return template.replace("{region}", region or self.region)


def _read_secret_file(name: str, path: str, problems: list[str]) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8-sig").strip()
    except OSError as exc:
        problems.append(f"{name}: cannot read {path!r} ({exc.strerror or exc})")
        return None


def _looks_like_json(value: str) -> bool:
    return value.lstrip()[:1] in ("[", "{")


#: An admin token opens every account and key: shorter ones are guessable.
_MIN_ADMIN_TOKEN = 16


def _admin_token(value: str | None, file: str | None, client_token: str, problems: list[str]) -> str | None:
    token, path = (value or "").strip(), (file or "").strip()
    if token and path:
        problems.append("KIRO_ADMIN_TOKEN and KIRO_ADMIN_TOKEN_FILE are both set; set only one")
        return None
    if path:
        token = _read_secret_file("KIRO_ADMIN_TOKEN_FILE", path, problems) or ""
        if not token:
            problems.append(f"KIRO_ADMIN_TOKEN_FILE: {path!r} is empty or unreadable")
            return None
    if not token:
        return None
    if any(c.isspace() for c in token) or not token.isprintable():
        problems.append("KIRO_ADMIN_TOKEN: must not contain spaces or control characters")
    elif len(token) < _MIN_ADMIN_TOKEN:
        problems.append(f"KIRO_ADMIN_TOKEN: must be at least {_MIN_ADMIN_TOKEN} characters long")
    elif token == client_token:
        # The admin token is never a client key.
        problems.append("KIRO_ADMIN_TOKEN: must differ from KIRO_CLIENT_TOKEN")
    return token


def _state_keys(value: str | None, file: str | None, previous: str | None, problems: list[str]) -> tuple[bytes, ...]:
    """KIRO_STATE_KEY (or its _FILE twin) then the KIRO_STATE_KEY_PREVIOUS list; never quoted in errors."""
    from .state_cipher import parse_state_key

    text, path = (value or "").strip(), (file or "").strip()
    if text and path:
        problems.append("KIRO_STATE_KEY and KIRO_STATE_KEY_FILE are both set; set only one")
        return ()
    if path:
        text = _read_secret_file("KIRO_STATE_KEY_FILE", path, problems) or ""
        if not text:
            problems.append(f"KIRO_STATE_KEY_FILE: {path!r} is empty or unreadable")
            return ()
    olds = [part.strip() for part in (previous or "").split(",") if part.strip()]
    if not text:
        if olds:
            problems.append("KIRO_STATE_KEY_PREVIOUS is set without KIRO_STATE_KEY: set the new key too")
        return ()
    keys = []
    for name, item in [("KIRO_STATE_KEY_FILE" if path else "KIRO_STATE_KEY", text)] + [
        (f"KIRO_STATE_KEY_PREVIOUS (item {n})", old) for n, old in enumerate(olds, 1)
    ]:
        try:
            keys.append(parse_state_key(item))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return tuple(keys)


def load_settings(
    *,
    environ: Mapping[str, str],
    env_file: str | Path | None = None,
    overrides: Mapping[str, str | None] | None = None,
    cwd: str | Path = ".",
    token_factory: Callable[[], str] = lambda: "kiro-" + secrets.token_urlsafe(24),
) -> Settings:
    """Resolve every setting: ``overrides`` (CLI flags) > ``environ`` > the ``.env`` file > defaults.

    Args:
        environ: the process environment (``os.environ``).
        env_file: an explicit ``.env`` path (must exist); None reads ``<cwd>/.env`` when present.
        overrides: values from command-line flags, keyed by variable name; None values are ignored.
        cwd: where the default ``.env`` is looked for.
        token_factory: makes the client token when none is configured.

    Raises:
        SettingsError: every invalid or unreadable setting, one line each, secrets unquoted.
    """
    problems: list[str] = []
    dotenv: dict[str, str] = {}
    path = Path(env_file) if env_file is not None else Path(cwd) / ".env"
    if env_file is not None or path.is_file():
        try:
            dotenv = read_dotenv(path)
        except FileNotFoundError:
            problems.append(f"--env-file: {str(path)!r} does not exist")
        except (OSError, DotenvError, UnicodeDecodeError) as exc:
            problems.append(f"env file: {exc}")

    def raw(name: str) -> str | None:
        if overrides is not None and overrides.get(name) is not None:
            return overrides[name]
        if name in environ:
            return environ[name]
        if name == "HTTPS_PROXY" and "https_proxy" in environ:
            return environ["https_proxy"]
        if name == "NO_PROXY" and "no_proxy" in environ:
            return environ["no_proxy"]
        return dotenv.get(name)

    values: dict[str, Any] = {}
    for spec in SETTINGS:
        if spec.attr is None:
            continue
        name, text = spec.env, raw(spec.env)
        if text is None or not text.strip():
            for alias in spec.aliases:
                alias_text = raw(alias)
                if alias_text is not None and alias_text.strip():
                    name, text = alias, alias_text
                    break
        if text is None or (text.strip() == "" and spec.default != ""):
            text = spec.default
        try:
            values[spec.attr] = spec.parse(text)
        except ValueError as exc:
            detail = "invalid value" if spec.secret else str(exc)
            if spec.secret and spec.env == "HTTPS_PROXY":
                detail = str(exc)
            problems.append(f"{name}: {detail}")

    # The client token: the variable, or its _FILE twin, or a generated one.
    token = (raw("KIRO_CLIENT_TOKEN") or "").strip()
    token_file = (raw("KIRO_CLIENT_TOKEN_FILE") or "").strip()
    if token and token_file:
        problems.append("KIRO_CLIENT_TOKEN and KIRO_CLIENT_TOKEN_FILE are both set; set only one")
    elif token_file:
        token = _read_secret_file("KIRO_CLIENT_TOKEN_FILE", token_file, problems) or ""
        if not token and not problems:
            problems.append(f"KIRO_CLIENT_TOKEN_FILE: {token_file!r} is empty")
    if token and (any(c.isspace() for c in token) or not token.isprintable()):
        problems.append("KIRO_CLIENT_TOKEN: must not contain spaces or control characters")
    generated = not token and not token_file
    if generated:
        token = token_factory()
    values["client_token"] = token
    values["client_token_generated"] = generated

    # The accounts: JSON text, or a path to it, or the _FILE twin. Kept raw; parsed by the pool.
    auth = (raw("KIRO_AUTH_TOKEN") or "").strip()
    auth_file = (raw("KIRO_AUTH_TOKEN_FILE") or "").strip()
    auth_json: str | None = None
    values["admin_token"] = _admin_token(raw("KIRO_ADMIN_TOKEN"), raw("KIRO_ADMIN_TOKEN_FILE"), token, problems)

    if auth and auth_file:
        problems.append("KIRO_AUTH_TOKEN and KIRO_AUTH_TOKEN_FILE are both set; set only one")
    elif auth_file:
        auth_json = _read_secret_file("KIRO_AUTH_TOKEN_FILE", auth_file, problems)
    elif auth:
        if _looks_like_json(auth):
            auth_json = auth
        elif len(auth) < 4096 and Path(cwd, auth).is_file():
            auth_json = _read_secret_file("KIRO_AUTH_TOKEN", str(Path(cwd, auth)), problems)
        else:
            # Never echo the value: it may be a mangled secret rather than a path.
            problems.append("KIRO_AUTH_TOKEN: neither a JSON array/object nor the path of an existing file")
    if auth_json is not None:
        try:
            json.loads(auth_json)
        except ValueError as exc:
            problems.append(f"KIRO_AUTH_TOKEN: not valid JSON (line {getattr(exc, 'lineno', '?')}, "
                            f"column {getattr(exc, 'colno', '?')})")
    values["auth_token_json"] = auth_json

    values["state_keys"] = _state_keys(raw("KIRO_STATE_KEY"), raw("KIRO_STATE_KEY_FILE"),
                                       raw("KIRO_STATE_KEY_PREVIOUS"), problems)

    cert, key = values.get("tls_cert_file"), values.get("tls_key_file")
    if (cert is None) != (key is None):
        problems.append("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
    for name, tls_path in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
        if tls_path is not None and not Path(cwd, tls_path).is_file():
            problems.append(f"{name}: {tls_path!r} does not exist")

    notices = [
        f"{name} is recognised (a setting of the Go original) but has no effect here: {why}."
        for name, why in IGNORED_GO_SETTINGS.items()
        if (raw(name) or "").strip()
    ]
    if values.get("log_console") is False and not values.get("log_file"):
        notices.append("LOG_CONSOLE=false has no effect without LOG_FILE: log lines still go to stderr.")
    values["notices"] = tuple(notices)

    if problems:
        raise SettingsError(problems)
    return Settings(**values)


def settings_help() -> str:
    """The settings table as plain text, for ``--help``."""
    lines = ["settings (flags > environment > .env > default):"]
    for spec in SETTINGS:
        default = spec.default if spec.default != "" else "unset"
        lines.append(f"  {spec.env} (default: {default})")
        lines.append(f"      {spec.help}")
    return "\n".join(lines)


def configuration_markdown() -> str:
    """docs/configuration.md, generated from ``SETTINGS``."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated from adapters/runtime/settings.py (SETTINGS); tests/runtime/test_settings.py checks it is current. -->",
        "",
        "kiro2api reads its settings once at start-up. Precedence: command-line flags (`--host`, `--port`, "
        "`--env-file`) > environment variables > the `.env` file in the working directory (or the file "
        "named by `--env-file`) > the defaults below. An invalid value stops start-up with a message "
        "naming the variable; secret values are never printed.",
        "",
        "Booleans accept `true/1/yes/on` and `false/0/no/off` in any case. Durations are numbers and may "
        "have a fraction (`0.5`). URLs may contain `{region}`, replaced by the account's region or "
        "`KIRO_REGION`.",
        "",
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for spec in SETTINGS:
        default = f"`{spec.default}`" if spec.default not in ("", "(generated)") else (
            "generated" if spec.default else "unset")
        meaning = spec.help.replace("|", "\\|")
        out.append(f"| `{spec.env}` | {default} | {meaning} |")
    out += [
        "",
        "## Settings of the Go original",
        "",
        "A configuration written for the Go kiro2api works here. Its settings are read as follows "
        "(booleans in any of the spellings above):",
        "",
    ]
    for spec in SETTINGS:
        for alias in spec.aliases:
            out.append(f"* `{alias}`: read as `{spec.env}` when that is unset.")
    out.append("* `LOG_CONSOLE`, `METRICS_ENABLED`: as in the table above.")
    for name, why in IGNORED_GO_SETTINGS.items():
        out.append(f"* `{name}`: recognised, no effect here (start-up says so when it is set): {why}.")
    out.append("")
    return "\n".join(out)
