"""What the pool's step machines ask their driver to do, one decision at a time.

Naming: imperative nouns for actions the driver performs (``LoadState``, ``Refresh``,
``SendUpstream``), and the two endings ``Respond`` (answer the client with an error) and ``Done``.
After every action the driver feeds the result back with the matching method of the machine
(``state_loaded``, ``lease_result``, ``waited``, ``refresh_answered`` ...); ``Persist`` and
``Retry`` need no answer. Don't subclass these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._errors import ProtocolError
from ..http._messages import HttpRequest
from ._credentials import AccountConfig
from ._updates import AccountUpdate

__all__ = [
    "Decision",
    "LoadState",
    "AcquireLease",
    "Wait",
    "Refresh",
    "CheckUsage",
    "CheckModels",
    "Persist",
    "Retry",
    "SendUpstream",
    "StartStream",
    "Respond",
    "Done",
]


class Decision:
    """Base class of every decision."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadState(Decision):
    """Read these accounts' states from the store; feed them to ``state_loaded``."""

    account_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AcquireLease(Decision):
    """Try to take the refresh lease of an account for ``ttl`` seconds; feed ``lease_result``."""

    account_id: str
    owner: str
    ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Decision):
    """Sleep, then call ``waited``: another request is refreshing the account, or (``line``)
    every account is briefly out.

    ``line``: the request waits for an account. The driver keeps such requests in a line in
    arrival order (first come, first served): a request keeps its place across its waits
    until it sends, answers or ends, may be woken early when a connection slot frees, and the
    in-flight counts it is fed (``state_loaded``) count each request ahead of it as one more call
    on every account, so a freed slot goes to the request that waited longest.
    """

    seconds: float
    line: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Refresh(Decision):
    """Send this refresh request; feed ``refresh_answered`` (or ``refresh_failed`` with no answer)."""

    account: AccountConfig
    request: HttpRequest = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckUsage(Decision):
    """Send this getUsageLimits request; feed ``usage_answered`` (or ``usage_failed``)."""

    account: AccountConfig
    request: HttpRequest = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckModels(Decision):
    """Send this ListAvailableModels request; feed ``models_answered`` (or ``models_failed``)."""

    account: AccountConfig
    request: HttpRequest = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist(Decision):
    """Apply ``update`` atomically to the stored state, add ``counters``, release a lease.

    No answer is fed back; the machine already applied the update to its own copy.
    """

    account_id: str
    update: AccountUpdate | None = None
    #: ``(name, amount)`` pairs added to the account's usage counters.
    counters: tuple[tuple[str, float], ...] = ()
    #: Release the refresh lease held by this owner.
    release_lease: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry(Decision):
    """For the log: the request moves on (``account`` failed with ``reason``). No answer."""

    account: AccountConfig
    reason: str
    #: Whether the same account is tried again (after a refresh) rather than another.
    same_account: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SendUpstream(Decision):
    """Send the generate request; feed ``upstream_started`` on 200, else ``upstream_answered``
    with status and error body, or ``upstream_failed`` when there was no answer."""

    account: AccountConfig
    request: HttpRequest = field(repr=False)
    #: 1 for the first send of this client request.
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartStream(Decision):
    """Upstream answered 200: translate its stream to the client now."""

    account: AccountConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class Respond(Decision):
    """Final: answer the client with this error (nothing has been sent yet)."""

    error: ProtocolError


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Decision):
    """Final: nothing more to do."""
