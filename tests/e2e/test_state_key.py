"""Secrets at rest (KIRO_STATE_KEY): sealed in SQLite and Redis, readable before and after a key
is set, rotated, and a wrong key stops start-up with a clear error (exit 2, no traceback)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from adapters.runtime.state_cipher import (
    SEALED_PREFIX,
    StateCipher,
    StateKeyError,
    generate_key,
    open_sealed_store,
    parse_state_key,
)
from adapters.runtime.stores import StateStore, StoreConfigurationError
from kiro_protocol.pool._accounts import AccountState
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
REFRESH = "rt-MARKER-refresh-0123456789"
ACCESS = "at-MARKER-access-0123456789"
CLIENT_SECRET = "cs-MARKER-secret-0123456789"
ADMIN_RECORD = json.dumps({"entry": {"refreshToken": REFRESH, "clientSecret": CLIENT_SECRET}, "disabled": None})
STATE = AccountState(access_token=ACCESS, refresh_token=REFRESH, expires_at=1e10, throttle_level=3)

OLD, NEW, OTHER = (parse_state_key(generate_key()) for _ in range(3))

Opener = Callable[[tuple[bytes, ...]], StateStore]


@pytest.fixture(params=["sqlite", "redis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``KIRO_STATE`` URL of an empty persistent store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("fresh_redis")
    return url


@pytest.fixture
def opened(where: str) -> Iterator[Opener]:
    """Opens the store at ``where`` with these keys as start-up does; closes what it opened."""
    stores: list[StateStore] = []

    def open_with(keys: tuple[bytes, ...]) -> StateStore:
        store = open_sealed_store(where, keys)
        stores.append(store)
        return store

    yield open_with
    for store in stores:
        store.close()


def _raw_values(where: str) -> list[str]:
    """Every stored value holding a state or an admin record, as the backend keeps it."""
    if where.startswith("sqlite"):
        with sqlite3.connect(where[len("sqlite:///"):]) as db:
            rows = db.execute("SELECT state FROM account_state UNION ALL SELECT record FROM admin_account").fetchall()
        return [value for (value,) in rows]
    client = redis.Redis.from_url(where, decode_responses=True)
    try:
        values = [str(client.get(key)) for key in client.scan_iter(match="kiro2api:state:*")]
        values += [str(v) for v in client.hvals("kiro2api:admin:accounts")]
        return values
    finally:
        client.close()


def _everything_raw(where: str) -> str:
    """The whole store as bytes-ish text: the SQLite file, or every Redis value."""
    if where.startswith("sqlite"):
        path = Path(where[len("sqlite:///"):])
        return "".join(p.read_bytes().decode("latin-1") for p in path.parent.glob(path.name + "*"))
    return "\n".join(_raw_values(where))


def _write_secrets(store: StateStore) -> None:
    store.update("acct", lambda _old: STATE)
    store.put_admin_account("added", ADMIN_RECORD)


def test_with_a_key_no_secret_is_stored_in_clear_and_everything_reads_back(where: str, opened: Opener) -> None:
    store = opened((NEW,))
    _write_secrets(store)
    assert store.load_many(["acct"]) == {"acct": STATE}
    assert store.admin_accounts() == {"added": ADMIN_RECORD}
    raw = _raw_values(where)
    assert len(raw) == 2 and all(value.startswith(SEALED_PREFIX) for value in raw)
    store.close()
    whole = _everything_raw(where)
    for secret in (REFRESH, ACCESS, CLIENT_SECRET, "MARKER"):
        assert secret not in whole
    # A restart with the same key reads it all.
    again = opened((NEW,))
    assert again.load_many(["acct"]) == {"acct": STATE}
    assert again.admin_accounts() == {"added": ADMIN_RECORD}


def test_a_store_written_without_a_key_reads_after_one_is_set_and_is_sealed_at_start_up(
    where: str, opened: Opener
) -> None:
    plain = opened(())
    _write_secrets(plain)
    assert any(REFRESH in value for value in _raw_values(where))  # the former, unencrypted state
    plain.close()
    keyed = opened((NEW,))
    assert all(value.startswith(SEALED_PREFIX) for value in _raw_values(where))
    assert keyed.load_many(["acct"]) == {"acct": STATE}
    assert keyed.admin_accounts() == {"added": ADMIN_RECORD}


def test_rotation_opens_with_the_previous_key_and_reseals_with_the_new_one(where: str, opened: Opener) -> None:
    _write_secrets(opened((OLD,)))
    before = _raw_values(where)
    rotated = opened((NEW, OLD))  # KIRO_STATE_KEY=new, KIRO_STATE_KEY_PREVIOUS=old
    after = _raw_values(where)
    assert set(before).isdisjoint(after) and all(v.startswith(SEALED_PREFIX) for v in after)
    assert rotated.load_many(["acct"]) == {"acct": STATE}
    # Once resealed, the old key is no longer needed, and no longer enough.
    assert opened((NEW,)).admin_accounts() == {"added": ADMIN_RECORD}
    with pytest.raises(StateKeyError) as caught:
        opened((OLD,))
    assert "KIRO_STATE_KEY" in str(caught.value)


def test_a_wrong_or_missing_key_is_a_clear_configuration_error(where: str, opened: Opener) -> None:
    _write_secrets(opened((NEW,)))
    with pytest.raises(StoreConfigurationError) as wrong:
        opened((OTHER,))
    assert "KIRO_STATE_KEY does not open" in str(wrong.value)
    with pytest.raises(StateKeyError) as missing:
        opened(())
    assert "KIRO_STATE_KEY is not set" in str(missing.value)
    for error in (wrong.value, missing.value):
        assert "MARKER" not in str(error) and base64.urlsafe_b64encode(NEW).decode()[:20] not in str(error)


def test_a_sealed_record_moved_to_another_account_does_not_open(tmp_path: Path) -> None:
    cipher = StateCipher((NEW,))
    sealed = cipher.seal(STATE.to_json(), "state:a")
    assert cipher.open(sealed, "state:a") == STATE.to_json()
    with pytest.raises(StateKeyError):
        cipher.open(sealed, "state:b")
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(StateKeyError):
        cipher.open(tampered, "state:a")


def test_the_key_format() -> None:
    key = generate_key()
    assert len(key) == 43 and len(parse_state_key(key)) == 32
    assert parse_state_key(key + "=") == parse_state_key(key)
    for bad in ("", "short", "!" * 43, base64.urlsafe_b64encode(os.urandom(16)).decode()):
        with pytest.raises(ValueError) as caught:
            parse_state_key(bad)
        assert bad == "" or bad not in str(caught.value)


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``kiro2api serve`` until it stops by itself (start-up errors) or the hang guard."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_"))}
    accounts = json.dumps([{"auth": "Social", "refreshToken": REFRESH}])
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(ROOT), "KIRO_AUTH_TOKEN": accounts, "KIRO_CLIENT_TOKEN": "t" * 20, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_with_a_wrong_key_stops_with_one_line_and_exit_2(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    store = open_sealed_store(state, (NEW,))
    _write_secrets(store)
    store.close()
    wrong = base64.urlsafe_b64encode(OTHER).decode()
    done = _serve(tmp_path, KIRO_STATE=state, KIRO_STATE_KEY=wrong)
    assert done.returncode == 2, done.stderr
    assert "KIRO_STATE_KEY" in done.stderr and "Traceback" not in done.stderr
    assert wrong not in done.stderr + done.stdout and "MARKER" not in done.stderr + done.stdout
    # A malformed key is a settings error, also exit 2, its value never quoted.
    done = _serve(tmp_path, KIRO_STATE=state, KIRO_STATE_KEY="not-a-key-" + "x" * 7)
    assert done.returncode == 2 and "KIRO_STATE_KEY" in done.stderr and "not-a-key-" not in done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_key_start_up_says_once_that_secrets_are_stored_unencrypted(
    where: str, opened: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="kiro2api.state"):
        opened(())
    notices = [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]
    assert len(notices) == 1 and "KIRO_STATE_KEY is not set" in notices[0]
    caplog.clear()
    with caplog.at_level("INFO", logger="kiro2api.state"):
        opened((NEW,))
        open_sealed_store("memory://", ()).close()  # nothing at rest: nothing to say
    assert not [r for r in caplog.records if "unencrypted" in r.getMessage()]
