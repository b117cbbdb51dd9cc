"""The simulator's memory: issued access tokens, refresh tokens, counters, received requests.

Refresh tokens are not registered in advance: any token that looks like one is accepted
(unless revoked or containing ``invalid``), so a gateway can be pointed at the simulator with
whatever account configuration. A refresh token can also name per-account behaviour with a
tag (``sim-throttle`` ...; see ``ACCOUNT_TAGS``), which is how failover between accounts is
tested: one account always throttled, the next one fine.
"""

from __future__ import annotations

import collections
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "SimulatorConfig",
    "SimulatorState",
    "IssuedToken",
    "TokenProblem",
    "ACCOUNT_TAGS",
    "FREE_TIER_TAG",
    "DEMO_PROFILE_ARN",
]

#: The profile ARN the Social refresh answers (region us-east-1, like a default Kiro account).
DEMO_PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:699475941385:profile/KIROSIMULATOR"
#: Refresh-token tags that make every generate call of the account fail: tag -> failure marker.
ACCOUNT_TAGS = {
    "sim-throttle": "throttle",
    "sim-quota": "quota",
    "sim-suspended": "suspended",
    "sim-server-error": "server-error",
    "sim-forbidden": "expired-token",
}
#: A refresh token with this tag belongs to a free-tier account: no Opus (docs/simulator.md).
FREE_TIER_TAG = "sim-free"
# Kiro refresh tokens are long printable strings; anything shorter or with spaces is a paste accident.
_LOOKS_VALID = re.compile(r"^[\x21-\x7e]{20,8192}$")
# A rotated token is its family's root plus this suffix; rotating again replaces the suffix.
_ROTATION = re.compile(r"~rot[0-9a-f]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """How the simulator behaves. The defaults suit a demo; tests shorten the times."""

    #: Pause between two frames of a stream, milliseconds (0: as fast as the socket takes them).
    pace_ms: float = 5.0
    #: Lifetime of issued access tokens, seconds (``expiresIn``).
    token_ttl: float = 3600.0
    #: Whether refreshes return a new refresh token (both flows may rotate).
    rotate_refresh_tokens: bool = True
    #: Whether a rotated-away refresh token stops working (as it eventually does at Kiro).
    revoke_rotated: bool = False
    #: How many received requests ``GET /_sim/requests`` keeps.
    history_size: int = 100
    #: The profile ARN given to Social accounts.
    profile_arn: str = DEMO_PROFILE_ARN
    #: The body budget of the linter (bytes, image data excepted); beyond it: input too long.
    max_body_bytes: int | None = 1_200_000
    #: The history-length limit of the linter (entries).
    max_history_entries: int | None = 200
    #: Seconds an idle kept-alive connection stays open before the simulator closes it (Kiro
    #: closes them after about a minute; tests shorten it to watch the gateway let them go).
    keepalive_seconds: float = 60.0
    #: One INFO log line per request (the standalone simulator); in-process it would double the
    #: gateway's access log, so it is DEBUG there.
    log_requests: bool = False


@dataclass(slots=True, kw_only=True)
class IssuedToken:
    """An access token the simulator issued."""

    #: The refresh-token family it was issued for (the root token, rotation suffix removed).
    family: str = field(repr=False)
    #: ``social`` or ``idc``.
    flow: str
    expires_at: float
    profile_arn: str | None = None

    @property
    def account(self) -> str:
        """A stable, non-secret label of the family."""
        return account_label(self.family)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(tag for tag in ACCOUNT_TAGS if tag in self.family)

    @property
    def free_tier(self) -> bool:
        return FREE_TIER_TAG in self.family


class TokenProblem(Exception):
    """A refresh token was refused; ``permanent`` for ``invalid_grant``."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def account_label(family: str) -> str:
    """``acct-1a2b3c4d`` (plus the tags the token carries): names an account without its token."""
    digest = hashlib.sha256(family.encode()).hexdigest()[:8]
    tags = [tag for tag in ACCOUNT_TAGS if tag in family]
    return f"acct-{digest}" + "".join(f"[{t}]" for t in tags)


class SimulatorState:
    """Everything the simulator remembers between requests (one per simulator)."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        clock: Callable[[], float] = time.time,
        new_secret: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self.config = config
        self._clock = clock
        self._new_secret = new_secret
        # Mixed into every answer's seed, so tool-use ids differ between simulator runs (and
        # after a reset) even though the request counter starts again.
        self._salt = int.from_bytes(new_secret(8).encode()[:6], "big")
        self._answers = 0  # not reset: ids stay unique across resets too
        self.reset()

    def reset(self) -> None:
        """Forget every token, counter and record (``POST /_sim/reset``)."""
        self.tokens: dict[str, IssuedToken] = {}
        self.revoked: set[str] = set()
        self.records: collections.deque[dict[str, object]] = collections.deque(maxlen=self.config.history_size)
        #: (scenario, prompt) of ``:once`` failures that already fired.
        self.fired: set[tuple[str, str]] = set()
        #: Requests per endpoint and per account label.
        self.counters: collections.Counter[str] = collections.Counter()
        self.per_account: collections.Counter[str] = collections.Counter()
        self.sequence = 0
        #: Until then every generate call answers 429 (``POST /_sim/throttle``).
        self.throttled_until = 0.0
        #: Until then both refresh endpoints answer 503 (``POST /_sim/refresh-outage``).
        self.refresh_down_until = 0.0

    def now(self) -> float:
        return self._clock()

    def next_seed(self) -> int:
        """A seed for the next answer: unique per request of this simulator."""
        self._answers += 1
        return self._salt * 1_000_003 + self._answers

    # -- refresh tokens ----------------------------------------------------------------------

    def check_refresh_token(self, token: object) -> str:
        """The family of an acceptable refresh token.

        Raises:
            TokenProblem: not a string that looks like a token (not permanent), or revoked /
                containing ``invalid`` (permanent: ``invalid_grant``).
        """
        if not isinstance(token, str) or not _LOOKS_VALID.match(token):
            raise TokenProblem("refreshToken is missing or malformed", permanent=False)
        if "invalid" in token.lower() or token in self.revoked:
            raise TokenProblem("Invalid refresh token provided", permanent=True)
        return _ROTATION.sub("", token)

    def issue(self, refresh_token: str, *, flow: str) -> tuple[str, float, str]:
        """Issue an access token for an accepted refresh token.

        Returns (access token, expiresIn seconds, the refresh token to hand back: rotated or the same).
        """
        family = self.check_refresh_token(refresh_token)
        access = "aoa" + self._new_secret(48)
        profile = self.config.profile_arn if flow == "social" else None
        ttl = self.config.token_ttl
        self.tokens[access] = IssuedToken(family=family, flow=flow, expires_at=self.now() + ttl, profile_arn=profile)
        returned = refresh_token
        if self.config.rotate_refresh_tokens:
            returned = f"{family}~rot{self._new_secret(6).encode().hex()[:8]}"
            if self.config.revoke_rotated:
                self.revoked.add(refresh_token)
        self.counters[f"refresh.{flow}"] += 1
        return access, ttl, returned

    def revoke(self, refresh_token: str) -> None:
        self.revoked.add(refresh_token)

    # -- access tokens -----------------------------------------------------------------------

    def bearer(self, authorization: str | None) -> IssuedToken | None:
        """The issued, unexpired token of an ``Authorization: Bearer`` header, else None."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        issued = self.tokens.get(token.strip())
        if issued is None or issued.expires_at <= self.now():
            return None
        return issued

    def expire_all(self) -> int:
        """Make every issued access token expired now; returns how many there were."""
        now = self.now()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)
        return len(self.tokens)

    # -- scenarios and records ---------------------------------------------------------------

    def fire_once(self, scenario: str, prompt: str) -> bool:
        """True the first time a ``:once`` failure is asked for with this prompt, then False."""
        key = (scenario, prompt)
        if key in self.fired:
            return False
        self.fired.add(key)
        return True

    def record(self, entry: dict[str, object]) -> dict[str, object]:
        """Keep ``entry`` (a received request) among the last ``history_size``; returns it."""
        self.sequence += 1
        entry = {"id": self.sequence, "time": self.now(), **entry}
        self.records.append(entry)
        return entry
