"""A named client key: what the state store keeps about it, and how a new one is made.

The store never holds a key itself, only its SHA-256 digest: a key is shown once, when it is
made, and a leaked store does not open the gateway. Keys carry 256 random bits, so a plain
(unsalted, fast) digest is enough: there is no dictionary to attack.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .._errors import LocalProtocolError

__all__ = [
    "KEY_PREFIX",
    "BUILTIN_KEY_NAME",
    "KeyLimits",
    "ClientKey",
    "key_digest",
    "make_client_key",
    "check_key_name",
    "parse_models",
    "parse_expiry",
    "format_time",
]

#: Every generated key starts with this, so a key is recognisable in a config file or a leak scan.
KEY_PREFIX = "k2a_"
#: The name ``KIRO_CLIENT_TOKEN`` goes by in logs and limits; no stored key may take it.
BUILTIN_KEY_NAME = "default"
_MIN_RANDOM_BYTES = 24
# Names end up in log lines, metric labels and URLs: a short safe alphabet, nothing to escape.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MODEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\*?")
_RELATIVE = re.compile(r"(\d{1,6})([dhm])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyLimits:
    """What one key may do; 0 (or no models) means no limit of that kind."""

    #: Model requests started per rolling minute.
    rpm: int = 0
    #: Model requests running at once.
    concurrency: int = 0
    #: Input plus output tokens per UTC day.
    tokens_per_day: int = 0
    #: Input plus output tokens per UTC calendar month.
    tokens_per_month: int = 0
    #: Model ids the key may ask for; a trailing ``*`` matches any suffix. Empty: every model.
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("rpm", "concurrency", "tokens_per_day", "tokens_per_month"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LocalProtocolError(f"{name} must be a whole number >= 0, got {value!r}.", param=name)
        for pattern in self.models:
            if not _MODEL_PATTERN.fullmatch(pattern):
                raise LocalProtocolError(f"Not a model id or pattern: {pattern!r}.", param="models")

    @property
    def counted(self) -> bool:
        """Whether requests with this key need shared counters (rate, concurrency or tokens)."""
        return bool(self.rpm or self.concurrency or self.tokens_per_day or self.tokens_per_month)

    @property
    def token_quota(self) -> bool:
        return bool(self.tokens_per_day or self.tokens_per_month)

    def to_dict(self) -> dict[str, object]:
        return {
            "rpm": self.rpm,
            "concurrency": self.concurrency,
            "tokens_per_day": self.tokens_per_day,
            "tokens_per_month": self.tokens_per_month,
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientKey:
    """A named client key as stored: never the key itself."""

    name: str
    #: SHA-256 of the key, lower-case hex.
    digest: str
    limits: KeyLimits = field(default_factory=KeyLimits)
    #: When it was made (epoch seconds).
    created_at: float = 0.0
    #: When it stops opening the gateway (epoch seconds); None: never.
    expires_at: float | None = None
    disabled: bool = False
    #: The key's first characters (``k2a_Ab3d``), so an operator can tell keys apart; not enough
    #: to guess the rest.
    hint: str = ""

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def to_dict(self) -> dict[str, object]:
        """Everything stored about the key; the digest is included (it is not the key)."""
        return {
            "name": self.name,
            "digest": self.digest,
            "limits": self.limits.to_dict(),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "disabled": self.disabled,
            "hint": self.hint,
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> ClientKey:
        """The key stored as ``text`` (``to_json``'s output).

        Raises:
            ValueError: not a stored key (a damaged store).
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a stored client key must be a JSON object")
        limits = data.get("limits") or {}
        try:
            return cls(
                name=str(data["name"]),
                digest=str(data["digest"]),
                limits=KeyLimits(
                    rpm=int(limits.get("rpm", 0)),
                    concurrency=int(limits.get("concurrency", 0)),
                    tokens_per_day=int(limits.get("tokens_per_day", 0)),
                    tokens_per_month=int(limits.get("tokens_per_month", 0)),
                    models=tuple(str(m) for m in limits.get("models", ())),
                ),
                created_at=float(data.get("created_at", 0.0)),
                expires_at=None if data.get("expires_at") is None else float(data["expires_at"]),
                disabled=bool(data.get("disabled", False)),
                hint=str(data.get("hint", "")),
            )
        except (KeyError, TypeError, AttributeError, LocalProtocolError) as exc:
            raise ValueError(f"a stored client key is damaged: {type(exc).__name__}") from None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def key_digest(key: str) -> str:
    """The SHA-256 of a key as presented by a client (any text; never fails)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def check_key_name(name: str) -> str:
    """``name`` if it can name a key: 1-64 letters, digits, ``.``, ``_``, ``-``, starting with a
    letter or digit, and not the built-in key's name.

    Raises:
        LocalProtocolError: 400 saying what a name may be.
    """
    if not _NAME.fullmatch(name):
        raise LocalProtocolError(
            "A key name is 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.",
            param="name",
        )
    if name == BUILTIN_KEY_NAME:
        raise LocalProtocolError(f"{BUILTIN_KEY_NAME!r} is the name of KIRO_CLIENT_TOKEN; pick another.", param="name")
    return name


def make_client_key(
    name: str,
    *,
    random_bytes: bytes,
    now: float,
    limits: KeyLimits | None = None,
    expires_at: float | None = None,
) -> tuple[ClientKey, str]:
    """A new key named ``name``: the record to store and the key to show once.

    Args:
        random_bytes: at least 24 bytes from a cryptographic source (the adapter draws them).
        now: the creation time.

    Raises:
        LocalProtocolError: a bad name, or an expiry not after ``now``.
        ValueError: too little randomness (a programming error).
    """
    check_key_name(name)
    if len(random_bytes) < _MIN_RANDOM_BYTES:
        raise ValueError(f"a client key needs at least {_MIN_RANDOM_BYTES} random bytes")
    if expires_at is not None and expires_at <= now:
        raise LocalProtocolError("The expiry must be in the future.", param="expires_at")
    secret = KEY_PREFIX + base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")
    record = ClientKey(
        name=name,
        digest=key_digest(secret),
        limits=limits or KeyLimits(),
        created_at=now,
        expires_at=expires_at,
        hint=secret[: len(KEY_PREFIX) + 4],
    )
    return record, secret


def parse_models(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"a, b"`` (or a list) -> ``("a", "b")``: blanks dropped, duplicates kept once."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def parse_expiry(text: str, now: float) -> float:
    """An expiry as an operator writes it -> epoch seconds.

    ``30d``, ``12h``, ``90m``: that long from ``now``. An ISO 8601 date (``2026-01-31``: that
    day's 00:00 UTC) or date and time (UTC unless it names an offset).

    Raises:
        LocalProtocolError: anything else, or a time not after ``now``.
    """
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        when = now + int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    else:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise LocalProtocolError(
                f"Not an expiry: {text!r}; use a date (2026-01-31), a UTC date and time "
                "(2026-01-31T18:00:00Z) or a duration (30d, 12h, 90m).",
                param="expires",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        when = moment.timestamp()
    if when <= now:
        raise LocalProtocolError(f"The expiry {format_time(when)} is not in the future.", param="expires")
    return when


def format_time(epoch: float) -> str:
    """Epoch seconds as ``2026-01-31T00:00:00Z`` (what error messages and listings show)."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
