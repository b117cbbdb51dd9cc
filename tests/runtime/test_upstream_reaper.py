"""Idle upstream connections that upstream closed are let go in the background (issue 18, item 4).

Upstream (here the simulator, with a short keep-alive) closes an idle kept-alive connection; the
gateway's end then sits in CLOSE-WAIT until something closes it. Before, only the account's next
call did; ``reap_idle``/``run_reaper`` do it without one. Sockets are counted from /proc.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from adapters.runtime.upstream import UpstreamClient
from adapters.simulator import SimulatorConfig, start_simulator
from kiro_protocol.http._messages import HttpRequest

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="counts sockets through /proc (Linux)"),
]

_CLOSE_WAIT = "08"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def close_wait_sockets(pid: int | str, remote_port: int) -> int:
    """How many TCP sockets of process ``pid`` to ``remote_port`` are in CLOSE-WAIT."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == _CLOSE_WAIT and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                count += 1
    return count


async def wait_for(condition: object, what: str, guard: float = 30.0) -> None:
    """Poll ``condition()`` until true; ``guard`` only stops a hang."""
    with anyio.fail_after(guard):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.05)


async def _burst(client: UpstreamClient, url: str, calls: int) -> None:
    async def one() -> None:
        answer = await client.send(HttpRequest(method="GET", url=f"{url}/health", headers=()), account="a")
        assert answer.status == 200

    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)


async def test_reap_idle_closes_what_upstream_closed() -> None:
    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg, config=SimulatorConfig(pace_ms=0, keepalive_seconds=0.3))
        async with UpstreamClient() as client:
            await _burst(client, sim.url, 20)
            # The simulator closes them all after its keep-alive: half-closed on our side.
            await wait_for(lambda: close_wait_sockets("self", sim.port) == 20, "20 CLOSE-WAIT sockets")
            assert await client.reap_idle() == 20
            # asyncio closes a transport's socket on its next turn.
            await wait_for(lambda: close_wait_sockets("self", sim.port) == 0, "no CLOSE-WAIT socket")
            assert await client.reap_idle() == 0
            # The pool has room again: new calls open new connections and succeed.
            await _burst(client, sim.url, 3)
        sim.stop()


async def test_the_reaper_runs_in_the_background_and_keeps_live_connections() -> None:
    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg, config=SimulatorConfig(pace_ms=0, keepalive_seconds=0.3))
        async with UpstreamClient() as client:
            tg.start_soon(client.run_reaper, 0.05)
            await _burst(client, sim.url, 10)
            await wait_for(lambda: close_wait_sockets("self", sim.port) == 0, "no CLOSE-WAIT socket")
            await _burst(client, sim.url, 2)
        sim.stop()
        tg.cancel_scope.cancel()


async def test_a_connection_still_open_upstream_is_kept() -> None:
    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg, config=SimulatorConfig(pace_ms=0, keepalive_seconds=60))
        async with UpstreamClient() as client:
            await _burst(client, sim.url, 4)
            assert await client.reap_idle() == 0
        sim.stop()
