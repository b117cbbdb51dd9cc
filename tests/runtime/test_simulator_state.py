"""The simulator's memory with an injected clock: token expiry, rotation, revocation, tags, records."""

from __future__ import annotations

import pytest

from adapters.simulator._state import ACCOUNT_TAGS, SimulatorConfig, SimulatorState, TokenProblem, account_label

TOKEN = "aorAAAAAG-state-test-refresh-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(**config: object) -> tuple[SimulatorState, Clock]:
    clock = Clock()
    counter = iter(range(10**6))
    state = SimulatorState(
        SimulatorConfig(**config),  # type: ignore[arg-type]
        clock=clock,
        new_secret=lambda n: f"secret{next(counter):06d}".ljust(n, "x"),
    )
    return state, clock


def test_access_tokens_expire_exactly_at_their_ttl() -> None:
    state, clock = make(token_ttl=60.0)
    access, ttl, _ = state.issue(TOKEN, flow="social")
    assert ttl == 60.0 and access.startswith("aoa")
    assert state.bearer(f"Bearer {access}") is not None
    assert state.bearer(f"bearer  {access}") is not None  # scheme case-insensitive, extra space tolerated
    assert state.bearer(access) is None and state.bearer(f"Basic {access}") is None and state.bearer(None) is None
    clock.now += 59.999
    assert state.bearer(f"Bearer {access}") is not None
    clock.now += 0.001
    assert state.bearer(f"Bearer {access}") is None


def test_rotation_keeps_the_family_and_its_tags() -> None:
    state, _ = make()
    tagged = "aorAAAAAG-sim-throttle-account-0001"
    _, _, rotated = state.issue(tagged, flow="idc")
    assert rotated != tagged and rotated.startswith(tagged + "~rot")
    access, _, rotated_again = state.issue(rotated, flow="idc")
    assert rotated_again.startswith(tagged + "~rot") and rotated_again.count("~rot") == 1
    issued = state.tokens[access]
    assert issued.tags == ("sim-throttle",) and issued.profile_arn is None
    assert issued.account == account_label(tagged) and tagged not in repr(issued)


def test_revoke_rotated_and_explicit_revocation() -> None:
    state, _ = make(revoke_rotated=True)
    _, _, rotated = state.issue(TOKEN, flow="social")
    with pytest.raises(TokenProblem) as info:
        state.issue(TOKEN, flow="social")
    assert info.value.permanent
    state.issue(rotated, flow="social")
    other, _ = make(rotate_refresh_tokens=False)
    assert other.issue(TOKEN, flow="social")[2] == TOKEN
    other.revoke(TOKEN)
    with pytest.raises(TokenProblem):
        other.issue(TOKEN, flow="social")


@pytest.mark.parametrize(
    ("token", "permanent"),
    [("short", False), ("has spaces in the refresh token", False), (None, False), ("aorAAAAAG-an-INVALID-token", True)],
)
def test_refresh_token_checks(token: object, permanent: bool) -> None:
    state, _ = make()
    with pytest.raises(TokenProblem) as info:
        state.check_refresh_token(token)
    assert info.value.permanent is permanent


def test_labels_name_tags_but_never_the_token() -> None:
    for tag in ACCOUNT_TAGS:
        token = f"aorAAAAAG-{tag}-secretpart-123"
        label = account_label(token)
        assert f"[{tag}]" in label and "secretpart" not in label
    assert account_label(TOKEN) == account_label(TOKEN) != account_label(TOKEN + "x")


def test_expire_all_fire_once_records_and_reset() -> None:
    state, clock = make(history_size=2)
    access, _, _ = state.issue(TOKEN, flow="social")
    assert state.expire_all() == 1 and state.bearer(f"Bearer {access}") is None
    assert state.fire_once("throttle", "p") and not state.fire_once("throttle", "p") and state.fire_once("quota", "p")
    for i in range(3):
        clock.now += 1
        state.record({"n": i})
    assert [(r["id"], r["n"], r["time"]) for r in state.records] == [(2, 1, 1002.0), (3, 2, 1003.0)]
    seeds = {state.next_seed() for _ in range(3)}
    state.reset()
    assert not state.tokens and not state.records and not state.fired and state.sequence == 0
    assert state.fire_once("throttle", "p")
    assert state.next_seed() not in seeds  # answers stay distinct across a reset
