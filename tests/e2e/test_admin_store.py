"""The admin's records on every store (memory, SQLite, Redis): runtime accounts and the audit
log; the account registry that two replicas share through one store; the console's views hold
no secret."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapters.runtime.account_registry import AccountConflict, AccountRegistry, UnknownAccount
from adapters.runtime.admin_console import AdminConsole, AuditEntry
from adapters.runtime.stores import StateStore
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from kiro_protocol import AccountState, LocalProtocolError, parse_accounts
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(60)

CONFIGURED = parse_accounts(json.dumps([{"refreshToken": "configured-refresh-token-0123456789", "description": "env"}]))
ADDED = {"auth": "IdC", "refreshToken": "added-refresh-token-abcdefghijklmnop", "clientId": "client-id-42",
         "clientSecret": "client-secret-value-xyz", "description": "team"}
SECRETS = ("configured-refresh-token-0123456789", "added-refresh-token-abcdefghijklmnop", "client-id-42",
           "client-secret-value-xyz")


def test_admin_account_records_are_put_listed_and_removed(store: StateStore) -> None:
    assert store.admin_accounts() == {}
    store.put_admin_account("acct-1", '{"a":1}')
    store.put_admin_account("acct-1", '{"a":2}')
    store.put_admin_account("acct-2", '{"b":1}')
    assert store.admin_accounts() == {"acct-1": '{"a":2}', "acct-2": '{"b":1}'}
    assert store.remove_admin_account("acct-1") and not store.remove_admin_account("acct-1")
    assert store.admin_accounts() == {"acct-2": '{"b":1}'}


def test_the_audit_log_is_newest_first_and_bounded(store: StateStore) -> None:
    for i in range(7):
        store.add_audit(f'{{"n":{i}}}', keep=5)
    assert store.audit(3) == ['{"n":6}', '{"n":5}', '{"n":4}']
    assert store.audit(100) == [f'{{"n":{i}}}' for i in (6, 5, 4, 3, 2)]


def test_sqlite_keeps_admin_records_across_a_restart(tmp_path: Path) -> None:
    first = SQLiteStore(str(tmp_path / "state.db"))
    first.put_admin_account("acct-1", "{}")
    first.add_audit('{"n":1}', keep=10)
    first.close()
    again = SQLiteStore(str(tmp_path / "state.db"))
    assert again.admin_accounts() == {"acct-1": "{}"} and again.audit(5) == ['{"n":1}']
    again.close()


def test_accounts_added_disabled_enabled_and_removed_reach_a_second_replica(store: StateStore) -> None:
    one = AccountRegistry(CONFIGURED, store, time.time)
    two = AccountRegistry(CONFIGURED, store, time.time)  # another replica on the same store
    one.reload(), two.reload()
    assert [a.label for a in two.accounts] == ["#0 (env)"]
    added = one.add(ADDED)
    assert added.index == 1 and not one.is_configured(added.account_id)
    assert two.reload() and [a.label for a in two.accounts] == ["#0 (env)", "#1 (team)"]
    version = two.version
    assert not two.reload() and two.version == version  # nothing changed: no rebuild
    with pytest.raises(AccountConflict):
        one.add(ADDED)
    configured = CONFIGURED[0].account_id
    one.set_disabled(configured, True)
    two.reload()
    assert [a.disabled for a in two.accounts] == [True, False]
    one.set_disabled(configured, False)
    two.reload()
    assert [a.disabled for a in two.accounts] == [False, False]
    with pytest.raises(AccountConflict, match="KIRO_AUTH_TOKEN"):
        one.remove(configured)
    with pytest.raises(UnknownAccount):
        one.remove("acct-nothing")
    one.remove(added.account_id)
    two.reload()
    assert [a.label for a in two.accounts] == ["#0 (env)"]


def test_the_console_shows_no_secret_and_audits_without_one(store: StateStore) -> None:
    registry = AccountRegistry(CONFIGURED, store, time.time)
    registry.reload()
    console = AdminConsole(registry=registry, store=store)
    view = console.add_account(dict(ADDED))
    store.update(str(view["id"]), lambda s: AccountState(access_token="access-token-secret-1234567", expires_at=time.time() + 600,
                                                    refresh_token="rotated-refresh-token-secret-000"))
    console.audit(AuditEntry(time=time.time(), actor="admin-api", action="accounts.add", target=str(view["id"]),
                             address="10.0.0.1:5", status=201, detail="added"))
    shown = json.dumps([console.accounts(), console.audit_log(), view])
    for secret in SECRETS + ("access-token-secret-1234567", "rotated-refresh-token-secret-000"):
        assert secret not in shown
    assert [a["source"] for a in console.accounts()] == ["configured", "added"]
    entry = console.audit_log(1)[0]
    assert entry["actor"] == "admin-api" and entry["address"] == "10.0.0.1:5" and entry["target"] == view["id"]


def test_enabling_gives_an_account_the_pool_gave_up_on_another_chance(store: StateStore) -> None:
    registry = AccountRegistry(CONFIGURED, store, time.time)
    registry.reload()
    console = AdminConsole(registry=registry, store=store)
    account_id = CONFIGURED[0].account_id
    store.update(account_id, lambda s: AccountState(disabled_reason="refresh token rejected (invalid_grant)"))
    assert console.accounts()[0]["status"] == "disabled"
    console.set_account_disabled(account_id, False)
    assert console.accounts()[0]["status"] == "usable"


def test_bad_entries_and_unknown_ids_are_clear_errors(store: StateStore) -> None:
    registry = AccountRegistry((), store, time.time)
    console = AdminConsole(registry=registry, store=store)
    with pytest.raises(LocalProtocolError) as bad:
        console.add_account({"refreshToken": "too-short"})
    assert bad.value.status_hint == 400 and "refreshToken" in bad.value.message and "too-short" not in bad.value.message
    with pytest.raises(LocalProtocolError) as missing:
        console.set_account_disabled("acct-none", True)
    assert missing.value.status_hint == 404
    with pytest.raises(LocalProtocolError) as dup_key:
        console.add_key({"name": "ci"})
        console.add_key({"name": "ci"})
    assert dup_key.value.status_hint == 409
    with pytest.raises(LocalProtocolError) as grouping:
        console.usage(by="colour")
    assert grouping.value.status_hint == 400
