"""Just enough of anyio's API, synchronously, for the runtime that ``scripts/unasync.py`` generates.

Hand-written (the one module of ``_sync/`` that is). Tasks are threads, which are greenlets once
gevent has monkey-patched ``threading`` (``python -m adapters.wsgi_gevent``). Cancellation then
works as in anyio: a cancelled task is killed at the point where it blocks (``GreenletExit``
instead of anyio's cancellation exception), so a client disconnect interrupts an upstream read.
With plain threads (another WSGI server, or tests) cancellation is cooperative: ``sleep`` and
``Event.wait`` notice it, and a blocked read finishes first. gevent is never imported here; it is
used only when the entry point has already imported it and patched ``threading``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType, TracebackType
import queue
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "Cancelled",
    "CancelScope",
    "Event",
    "Lock",
    "TaskGroup",
    "create_memory_object_stream",
    "create_task_group",
    "EndOfStream",
    "MemoryObjectReceiveStream",
    "MemoryObjectSendStream",
    "current_time",
    "fail_after",
    "get_cancelled_exc_class",
    "sleep",
    "to_thread",
    "CapacityLimiter",
]

T = TypeVar("T")

# How often a cooperative wait looks at its cancel scopes. Under gevent, tasks are killed, so only
# scopes cancelled without a task to kill (shutdown of background loops) rely on it: a slow poll
# there saves two wake-ups per stream every 50 ms.
_POLL_THREADS = 0.05
_POLL_GEVENT = 1.0


def _poll() -> float:
    return _POLL_THREADS if _gevent() is None else _POLL_GEVENT


class Cancelled(BaseException):
    """A cooperative cancellation (thread mode); under gevent tasks get ``GreenletExit``."""


def _gevent() -> ModuleType | None:
    gevent = sys.modules.get("gevent")
    if gevent is None:
        return None
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    return gevent


class _Worker(Protocol):
    def join(self) -> Any: ...


# Created on first use, not at import: the gevent entry point may import this module before it
# patches ``threading``, and the scopes must then be greenlet-local, not thread-local.
_local: Any = None


def _stack() -> list[CancelScope]:
    global _local
    if _local is None:
        _local = threading.local()
    stack: list[CancelScope] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


#: Notified by every ``cancel()``, so a sleeping task wakes at once instead of at its next poll
#: (a second under gevent: every shutdown waited for the background loops' naps). Made on first
#: use, like ``_local``, so that it is gevent's once patched.
_wakeup: Any = None


def _cancellations() -> threading.Condition:
    global _wakeup
    if _wakeup is None:
        _wakeup = threading.Condition()
    wakeup: threading.Condition = _wakeup
    return wakeup


def _set_stack(stack: list[CancelScope]) -> None:
    _stack()
    _local.stack = stack


def _check_cancelled() -> None:
    for scope in _stack():
        if scope.shield:
            return
        if scope.cancel_called:
            raise Cancelled


class CancelScope:
    """A cancel scope: ``cancel()`` stops the tasks started under it (and cooperative waits)."""

    def __init__(self, *, shield: bool = False) -> None:
        self.shield = shield
        self.cancel_called = False
        self._greenlets: list[Any] = []

    def cancel(self) -> None:
        """Cancel every task of this scope (kill them under gevent; flag them otherwise)."""
        wakeup = _cancellations()
        with wakeup:
            self.cancel_called = True
            wakeup.notify_all()
        gevent = _gevent()
        if gevent is None:
            return
        current = gevent.getcurrent()
        for greenlet in self._greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)

    def __enter__(self) -> CancelScope:
        _stack().insert(0, self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        _stack().remove(self)
        return exc_type is Cancelled and self.cancel_called


class TaskGroup:
    """Runs tasks beside the block; leaving the block waits for them (cancelled on an error)."""

    def __init__(self) -> None:
        self.cancel_scope = CancelScope()
        self._workers: list[_Worker] = []
        self._errors: list[BaseException] = []

    def start_soon(self, func: Callable[..., object], *args: Any) -> None:
        """Start ``func(*args)`` as a task of this group."""
        inherited = list(_stack())

        def run() -> None:
            _set_stack(inherited)
            try:
                func(*args)
            except Cancelled:
                pass
            except BaseException as exc:
                if type(exc).__name__ != "GreenletExit":
                    self._errors.append(exc)
                    self.cancel_scope.cancel()

        gevent = _gevent()
        if gevent is not None:
            greenlet = gevent.spawn(run)
            self.cancel_scope._greenlets.append(greenlet)
            self._workers.append(greenlet)
            return
        thread = threading.Thread(target=run, daemon=True, name=f"kiro2api-{getattr(func, '__name__', 'task')}")
        thread.start()
        self._workers.append(thread)

    def __enter__(self) -> TaskGroup:
        self.cancel_scope.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        try:
            if exc is not None:
                self.cancel_scope.cancel()
            try:
                for worker in self._workers:
                    worker.join()
            except BaseException:
                self.cancel_scope.cancel()
                raise
        finally:
            swallow = self.cancel_scope.__exit__(exc_type, exc, tb)
        if self._errors and exc is None:
            raise self._errors[0]
        if exc is None or swallow:
            # Leaving a task group is a cancellation point, as in anyio.
            _check_cancelled()
        return swallow


def create_task_group() -> TaskGroup:
    """A new task group (``with create_task_group() as tg:``)."""
    return TaskGroup()


class Event:
    """A one-shot flag; ``wait()`` is a cancellation point."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self) -> None:
        while not self._event.wait(_poll()):
            _check_cancelled()


def Lock() -> contextlib.AbstractContextManager[bool]:
    """A mutual-exclusion lock (``threading.Lock``, gevent's once patched)."""
    return threading.Lock()


def sleep(seconds: float) -> None:
    """Sleep; a cancellation point."""
    deadline = time.monotonic() + seconds
    wakeup = _cancellations()
    while True:
        with wakeup:
            _check_cancelled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wakeup.wait(min(remaining, _poll()))


def current_time() -> float:
    """The clock of deadlines."""
    return time.monotonic()


@contextlib.contextmanager
def fail_after(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` if the block takes longer (enforced under gevent only).

    With plain threads a blocked call cannot be interrupted; httpcore's own connect and read
    timeouts bound it instead.
    """
    if seconds <= 0:
        raise TimeoutError
    gevent = _gevent()
    if gevent is None:
        yield
        return
    with gevent.Timeout(seconds, TimeoutError):
        yield


def get_cancelled_exc_class() -> type[BaseException]:
    """What a cancelled task sees: ``GreenletExit`` under gevent, ``Cancelled`` otherwise."""
    gevent = _gevent()
    if gevent is not None:
        exit_class: type[BaseException] = gevent.GreenletExit
        return exit_class
    return Cancelled


class EndOfStream(Exception):
    """Every sender closed and nothing is left to receive."""


class WouldBlock(Exception):
    """``receive_nowait`` found nothing to receive."""


#: Put by the sender's ``close()``: wakes a receiver blocked in ``get()`` at once, where it would
#: otherwise notice the close only at its next poll (a second under gevent, at every shutdown).
_CLOSED: Any = object()


class _Channel(Generic[T]):
    def __init__(self) -> None:
        self.items: queue.Queue[T] = queue.Queue()
        self.closed = False

    def take(self, item: T) -> T:
        """``item`` as received, or ``EndOfStream`` for the close marker (left for other receivers)."""
        if item is _CLOSED:
            self.items.put(item)
            raise EndOfStream
        return item


class MemoryObjectSendStream(Generic[T]):
    """The sending end of an unbounded in-memory channel."""

    def __init__(self, channel: _Channel[T]) -> None:
        self._channel = channel

    def send_nowait(self, item: T) -> None:
        self._channel.items.put(item)

    def send(self, item: T) -> None:
        # Unbounded here, so sending never waits (anyio's bounded buffer applies under asyncio only).
        self._channel.items.put(item)

    def close(self) -> None:
        if not self._channel.closed:
            self._channel.closed = True
            self._channel.items.put(_CLOSED)

    def __enter__(self) -> MemoryObjectSendStream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class MemoryObjectReceiveStream(Generic[T]):
    """The receiving end; iteration ends once the sender closed and the channel is empty."""

    def __init__(self, channel: _Channel[T]) -> None:
        self._channel = channel

    def receive(self) -> T:
        while True:
            try:
                return self._channel.take(self._channel.items.get(timeout=_poll()))
            except queue.Empty:
                if self._channel.closed and self._channel.items.empty():
                    raise EndOfStream from None
                _check_cancelled()

    def receive_nowait(self) -> T:
        try:
            return self._channel.take(self._channel.items.get_nowait())
        except queue.Empty:
            if self._channel.closed:
                raise EndOfStream from None
            raise WouldBlock from None

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.receive()
            except EndOfStream:
                return

    def close(self) -> None:
        pass

    def __enter__(self) -> MemoryObjectReceiveStream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class create_memory_object_stream(tuple[MemoryObjectSendStream[T], MemoryObjectReceiveStream[T]]):  # noqa: N801
    """``send, receive = create_memory_object_stream[Item](max_buffer_size=math.inf)`` (unbounded only)."""

    def __new__(  # type: ignore[misc]
        cls, max_buffer_size: float = 0, item_type: object = None
    ) -> tuple[MemoryObjectSendStream[T], MemoryObjectReceiveStream[T]]:
        channel: _Channel[T] = _Channel()
        return MemoryObjectSendStream(channel), MemoryObjectReceiveStream(channel)


class CapacityLimiter:
    """``CapacityLimiter``: no worker threads here, so nothing to limit."""

    def __init__(self, total_tokens: float) -> None:
        self.total_tokens = total_tokens


class _ToThread:
    """``to_thread.run_sync``: the stores are synchronous already; call them directly."""

    @staticmethod
    def run_sync(func: Callable[..., T], *args: Any, limiter: CapacityLimiter | None = None) -> T:
        return func(*args)


to_thread = _ToThread()
