"""Background account checks: refresh ahead of expiry, usage limits and the model catalogue,
off the request path.

The runtime asks ``checks_due`` every few seconds and runs an ``AccountCheck`` for each account
it returns, one at a time (never the whole pool at once: bulk refreshes are what peers' users
report as suspensions: docs/kiro-protocol.md, What peers get wrong). An ``AccountCheck``
speaks the same decisions as an ``Exchange`` (``LoadState``, ``AcquireLease``, ``Refresh``,
``CheckUsage``, ``Persist``, ``Done``), so the drivers share their code.

Only tokens that exist and are inside the refresh margin are refreshed ahead: an idle account
whose token expired is refreshed when a request needs it, not on a timer.
"""

from __future__ import annotations

import enum
from typing import Callable, Mapping, Sequence

from .._errors import LocalProtocolError
from ..http._messages import HttpRequest, HttpResponse
from ._accounts import AccountState, PoolSettings, TokenStatus, token_status
from ._credentials import AccountConfig
from ._decisions import AcquireLease, CheckModels, CheckUsage, Decision, Done, LoadState, Persist, Refresh
from ._model_catalogue import ModelCatalogueError, build_models_request, parse_available_models
from ._refresh import RefreshedToken, RefreshFailure, build_refresh_request, parse_refresh_response
from ._updates import AccountUpdate, ModelsChecked, RefreshFailed, TokenRefreshed, UsageChecked, UsageCheckFailed
from ._usage_limits import UsageLimitsError, build_usage_limits_request, parse_usage_limits

__all__ = ["checks_due", "AccountCheck"]


def _wants_refresh(state: AccountState, now: float, settings: PoolSettings) -> bool:
    return token_status(state, now, settings) is TokenStatus.EXPIRING and state.refresh_retry_at <= now


def _wants_usage(state: AccountState, now: float, settings: PoolSettings) -> bool:
    return state.usage_checked_at + settings.usage_check_interval <= now and (
        token_status(state, now, settings) is not TokenStatus.UNUSABLE
    )


def checks_due(
    accounts: Sequence[AccountConfig], states: Mapping[str, AccountState], now: float, settings: PoolSettings
) -> tuple[AccountConfig, ...]:
    """Accounts that need a background check now: a token to refresh ahead, or usage to read."""
    due = []
    for account in accounts:
        state = states.get(account.account_id, AccountState())
        if account.disabled or state.disabled_reason or state.invalid_until > now:
            continue
        if _wants_refresh(state, now, settings) or _wants_usage(state, now, settings):
            due.append(account)
    return tuple(due)


class _Phase(enum.Enum):
    START = "start"
    LOADING = "loading"
    LEASING = "leasing"
    REFRESHING = "refreshing"
    READY = "ready"
    CHECKING = "checking"
    #: The usage answer is in: the model catalogue is asked next (same token, same interval).
    CATALOGUE = "catalogue"
    LISTING = "listing"
    DONE = "done"


class AccountCheck:
    """One background check of one account. Feed methods mirror ``Exchange``'s."""

    def __init__(
        self,
        *,
        account: AccountConfig,
        settings: PoolSettings,
        new_id: Callable[[], str],
        random: Callable[[], float],
    ) -> None:
        self._account = account
        self._settings = settings
        self._new_id = new_id
        self._random = random
        self._owner = new_id()
        self._phase = _Phase.START
        self._state = AccountState()
        self._pending: list[Decision] = []
        self._lease_held = False

    def _expect(self, method: str, phase: _Phase) -> None:
        if self._phase is not phase:
            raise LocalProtocolError(f"AccountCheck misused: {method}() in phase {self._phase.name}")

    def next_decision(self, now: float) -> Decision:
        """The next thing to do; ``Done`` when finished."""
        if self._pending:
            return self._pending.pop(0)
        if self._phase is _Phase.START:
            self._phase = _Phase.LOADING
            return LoadState(account_ids=(self._account.account_id,))
        if self._phase is _Phase.READY:
            return self._usage_step(now)
        if self._phase is _Phase.CATALOGUE:
            return self._models_step()
        if self._phase is _Phase.DONE:
            return Done()
        raise LocalProtocolError(f"AccountCheck misused: next_decision() in phase {self._phase.name}")

    def state_loaded(
        self, states: Mapping[str, AccountState], now: float, in_flight: Mapping[str, int] | None = None
    ) -> None:
        """The account's stored state (for ``LoadState``); ``in_flight`` is not needed here."""
        self._expect("state_loaded", _Phase.LOADING)
        self._state = states.get(self._account.account_id, AccountState())
        wants = _wants_refresh(self._state, now, self._settings)
        if self._lease_held:
            # Read again under the lease: refresh only if nobody did it meanwhile.
            if wants:
                self._pending.append(Refresh(account=self._account, request=self._refresh_request()))
                self._phase = _Phase.REFRESHING
                return
            self._lease_held = False
            self._pending.append(Persist(account_id=self._account.account_id, release_lease=self._owner))
            self._phase = _Phase.READY
        elif wants:
            self._phase = _Phase.LEASING
            self._pending.append(
                AcquireLease(account_id=self._account.account_id, owner=self._owner, ttl=self._settings.lease_ttl)
            )
        else:
            self._phase = _Phase.READY

    def waited(self, now: float) -> None:
        """Never due: a check that finds the lease taken leaves the refresh to its holder."""
        raise LocalProtocolError(f"AccountCheck misused: waited() in phase {self._phase.name}")

    def lease_result(self, acquired: bool, now: float) -> None:
        """Whether the refresh lease was taken; not taken: someone else refreshes, skip it."""
        self._expect("lease_result", _Phase.LEASING)
        if not acquired:  # someone else is refreshing it right now
            self._phase = _Phase.READY
            return
        self._lease_held = True
        self._pending.append(LoadState(account_ids=(self._account.account_id,)))
        self._phase = _Phase.LOADING

    def _refresh_request(self) -> HttpRequest:
        return build_refresh_request(
            self._account,
            refresh_token=self._state.refresh_token or self._account.refresh_token,
            versions=self._settings.versions,
            endpoints=self._settings.endpoints,
            invocation_id=self._new_id(),
        )

    def refresh_answered(self, response: HttpResponse, now: float) -> None:
        """The refresh endpoint's answer (any status)."""
        self._expect("refresh_answered", _Phase.REFRESHING)
        previous = self._state.refresh_token or self._account.refresh_token
        also_mask = (self._account.refresh_token, self._account.client_secret)
        result = parse_refresh_response(response, now=now, previous_refresh_token=previous, also_mask=also_mask)
        self._refreshed(result, now)

    def refresh_failed(self, message: str, now: float) -> None:
        """The refresh got no answer. ``message`` must hold no secret."""
        self._expect("refresh_failed", _Phase.REFRESHING)
        failure = RefreshFailure(permanent=False, status=0, message=f"refresh endpoint unreachable: {message}")
        self._refreshed(failure, now)

    def _refreshed(self, result: RefreshedToken | RefreshFailure, now: float) -> None:
        update: AccountUpdate
        if isinstance(result, RefreshedToken):
            update = TokenRefreshed(token=result)
        else:
            update = RefreshFailed(failure=result, now=now, jitter=self._random(), settings=self._settings)
        self._state = update.apply(self._state)
        self._lease_held = False
        self._pending.append(Persist(account_id=self._account.account_id, update=update, release_lease=self._owner))
        self._phase = _Phase.READY

    def _usage_step(self, now: float) -> Decision:
        state = self._state
        if state.disabled_reason or not _wants_usage(state, now, self._settings):
            self._phase = _Phase.DONE
            return Done()
        assert state.access_token is not None
        request = build_usage_limits_request(
            self._account,
            access_token=state.access_token,
            profile_arn=state.profile_arn,
            versions=self._settings.versions,
            endpoints=self._settings.endpoints,
            invocation_id=self._new_id(),
        )
        self._phase = _Phase.CHECKING
        return CheckUsage(account=self._account, request=request)

    def usage_answered(self, response: HttpResponse, now: float) -> None:
        """The getUsageLimits answer (any status; only a 200 with a JSON object counts)."""
        self._expect("usage_answered", _Phase.CHECKING)
        update: AccountUpdate = UsageCheckFailed(now=now)
        if response.status == 200:
            try:
                update = UsageChecked(limits=parse_usage_limits(response.body), now=now, settings=self._settings)
            except UsageLimitsError:
                pass
        self._pending.append(Persist(account_id=self._account.account_id, update=update))
        self._phase = _Phase.CATALOGUE

    def usage_failed(self, message: str, now: float) -> None:
        """The usage call got no answer."""
        self._expect("usage_failed", _Phase.CHECKING)
        self._pending.append(Persist(account_id=self._account.account_id, update=UsageCheckFailed(now=now)))
        self._phase = _Phase.CATALOGUE

    def _models_step(self) -> Decision:
        state = self._state
        assert state.access_token is not None  # the usage step ran with it
        request = build_models_request(
            self._account,
            access_token=state.access_token,
            profile_arn=state.profile_arn,
            versions=self._settings.versions,
            endpoints=self._settings.endpoints,
            invocation_id=self._new_id(),
        )
        self._phase = _Phase.LISTING
        return CheckModels(account=self._account, request=request)

    def models_answered(self, response: HttpResponse, now: float) -> None:
        """The ListAvailableModels answer. Only a 200 with a model list changes what is known:
        a failed check is no proof that the tier lost its models."""
        self._expect("models_answered", _Phase.LISTING)
        if response.status == 200:
            try:
                update = ModelsChecked(models=parse_available_models(response.body))
            except ModelCatalogueError:
                pass
            else:
                self._pending.append(Persist(account_id=self._account.account_id, update=update))
        self._phase = _Phase.DONE

    def models_failed(self, message: str, now: float) -> None:
        """The models call got no answer: keep what was known."""
        self._expect("models_failed", _Phase.LISTING)
        self._phase = _Phase.DONE
