"""The per-request step machine: account, token, upstream call, failover (docs/architecture.md).

An ``Exchange`` asks for what it needs one ``Decision`` at a time (``next_decision(now)``) and
is fed the answers. It never blocks and never does IO, so the async (anyio) and sync (gevent)
drivers are the same short loop: ask, do what the decision names (read the store, take a lease,
sleep, send a refresh or the generate request, persist, stream), feed the result back, until
``Respond`` or ``Done``. docs/accounts.md has the table of decisions and feeds;
tests/exchange_runner.py is a complete reference driver.

Failure rules (issue 5) are the table of ``_pool_failures.judge_failure``; refresh failures:
``invalid_grant`` disables the account, anything else backs it off and the request moves on (or
sends with the old token while it is still valid).

Sends are bounded by ``PoolSettings.max_attempts``, and retries happen only before the first
byte reached the client (``client_bytes_sent``).
"""

from __future__ import annotations

import enum
import math
from typing import Callable, Mapping, Sequence

from .._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ..http._messages import HttpRequest, HttpResponse
from ._accounts import (
    AccountState,
    PoolSettings,
    Strategy,
    TokenStatus,
    choose_account,
    comes_back_at,
    model_not_offered_error,
    no_account_error,
    offers_model,
    token_status,
    unavailable_reason,
)
from ._credentials import AccountConfig
from ._decisions import (
    AcquireLease,
    Decision,
    Done,
    LoadState,
    Persist,
    Refresh,
    Respond,
    Retry,
    SendUpstream,
    StartStream,
    Wait,
)
from ._failures import Verdict, judge_failure, retry_after_seconds
from ._kiro_identity import KiroOperation, request_head
from ._mcp import classify_mcp_failure
from ._refresh import RefreshedToken, RefreshFailure, build_refresh_request, parse_refresh_response
from ._updates import AccountUpdate, CreditsUsed, Picked, RefreshFailed, Served, Throttled, TokenRefreshed
from ._upstream_errors import UpstreamFailure, classify_upstream_failure, connection_failure

__all__ = ["Exchange", "ExchangePhase", "BodyFactory"]

#: How long past an account's comeback a waiting request looks again.
_WAKE_MARGIN = 0.01
#: The state of an account never stored (frozen: one shared instance, not one per lookup).
_NEVER_SEEN = AccountState()

#: Serialises the Kiro body for an account's profileArn (``KiroRequest.body``).
BodyFactory = Callable[[str | None], bytes]


class ExchangePhase(enum.Enum):
    #: Ready to decide: load state, pick an account, lease, refresh or send.
    SELECT = "select"
    #: ``LoadState`` handed out; waiting for ``state_loaded``.
    LOADING = "loading"
    #: ``AcquireLease`` handed out; waiting for ``lease_result``.
    LEASING = "leasing"
    #: Another request refreshes the account; waiting for ``waited``.
    WAITING = "waiting"
    #: ``Refresh`` handed out; waiting for ``refresh_answered`` / ``refresh_failed``.
    REFRESHING = "refreshing"
    #: ``SendUpstream`` handed out; waiting for its answer.
    SENDING = "sending"
    #: Upstream answered 200; ``StartStream`` not yet handed out.
    STARTED = "started"
    #: Streaming, no byte sent to the client yet: a failure may still move to another account.
    STREAMING = "streaming"
    #: The client has bytes: no retry any more.
    COMMITTED = "committed"
    #: The stream ended; the last ``Persist`` decisions, then ``Done``.
    CLOSING = "closing"
    DONE = "done"
    #: Final error: ``Respond`` (repeated if asked again).
    FAILED = "failed"
    #: A method was misused; sticky.
    ERROR = "error"


# Rule: a feed method is legal only in the phases listed here; anything else is a driver bug.
_FEEDS: dict[str, frozenset[ExchangePhase]] = {
    "state_loaded": frozenset({ExchangePhase.LOADING}),
    "lease_result": frozenset({ExchangePhase.LEASING}),
    "waited": frozenset({ExchangePhase.WAITING}),
    "refresh_answered": frozenset({ExchangePhase.REFRESHING}),
    "refresh_failed": frozenset({ExchangePhase.REFRESHING}),
    "upstream_started": frozenset({ExchangePhase.SENDING}),
    "upstream_answered": frozenset({ExchangePhase.SENDING}),
    "upstream_failed": frozenset({ExchangePhase.SENDING}),
    "client_bytes_sent": frozenset({ExchangePhase.STREAMING, ExchangePhase.COMMITTED}),
    "stream_failed": frozenset({ExchangePhase.STREAMING, ExchangePhase.COMMITTED}),
    "finished": frozenset({ExchangePhase.STREAMING, ExchangePhase.COMMITTED}),
}


class Exchange:
    """One client request's way through the pool to an upstream 200 (or a final error).

    Args:
        accounts: the configured accounts (disabled ones are skipped with their reason).
        settings: pool settings (strategy, margins, back-off, bounds, client versions, URLs).
        body: serialises the Kiro body for a profileArn (``KiroRequest.body``).
        new_id: a fresh random id (UUID4 text) per call: invocation ids and the lease owner.
        random: a random float in [0, 1) per call: the back-off jitter.
        model_id: the Kiro model id of the request: only accounts whose tier offers it serve it.
        operation: what is asked of Kiro: a model answer, or a web search through ``/mcp`` (whose
            body ``body`` makes, and whose failures are classified as a search's).
    """

    def __init__(
        self,
        *,
        accounts: Sequence[AccountConfig],
        settings: PoolSettings,
        body: BodyFactory,
        new_id: Callable[[], str],
        random: Callable[[], float],
        model_id: str | None = None,
        operation: KiroOperation = KiroOperation.GENERATE,
    ) -> None:
        self._accounts = tuple(accounts)
        self._operation = operation
        self._model_id = model_id
        self._settings = settings
        self._body = body
        self._new_id = new_id
        self._random = random
        self._owner = new_id()
        self.phase = ExchangePhase.SELECT
        # A list, not a deque: it holds a decision or two at a time, and a deque's first block
        # is 760 bytes for every call in flight (1,000 held streams: issue 17 item 4).
        self._queue: list[Decision] = []
        self._states: dict[str, AccountState] | None = None
        self._current: AccountConfig | None = None
        #: account id -> why it failed this request.
        self._tried: dict[str, str] = {}
        # Empty for nearly every call: frozensets replaced on change rather than three sets of
        # 216 bytes each for every call in flight (issue 17 item 4).
        self._refreshed: frozenset[str] = frozenset()
        self._auth_retried: frozenset[str] = frozenset()
        self._use_current_token: frozenset[str] = frozenset()
        self._wait_started: float | None = None
        #: Upstream calls in flight per account, as the driver last reported them.
        self._in_flight: Mapping[str, int] = {}
        #: When this request first found no account (its wait budget counts from there).
        self._waiting_since: float | None = None
        #: Accounts that throttled this request -> the end of the cooldown it recorded: they may
        #: serve it again after that (not before, whatever a stale store says).
        self._may_return: dict[str, float] = {}
        self._lease_held = False
        self._sent_token: str | None = None
        self._attempts = 0
        self._last_error: RemoteProtocolError | None = None
        self._final: Respond | None = None
        self._error: str | None = None

    # -- introspection ------------------------------------------------------------------------

    @property
    def account(self) -> AccountConfig | None:
        """The account in use (the one that serves the stream once started)."""
        return self._current

    @property
    def attempts(self) -> int:
        """Upstream sends so far."""
        return self._attempts

    # -- the decision loop --------------------------------------------------------------------

    def next_decision(self, now: float) -> Decision:
        """The next thing the driver must do. Raises LocalProtocolError while an answer is due."""
        if self._queue:
            return self._queue.pop(0)
        phase = self.phase
        if phase is ExchangePhase.SELECT:
            return self._select(now)
        if phase is ExchangePhase.STARTED:
            self.phase = ExchangePhase.STREAMING
            assert self._current is not None
            return StartStream(account=self._current)
        if phase is ExchangePhase.CLOSING:
            self.phase = ExchangePhase.DONE
            return Done()
        if phase is ExchangePhase.DONE:
            return Done()
        if phase is ExchangePhase.FAILED:
            assert self._final is not None
            return self._final
        if phase is ExchangePhase.ERROR:
            raise LocalProtocolError(f"Exchange is in state ERROR: {self._error}")
        raise self._misuse(f"next_decision() while an answer is due in phase {phase.name}")

    def _misuse(self, what: str) -> LocalProtocolError:
        self._error = what
        self.phase = ExchangePhase.ERROR
        return LocalProtocolError(f"Exchange misused: {what}")

    def _expect(self, method: str) -> None:
        if self.phase not in _FEEDS[method]:
            raise self._misuse(f"{method}() in phase {self.phase.name}")

    def _state(self, account: AccountConfig) -> AccountState:
        assert self._states is not None
        state = self._states.get(account.account_id)
        return _NEVER_SEEN if state is None else state

    def _apply(self, account: AccountConfig, update: AccountUpdate | None) -> None:
        if update is not None and self._states is not None:
            self._states[account.account_id] = update.apply(self._state(account))

    def _fail(self, error: ProtocolError) -> Decision:
        self._final = Respond(error=error)
        self.phase = ExchangePhase.FAILED
        self._current = None
        return self._final

    def _out_of_accounts(self, now: float, out: Mapping[str, str] | None = None) -> Decision:
        assert self._states is not None
        failed = {**self._tried, **(out or {})}
        if self._attempts >= self._settings.max_attempts:
            # Out of attempts, not of accounts: an account never tried (or refreshed and not
            # tried again) is not "usable" for this request, and the client should see why.
            spent = f"not tried (again): the request used its {self._attempts} attempt(s)"
            failed = {a.account_id: self._tried.get(a.account_id, spent) for a in self._accounts}
        return self._fail(
            no_account_error(self._accounts, self._states, now, failed=failed, last_error=self._last_error)
        )

    def _select(self, now: float) -> Decision:
        if self._states is None:
            self.phase = ExchangePhase.LOADING
            return LoadState(account_ids=tuple(a.account_id for a in self._accounts))
        account = self._current
        cap = self._settings.max_connections_per_account
        if account is not None:
            why = unavailable_reason(account, self._state(account), now)
            if why is not None:
                self._release_lease(account)
                self._tried[account.account_id] = why
                account = self._current = None
            elif not self._lease_held and self._in_flight.get(account.account_id, 0) >= cap:
                # It filled up while this request waited for its token (a cold burst picks one
                # account, and all but the refresher wait): choose again, as a new request would,
                # rather than send past the cap. Not a failure of the account.
                account = self._current = None
        if account is None:
            if self._attempts >= self._settings.max_attempts:
                return self._next_or(self._out_of_accounts(now))
            out = self._out_for_this_request(now)
            account = choose_account(self._accounts, self._states, now, self._settings.strategy, exclude=frozenset(out))
            if account is None:
                return self._next_or(self._wait_or_fail(now, out))
            self._current = account
            self._wait_started = None
            if self._settings.strategy is Strategy.ROUND_ROBIN:
                # Marked as used when chosen, not when sent: requests that arrive while this
                # account fetches its first token then go round to the others instead of all
                # queueing for this one.
                picked = Picked(now=now)
                self._apply(account, picked)
                self._queue.append(Persist(account_id=account.account_id, update=picked))
        state = self._state(account)
        status = token_status(state, now, self._settings)
        if self._lease_held:
            # Double-checked: the state was read again after taking the lease. Another request
            # may have refreshed between our first look and the lease; then its token is used.
            if status is TokenStatus.FRESH:
                self._release_lease(account)
                return self._send(account, state, now)  # hands out the queued release first
            request = build_refresh_request(
                account,
                refresh_token=state.refresh_token or account.refresh_token,
                versions=self._settings.versions,
                endpoints=self._settings.endpoints,
                invocation_id=self._new_id(),
            )
            self.phase = ExchangePhase.REFRESHING
            return Refresh(account=account, request=request)
        if status is TokenStatus.FRESH or (
            status is TokenStatus.EXPIRING
            # Still valid, and either someone else refreshes it or its refresh is backing off.
            and (account.account_id in self._use_current_token or state.refresh_retry_at > now)
        ):
            return self._send(account, state, now)
        if account.account_id in self._refreshed:
            # Refreshed during this request and still not usable: the answer's lifetime is absurd.
            self._move_on(account, "token refresh gave a token that expires at once", None, (), now)
            return self._queue.pop(0)
        self.phase = ExchangePhase.LEASING
        # A queued Picked goes first: others must see it before this request waits for the lease.
        return self._next_or(AcquireLease(account_id=account.account_id, owner=self._owner, ttl=self._settings.lease_ttl))

    def _out_for_this_request(self, now: float) -> dict[str, str]:
        """Accounts this request must not use now, and why: failed it, lack its model, or are
        at their connection cap."""
        out = {k: why for k, why in self._tried.items() if self._may_return.get(k, math.inf) > now}
        cap = self._settings.max_connections_per_account
        for a in self._accounts:
            state = self._state(a)
            if not offers_model(state, self._model_id):
                out[a.account_id] = f"its tier ({state.subscription_title or 'unknown'}) does not offer {self._model_id}"
            elif self._in_flight.get(a.account_id, 0) >= cap and a.account_id not in out:
                out[a.account_id] = f"at its connection cap ({cap} calls in flight)"
        return out

    def _wait_or_fail(self, now: float, out: dict[str, str]) -> Decision:
        """No account can serve now: wait (in line) for the first to come back, within the
        budget, or answer why not."""
        assert self._states is not None
        lacking = [a for a in self._accounts if not offers_model(self._state(a), self._model_id)]
        if lacking and all(a in lacking or a.disabled or self._state(a).disabled_reason for a in self._accounts):
            assert self._model_id is not None
            return self._fail(model_not_offered_error(self._accounts, self._states, self._model_id))
        cap = self._settings.max_connections_per_account
        comeback: float | None = None
        slots_awaited = False
        for a in self._accounts:
            state = self._state(a)
            why = out.get(a.account_id)
            busy = self._in_flight.get(a.account_id, 0) >= cap
            throttled_us = self._may_return.get(a.account_id)
            if why is not None and not busy and throttled_us is None or not offers_model(state, self._model_id):
                continue  # failed this request for good, or lacks its model: nothing to wait for
            back = comes_back_at(a, state, now)
            if throttled_us is not None and throttled_us > now:
                back = max(back or now, throttled_us)
            if busy and (back is not None or unavailable_reason(a, state, now) is None):
                # A slot frees when a call ends: the driver wakes the line then; look again soon.
                slots_awaited = True
                back = max(back or now, now + self._settings.slot_poll)
            if back is not None and (comeback is None or back < comeback):
                comeback = back
        if comeback is None:
            return self._out_of_accounts(now, out)
        if self._waiting_since is None:
            self._waiting_since = now
        deadline = self._waiting_since + self._settings.max_account_wait
        if now >= deadline or (comeback > deadline and not slots_awaited):
            waited = now - self._waiting_since
            return self._fail(
                no_account_error(self._accounts, self._states, now, failed=out, out_of_wait=(waited, comeback - now))
            )
        self.phase = ExchangePhase.WAITING
        # A little past the comeback: the store's times are compared with the driver's clock.
        return Wait(seconds=min(comeback, deadline) - now + _WAKE_MARGIN, line=True)

    def _release_lease(self, account: AccountConfig) -> None:
        if self._lease_held:
            self._lease_held = False
            self._queue.append(Persist(account_id=account.account_id, release_lease=self._owner))

    def _next_or(self, decision: Decision) -> Decision:
        """Hand out queued decisions (a lease release) before ``decision``."""
        if not self._queue:
            return decision
        self._queue.append(decision)
        return self._queue.pop(0)

    def _send(self, account: AccountConfig, state: AccountState, now: float) -> Decision:
        if self._attempts >= self._settings.max_attempts:
            return self._out_of_accounts(now)
        assert state.access_token is not None
        self._attempts += 1
        profile_arn = state.profile_arn or account.profile_arn
        url, headers = request_head(
            self._operation,
            account=account,
            access_token=state.access_token,
            profile_arn=profile_arn,
            endpoints=self._settings.endpoints,
            versions=self._settings.versions,
            invocation_id=self._new_id(),
        )
        self._sent_token = state.access_token
        self.phase = ExchangePhase.SENDING
        request = HttpRequest(method="POST", url=url, headers=headers, body=self._body(profile_arn))
        return self._next_or(SendUpstream(account=account, request=request, attempt=self._attempts))

    def _move_on(
        self,
        account: AccountConfig,
        reason: str,
        update: AccountUpdate | None,
        counters: tuple[tuple[str, float], ...],
        now: float,
        release: bool = False,
    ) -> None:
        """Record ``reason`` for this account, persist, and go back to selection elsewhere."""
        self._apply(account, update)
        if update is not None or counters or release:
            self._queue.append(
                Persist(
                    account_id=account.account_id,
                    update=update,
                    counters=counters,
                    release_lease=self._owner if release else None,
                )
            )
        self._tried[account.account_id] = reason
        self._may_return.pop(account.account_id, None)  # failed again, not only throttled
        self._queue.append(Retry(account=account, reason=reason))
        self._current = None
        self._states = None  # look at the store again: other requests may have changed it
        self.phase = ExchangePhase.SELECT

    # -- feeds: state, leases, waits ----------------------------------------------------------

    def state_loaded(
        self, states: Mapping[str, AccountState], now: float, in_flight: Mapping[str, int] | None = None
    ) -> None:
        """The stored states of the requested accounts (missing ids mean "never seen").

        ``in_flight``: upstream calls in flight per account in this process (missing: none),
        plus one per request ahead of this one in the line (see ``Wait.line``); an account at
        ``max_connections_per_account`` is not chosen.
        """
        self._expect("state_loaded")
        self._states = {a.account_id: states.get(a.account_id, _NEVER_SEEN) for a in self._accounts}
        self._in_flight = in_flight or {}
        self.phase = ExchangePhase.SELECT

    def lease_result(self, acquired: bool, now: float) -> None:
        """Whether the refresh lease was taken. Not taken: someone else is refreshing."""
        self._expect("lease_result")
        account = self._current
        assert account is not None
        state = self._state(account)
        if acquired:
            self._wait_started = None
            self._lease_held = True
            self._states = None  # read again under the lease (double-checked locking)
            self.phase = ExchangePhase.SELECT
            return
        if token_status(state, now, self._settings) is TokenStatus.EXPIRING:
            # Still valid: use it rather than wait for the other refresher.
            self._use_current_token |= {account.account_id}
            self.phase = ExchangePhase.SELECT
            return
        if self._wait_started is None:
            self._wait_started = now
        elif now - self._wait_started >= self._settings.max_refresh_wait:
            # A slow or crashed refresher elsewhere: do not make this request wait for its lease.
            self._tried[account.account_id] = (
                f"its token is being refreshed by another request (waited {now - self._wait_started:.0f} s)"
            )
            self._current = None
            self.phase = ExchangePhase.SELECT
            return
        # Poll quickly at first (a refresh takes well under a second), then every 2 s at most.
        waited = now - self._wait_started
        self._queue.append(Wait(seconds=min(2.0, max(self._settings.lease_poll, waited))))
        self.phase = ExchangePhase.WAITING

    def waited(self, now: float) -> None:
        """The ``Wait`` is over: look at the store again (the other refresher may be done)."""
        self._expect("waited")
        self._states = None
        self.phase = ExchangePhase.SELECT

    # -- feeds: refresh -----------------------------------------------------------------------

    def refresh_answered(self, response: HttpResponse, now: float) -> None:
        """The refresh endpoint's answer (any status)."""
        self._expect("refresh_answered")
        account = self._current
        assert account is not None
        state = self._state(account)
        result = parse_refresh_response(
            response,
            now=now,
            previous_refresh_token=state.refresh_token or account.refresh_token,
            also_mask=(account.refresh_token, account.client_secret),
        )
        self._refresh_done(account, result, now)

    def refresh_failed(self, message: str, now: float) -> None:
        """The refresh got no answer (connect error, timeout). ``message`` must hold no secret."""
        self._expect("refresh_failed")
        account = self._current
        assert account is not None
        failure = RefreshFailure(permanent=False, status=0, message=f"refresh endpoint unreachable: {message}")
        self._refresh_done(account, failure, now)

    def _refresh_done(self, account: AccountConfig, result: RefreshedToken | RefreshFailure, now: float) -> None:
        self._lease_held = False  # every path below persists with release_lease
        if isinstance(result, RefreshedToken):
            update: AccountUpdate = TokenRefreshed(token=result)
            self._apply(account, update)
            self._refreshed |= {account.account_id}
            self._queue.append(Persist(account_id=account.account_id, update=update, release_lease=self._owner))
            self.phase = ExchangePhase.SELECT
            return
        still_valid = token_status(self._state(account), now, self._settings) is TokenStatus.EXPIRING
        update = RefreshFailed(failure=result, now=now, jitter=self._random(), settings=self._settings)
        if still_valid and not result.permanent:
            self._apply(account, update)
            self._queue.append(Persist(account_id=account.account_id, update=update, release_lease=self._owner))
            self._use_current_token |= {account.account_id}
            self.phase = ExchangePhase.SELECT
            return
        reason = ("disabled: " if result.permanent else "token refresh failed: ") + result.message
        self._move_on(account, reason, update, (("refresh_failures", 1),), now, release=True)

    # -- feeds: upstream ----------------------------------------------------------------------

    def upstream_started(self, now: float) -> None:
        """Upstream answered 200: the stream is about to be translated."""
        self._expect("upstream_started")
        account = self._current
        assert account is not None
        update = Served(now=now)
        self._apply(account, update)
        self._queue.append(Persist(account_id=account.account_id, update=update, counters=(("requests", 1),)))
        self.phase = ExchangePhase.STARTED

    def upstream_answered(
        self, status: int, body: bytes, now: float, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Upstream answered ``status`` (not 200) with this error ``body`` and ``headers``."""
        self._expect("upstream_answered")
        if status == 200:
            raise self._misuse("upstream_answered() with status 200; call upstream_started()")
        classify = classify_mcp_failure if self._operation is KiroOperation.WEB_SEARCH else classify_upstream_failure
        self._failed(classify(status, body, secrets=self._secrets()), now, retry_after_seconds(headers))

    def _secrets(self) -> tuple[str | None, ...]:
        """The current account's token values, never to be quoted from an upstream body."""
        account = self._current
        assert account is not None
        state = self._state(account)
        return (self._sent_token, state.access_token, state.refresh_token, account.refresh_token, account.client_secret)

    def upstream_failed(self, message: str, now: float) -> None:
        """No HTTP answer (connect error, reset, timeout). ``message`` must hold no secret."""
        self._expect("upstream_failed")
        self._failed(connection_failure(message), now, None)

    def client_bytes_sent(self) -> None:
        """The first byte reached the client: from now on no retry."""
        self._expect("client_bytes_sent")
        self.phase = ExchangePhase.COMMITTED

    def stream_failed(
        self,
        failure: UpstreamFailure,
        now: float,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        credits: float = 0.0,
    ) -> None:
        """The 200 stream failed (``_upstream_errors.classify_stream_failure`` / ``stream_interrupted``).

        Before the first client byte the request moves on like an HTTP failure; after it the
        client gets the error in the stream (the translator's job), the usage so far is recorded
        and the exchange closes.
        """
        self._expect("stream_failed")
        if self.phase is ExchangePhase.STREAMING:
            self._failed(failure, now, None)
            return
        self._close(input_tokens, output_tokens, credits, (("failures", 1),))

    def finished(self, now: float, *, input_tokens: int = 0, output_tokens: int = 0, credits: float = 0.0) -> None:
        """The stream ended (or the client left): record usage."""
        self._expect("finished")
        self._close(input_tokens, output_tokens, credits, ())

    def _close(self, input_tokens: int, output_tokens: int, credits: float, extra: tuple[tuple[str, float], ...]) -> None:
        account = self._current
        assert account is not None
        usage = (("input_tokens", input_tokens), ("output_tokens", output_tokens), ("credits", credits))
        counters = extra + tuple((name, value) for name, value in usage if value)
        update = CreditsUsed(credits=credits) if credits > 0 else None
        if counters or update is not None:
            self._queue.append(Persist(account_id=account.account_id, update=update, counters=counters))
        self.phase = ExchangePhase.CLOSING

    def _failed(self, failure: UpstreamFailure, now: float, retry_after: float | None) -> None:
        account = self._current
        assert account is not None and self._sent_token is not None
        if isinstance(failure.client_error, RemoteProtocolError):
            self._last_error = failure.client_error
        judged = judge_failure(
            failure,
            sent_token=self._sent_token,
            auth_retried=account.account_id in self._auth_retried,
            now=now,
            jitter=self._random(),
            settings=self._settings,
            retry_after=retry_after,
        )
        if judged.verdict is Verdict.RESPOND:
            self._queue.append(Persist(account_id=account.account_id, counters=judged.counters))
            self._fail(failure.client_error)
        elif judged.verdict is Verdict.RETRY_SAME:
            self._auth_retried |= {account.account_id}
            self._refreshed -= {account.account_id}
            self._use_current_token -= {account.account_id}
            self._apply(account, judged.update)
            self._queue.append(Persist(account_id=account.account_id, update=judged.update, counters=judged.counters))
            self._queue.append(Retry(account=account, reason=judged.reason, same_account=True))
            self.phase = ExchangePhase.SELECT
        else:
            throttled = judged.update.apply(self._state(account)) if isinstance(judged.update, Throttled) else None
            self._move_on(account, judged.reason, judged.update, judged.counters, now)
            if throttled is not None:
                self._may_return[account.account_id] = throttled.cooldown_until
