"""The synchronous anyio stand-in the generated runtime runs on: threads here, greenlets under gevent.

The gevent half runs in a subprocess that monkey-patches first (never gevent in this process).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from adapters.runtime._sync import _anyio as anyio

pytestmark = pytest.mark.timeout(30)


def test_a_task_group_waits_for_its_tasks() -> None:
    done: list[int] = []

    def task(i: int) -> None:
        anyio.sleep(0.05 * i)
        done.append(i)

    with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(task, i)
    assert sorted(done) == [0, 1, 2]


def test_cancelling_the_scope_stops_sleeping_and_waiting_tasks() -> None:
    stopped: list[str] = []
    event = anyio.Event()

    def sleeper() -> None:
        try:
            anyio.sleep(30)
        except anyio.Cancelled:
            stopped.append("sleep")
            raise

    def waiter() -> None:
        try:
            event.wait()
        except anyio.Cancelled:
            stopped.append("wait")
            raise

    t0 = time.monotonic()
    with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        tg.start_soon(waiter)
        time.sleep(0.1)
        tg.cancel_scope.cancel()
    assert sorted(stopped) == ["sleep", "wait"] and time.monotonic() - t0 < 2


def test_a_task_can_cancel_its_own_group_as_anyio_code_does() -> None:
    # The service's shape: a reader finishes and cancels the ticker beside it.
    ticks: list[int] = []

    def ticker() -> None:
        while True:
            anyio.sleep(0.02)
            ticks.append(1)

    def reader(scope: anyio.CancelScope) -> None:
        anyio.sleep(0.1)
        scope.cancel()

    with anyio.create_task_group() as tg:
        tg.start_soon(reader, tg.cancel_scope)
        tg.start_soon(ticker)
    assert ticks
    count = len(ticks)
    time.sleep(0.1)
    assert len(ticks) == count


def test_an_error_in_a_task_cancels_the_others_and_is_raised() -> None:
    def failing() -> None:
        anyio.sleep(0.05)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 30)
            tg.start_soon(failing)


def test_an_enclosing_cancelled_scope_reaches_the_host_when_the_group_ends() -> None:
    outer = anyio.CancelScope()
    with outer:
        with pytest.raises(anyio.Cancelled):
            with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 30)
                outer.cancel()
    assert outer.cancel_called


def test_shielded_scopes_are_not_cancellation_points() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        with anyio.CancelScope(shield=True):
            anyio.sleep(0.01)  # no Cancelled here
        with pytest.raises(anyio.Cancelled):
            anyio.sleep(0.01)
    # The scope swallows its own cancellation on exit, as anyio's does.


def test_memory_object_stream_delivers_in_order_then_ends() -> None:
    send, receive = anyio.create_memory_object_stream[int](max_buffer_size=float("inf"))
    got: list[int] = []

    def consume() -> None:
        with receive:
            for item in receive:
                got.append(item)

    with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(5):
            send.send_nowait(i)
        send.close()
    assert got == [0, 1, 2, 3, 4]


def test_fail_after_and_the_rest() -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0):
            pass
    with anyio.fail_after(5):
        pass  # thread mode: not enforced, but no error
    assert anyio.get_cancelled_exc_class() is anyio.Cancelled
    assert anyio.to_thread.run_sync(lambda a, b: a + b, 2, 3) == 5
    lock = anyio.Lock()
    with lock:
        assert not threading.Lock().locked()
    assert anyio.current_time() <= time.monotonic()


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import socket, sys, time
    from adapters.runtime._sync import _anyio as anyio

    port = int(sys.argv[1])
    outcome = []

    def blocked_read():
        conn = socket.create_connection(("127.0.0.1", port))
        try:
            conn.recv(10)          # the server never sends: only a kill ends this
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            conn.close()

    t0 = time.monotonic()
    with anyio.create_task_group() as tg:
        tg.start_soon(blocked_read)
        anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    assert outcome == ["GreenletExit"], outcome
    assert time.monotonic() - t0 < 2
    assert anyio.get_cancelled_exc_class().__name__ == "GreenletExit"
    try:
        with anyio.fail_after(0.2):
            socket.create_connection(("127.0.0.1", port)).recv(10)
    except TimeoutError:
        print("timeout ok")
    print("ok")
    """
)


def test_under_gevent_cancellation_kills_a_task_blocked_in_a_read() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", GEVENT_SCRIPT, str(port)], capture_output=True, text=True, timeout=30, check=False
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["timeout", "ok", "ok"]
