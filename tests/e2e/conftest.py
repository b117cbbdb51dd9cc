"""Fixtures the end-to-end tier shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.runtime.stores import StateStore
from adapters.runtime.stores.memory_store import MemoryStore
from adapters.runtime.stores.redis_store import RedisStore
from adapters.runtime.stores.sqlite_store import SQLiteStore
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures the store fixture uses)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """Each kind of state store in turn, empty (a real redis-server for the Redis one)."""
    if request.param == "memory":
        s: StateStore = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(str(tmp_path / "state.db"))
    else:
        s = RedisStore.from_url(request.getfixturevalue("fresh_redis"))
    yield s
    s.close()
