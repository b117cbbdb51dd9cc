"""The h2 pump's write lock: free when uncontended, first come first served, safe to cancel."""

from __future__ import annotations

import anyio
import pytest

from adapters.anyio_server._h2_stream import WriteLock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_writers_take_turns_in_arrival_order() -> None:
    lock = WriteLock()
    order: list[str] = []
    inside = 0

    async def writer(name: str) -> None:
        nonlocal inside
        async with lock:
            inside += 1
            assert inside == 1
            order.append(name)
            await anyio.sleep(0.01)
            inside -= 1

    async with anyio.create_task_group() as tg:
        for name in "abcd":
            tg.start_soon(writer, name)
            await anyio.sleep(0.001)
    assert order == list("abcd")
    assert not lock.locked()


async def test_a_cancelled_waiter_neither_holds_nor_loses_the_lock() -> None:
    lock = WriteLock()
    got: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope | None = None) -> None:
        if scope is None:
            async with lock:
                got.append(name)
            return
        with scope:
            async with lock:
                got.append(name)

    async with anyio.create_task_group() as tg:
        await lock.__aenter__()
        doomed = anyio.CancelScope()
        tg.start_soon(waiter, "doomed", doomed)
        tg.start_soon(waiter, "next")
        await anyio.sleep(0.01)
        doomed.cancel()  # cancelled while waiting: leaves the queue
        await anyio.sleep(0.01)
        await lock.__aexit__(None, None, None)
    assert got == ["next"]
    assert not lock.locked()

    # Cancelled in the turn it was handed the lock: whether it still runs its block (anyio lets a
    # woken task run to its next checkpoint) or not, the lock reaches the next writer.
    async with anyio.create_task_group() as tg:
        await lock.__aenter__()
        doomed = anyio.CancelScope()
        tg.start_soon(waiter, "doomed2", doomed)
        tg.start_soon(waiter, "after")
        await anyio.sleep(0.01)
        await lock.__aexit__(None, None, None)  # hands over to doomed2...
        doomed.cancel()  # ...which is cancelled before it runs
    assert got[0] == "next" and got[-1] == "after" and set(got) <= {"next", "doomed2", "after"}
    assert not lock.locked()


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_lock_on() -> None:
    import asyncio

    lock = WriteLock()
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with lock:
            got.append(name)

    await lock.__aenter__()
    doomed = asyncio.ensure_future(waiter("doomed"))
    after = asyncio.ensure_future(waiter("after"))
    await asyncio.sleep(0.01)
    await lock.__aexit__(None, None, None)  # hands over to doomed...
    doomed.cancel()  # ...and asyncio throws the cancellation in before it runs
    await asyncio.wait([doomed, after], timeout=2)
    assert doomed.cancelled()
    assert got == ["after"]
    assert not lock.locked()
