"""Named client keys in the core: the record, making a key, the front door's view of keys, and
what the limits decide (kiro_protocol.keys)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol import (
    ClientAuth,
    ClientKey,
    ErrorKind,
    KeyCounts,
    KeyLimits,
    LocalProtocolError,
    ReplyNow,
    RequestHead,
    Serve,
    ServerState,
    front_door,
    format_time,
    key_admission,
    make_client_key,
    model_refusal,
    parse_expiry,
    parse_models,
    quota_periods,
)
from kiro_protocol.http import BUILTIN_KEY, Dialect, endpoint_error
from kiro_protocol.keys import KEY_PREFIX, check_key_name, key_digest, model_allowed

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TOKEN = "built-in-token-0123456789"
RANDOM = bytes(range(32))


def _key(name: str = "alice", *, now: float = NOW, expires_at: float | None = None, **limits: object) -> tuple[ClientKey, str]:
    return make_client_key(name, random_bytes=RANDOM, now=now, limits=KeyLimits(**limits), expires_at=expires_at)  # type: ignore[arg-type]


# -- the record ----------------------------------------------------------------------------------


def test_a_new_key_is_prefixed_random_and_stored_only_as_its_digest() -> None:
    record, secret = _key(rpm=5)
    assert secret.startswith(KEY_PREFIX) and len(secret) == len(KEY_PREFIX) + 43
    assert record.digest == key_digest(secret) and len(record.digest) == 64
    assert secret not in record.to_json()
    assert record.hint == secret[:8]
    other, other_secret = make_client_key("alice", random_bytes=bytes(32), now=NOW)
    assert other_secret != secret and other.digest != record.digest


def test_a_record_round_trips_through_json() -> None:
    record, _ = _key(expires_at=NOW + 60, rpm=1, concurrency=2, tokens_per_day=3, tokens_per_month=4, models=("a", "b*"))
    assert ClientKey.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["limits"] == {
        "rpm": 1, "concurrency": 2, "tokens_per_day": 3, "tokens_per_month": 4, "models": ["a", "b*"]
    }


@pytest.mark.parametrize("text", ["[]", '{"name": "x"}', '{"name": "x", "digest": "d", "limits": {"rpm": -1}}'])
def test_a_damaged_record_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        ClientKey.from_json(text)


@pytest.mark.parametrize("name", ["", "default", "-x", "a b", "ä", "x" * 65, "a/b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        check_key_name(name)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST and caught.value.param == "name"


@pytest.mark.parametrize("name", ["a", "ci-bot", "team.alice_2", "X" * 64])
def test_good_names(name: str) -> None:
    assert check_key_name(name) == name


def test_limits_must_be_whole_non_negative_numbers_and_models_ids() -> None:
    with pytest.raises(LocalProtocolError):
        KeyLimits(rpm=-1)
    with pytest.raises(LocalProtocolError):
        KeyLimits(concurrency=True)
    with pytest.raises(LocalProtocolError):
        KeyLimits(models=("bad model",))
    assert not KeyLimits(models=("a",)).counted and KeyLimits(tokens_per_month=1).token_quota


def test_making_a_key_needs_randomness_and_a_future_expiry() -> None:
    with pytest.raises(ValueError):
        make_client_key("a", random_bytes=b"short", now=NOW)
    with pytest.raises(LocalProtocolError):
        make_client_key("a", random_bytes=RANDOM, now=NOW, expires_at=NOW)


def test_models_and_expiry_as_an_operator_writes_them() -> None:
    assert parse_models(" a, b ,,a") == ("a", "b")
    assert parse_models(["x", " y "]) == ("x", "y")
    assert parse_expiry("30d", NOW) == NOW + 30 * 86400
    assert parse_expiry("12h", NOW) == NOW + 12 * 3600
    assert parse_expiry("90m", NOW) == NOW + 90 * 60
    assert parse_expiry("2026-01-31", NOW) == NOW + 30 * 86400
    assert parse_expiry("2026-01-01T18:00:00Z", NOW) == NOW + 18 * 3600
    assert parse_expiry("2026-01-01T18:00:00+02:00", NOW) == NOW + 16 * 3600
    for bad in ("soon", "2025-12-31", "0d", "-5d"):
        with pytest.raises(LocalProtocolError):
            parse_expiry(bad, NOW)


def test_times_are_shown_in_utc() -> None:
    assert format_time(NOW) == "2026-01-01T00:00:00Z"


# -- the front door ------------------------------------------------------------------------------


def _decide(auth: ClientAuth, *headers: tuple[str, str], path: str = "/v1/messages", now: float = NOW) -> ReplyNow | Serve:
    head = RequestHead(method="POST", target=path, headers=headers)
    return front_door(head, auth, ServerState(now=now), "00ff")


def _keys(*records: ClientKey) -> ClientAuth:
    return ClientAuth(TOKEN, keys={r.digest: r for r in records})


def _refusal(decision: ReplyNow | Serve) -> tuple[int, str, str]:
    assert isinstance(decision, ReplyNow), decision
    error = json.loads(decision.reply.body)["error"]
    return decision.reply.status, error["type"], error["message"]


def test_a_named_key_opens_the_door_and_is_carried_by_serve() -> None:
    record, secret = _key()
    for header in (("x-api-key", secret), ("authorization", f"Bearer {secret}")):
        decision = _decide(_keys(record), header)
        assert isinstance(decision, Serve) and decision.key == record


def test_the_built_in_token_keeps_working_beside_named_keys() -> None:
    record, _ = _key()
    decision = _decide(_keys(record), ("x-api-key", TOKEN))
    assert isinstance(decision, Serve) and decision.key is BUILTIN_KEY and BUILTIN_KEY.name == "default"
    decision = _decide(ClientAuth(TOKEN), ("x-api-key", TOKEN))
    assert isinstance(decision, Serve) and decision.key is BUILTIN_KEY


def test_routes_without_auth_carry_no_key() -> None:
    decision = front_door(RequestHead(method="GET", target="/health", headers=()), ClientAuth(TOKEN), ServerState(), "00")
    assert isinstance(decision, Serve) and decision.key is None and not decision.key_counted


def test_an_unknown_key_is_a_plain_401() -> None:
    record, _ = _key()
    assert _refusal(_decide(_keys(record), ("x-api-key", "k2a_nope"))) == (401, "authentication_error", "Invalid API key.")


def test_a_disabled_key_is_401_saying_so() -> None:
    record, secret = _key()
    disabled = ClientKey.from_json(record.to_json().replace('"disabled":false', '"disabled":true'))
    status, kind, message = _refusal(_decide(_keys(disabled), ("x-api-key", secret)))
    assert (status, kind, message) == (401, "authentication_error", "API key 'alice' is disabled.")
    assert secret not in message


def test_an_expired_key_is_401_naming_the_moment() -> None:
    record, secret = _key(expires_at=NOW + 3600)
    assert isinstance(_decide(_keys(record), ("x-api-key", secret), now=NOW + 3599), Serve)
    status, kind, message = _refusal(_decide(_keys(record), ("x-api-key", secret), now=NOW + 3600))
    assert (status, kind, message) == (401, "authentication_error", "API key 'alice' expired at 2026-01-01T01:00:00Z.")


def test_a_bad_named_key_in_one_header_does_not_spoil_a_good_token_in_the_other() -> None:
    record, secret = _key()
    disabled = ClientKey.from_json(record.to_json().replace('"disabled":false', '"disabled":true'))
    decision = _decide(_keys(disabled), ("x-api-key", secret), ("authorization", f"Bearer {TOKEN}"))
    assert isinstance(decision, Serve) and decision.key is BUILTIN_KEY


def test_openai_clients_get_the_refusal_in_their_shape() -> None:
    record, secret = _key()
    disabled = ClientKey.from_json(record.to_json().replace('"disabled":false', '"disabled":true'))
    decision = _decide(_keys(disabled), ("authorization", f"Bearer {secret}"), path="/v1/chat/completions")
    assert isinstance(decision, ReplyNow)
    assert json.loads(decision.reply.body)["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("path", "counted"),
    [("/v1/messages", True), ("/v1/chat/completions", True), ("/v1/responses", True),
     ("/v1/messages/count_tokens", False), ("/v1/models", False)],
)
def test_only_model_calls_of_limited_keys_are_counted(path: str, counted: bool) -> None:
    limited, secret = _key(rpm=1)
    method = "GET" if path == "/v1/models" else "POST"
    head = RequestHead(method=method, target=path, headers=(("x-api-key", secret),))
    decision = front_door(head, _keys(limited), ServerState(now=NOW), "00")
    assert isinstance(decision, Serve) and decision.key_counted is counted
    unlimited, secret = _key("bob", models=("m",))
    head = RequestHead(method=method, target=path, headers=(("x-api-key", secret),))
    decision = front_door(head, _keys(unlimited), ServerState(now=NOW), "00")
    assert isinstance(decision, Serve) and not decision.key_counted


# -- limits --------------------------------------------------------------------------------------


def test_quota_periods_are_utc_days_and_calendar_months() -> None:
    p = quota_periods(NOW + 86400 * 30 + 5)  # 2026-01-31T00:00:05Z
    assert (p.day, p.month) == ("2026-01-31", "2026-01")
    assert format_time(p.day_ends) == "2026-02-01T00:00:00Z"
    assert format_time(p.month_ends) == "2026-02-01T00:00:00Z"
    december = quota_periods(NOW - 1)
    assert (december.day, december.month, format_time(december.month_ends)) == ("2025-12-31", "2025-12", "2026-01-01T00:00:00Z")


def test_nothing_refuses_a_key_within_its_limits() -> None:
    record, _ = _key(rpm=2, concurrency=2, tokens_per_day=10, tokens_per_month=100)
    counts = KeyCounts(requests_in_window=2, oldest_in_window=NOW, in_flight=2, tokens_today=9, tokens_this_month=99)
    assert key_admission(record, counts, NOW) is None
    assert key_admission(_key("free")[0], KeyCounts(requests_in_window=999, in_flight=999, tokens_today=10**9), NOW) is None


def test_over_the_rate_is_429_with_the_wait_for_the_oldest_request() -> None:
    record, _ = _key(rpm=2)
    error = key_admission(record, KeyCounts(requests_in_window=3, oldest_in_window=NOW - 45.5, in_flight=1), NOW)
    assert error is not None and error.kind is ErrorKind.RATE_LIMIT and error.status_hint == 429
    assert error.retry_after == pytest.approx(14.5)
    assert "2 requests per minute" in error.message and "retry in 15 s" in error.message
    reply = endpoint_error(_serve(), error)
    assert reply.status == 429 and dict(reply.headers)["retry-after"] == "15"
    assert json.loads(reply.body)["error"]["type"] == "rate_limit_error"


def test_over_the_concurrency_is_429_retry_after_one_second() -> None:
    record, _ = _key(concurrency=1)
    error = key_admission(record, KeyCounts(requests_in_window=1, oldest_in_window=NOW, in_flight=2), NOW)
    assert error is not None and error.retry_after == 1.0 and "1 request at once" in error.message


def test_a_used_up_daily_quota_is_429_naming_the_reset() -> None:
    record, _ = _key(tokens_per_day=100)
    error = key_admission(record, KeyCounts(requests_in_window=1, in_flight=1, tokens_today=100), NOW + 3600)
    assert error is not None and error.kind is ErrorKind.RATE_LIMIT
    assert error.message == "The daily token quota of key 'alice' (100 tokens) is used up; it resets at 2026-01-02T00:00:00Z."
    assert error.retry_after == 23 * 3600


def test_a_used_up_monthly_quota_comes_before_the_rate() -> None:
    record, _ = _key(rpm=1, tokens_per_day=10, tokens_per_month=100)
    counts = KeyCounts(requests_in_window=5, oldest_in_window=NOW, in_flight=1, tokens_today=50, tokens_this_month=100)
    error = key_admission(record, counts, NOW)
    assert error is not None and "monthly token quota" in error.message and "2026-02-01T00:00:00Z" in error.message


def test_models_allowed_exactly_or_by_prefix() -> None:
    record, _ = _key(models=("claude-sonnet-4-5*", "gpt-4o"))
    assert model_allowed(record, "claude-sonnet-4-5-20250929")
    assert model_allowed(record, "gpt-4o") and not model_allowed(record, "gpt-4o-mini")
    assert model_refusal(record, "gpt-4o") is None and model_refusal(None, "x") is None
    assert model_refusal(_key("free")[0], "anything") is None
    error = model_refusal(record, "claude-opus-4-5")
    assert error is not None and error.kind is ErrorKind.PERMISSION and error.status_hint == 403
    assert error.message == "Key 'alice' may not use model 'claude-opus-4-5'; it may use: claude-sonnet-4-5*, gpt-4o."


@given(st.integers(min_value=0, max_value=50), st.integers(min_value=1, max_value=50), st.floats(min_value=0, max_value=59.9))
def test_the_rate_decision_matches_its_definition(count: int, rpm: int, age: float) -> None:
    record, _ = _key(rpm=rpm)
    error = key_admission(record, KeyCounts(requests_in_window=count, oldest_in_window=NOW - age, in_flight=0), NOW)
    assert (error is None) is (count <= rpm)
    if error is not None:
        assert error.retry_after is not None and 1.0 <= error.retry_after <= 60.0


def _serve() -> Serve:
    record, secret = _key()
    decision = _decide(_keys(record), ("x-api-key", secret))
    assert isinstance(decision, Serve) and decision.dialect is Dialect.ANTHROPIC
    return decision
