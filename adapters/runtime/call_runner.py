"""Runs one ``ModelCall``: does what it decides, feeds it the results, writes its bytes.

Every decision (the account, the retry, the commit point, the status of an error, what the pool
records) is the core's; this module only moves bytes and waits: it opens the upstream call,
reads its body into the call, writes the call's output to the client, ticks the clock, and hands
pool decisions to the ``PoolDriver``. A client disconnect cancels the task running it; leaving
``upstream.stream()`` then closes the upstream connection at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import anyio

from kiro_protocol import Answer, ClientOutput, Done, ModelCall, SendUpstream, StartStream

from .app import Lifecycle, RequestLog, Responder, send_reply
from .pool_driver import PoolDriver
from .upstream import UpstreamConnectionError, UpstreamStream

__all__ = ["run_call"]

log = logging.getLogger("kiro2api.service")

# Error bodies from upstream are small; more is not read.
_MAX_ERROR_BODY = 64 * 1024
# How often the keep-alive clock of a streaming call is advanced.
_TICK = 1.0
# Whether the handler's task reads the upstream body itself. The synchronous twin (gevent, threads)
# reads in a task of its own: there only a task can be interrupted in a blocking read.
_PULL_IN_PLACE = True

_Opened = tuple[contextlib.AsyncExitStack, UpstreamStream]


async def run_call(
    call: ModelCall,
    *,
    driver: PoolDriver,
    respond: Responder,
    lifecycle: Lifecycle,
    record: RequestLog,
    timeout: float,
    monotonic: Callable[[], float],
) -> None:
    """Drive ``call`` until it is done; ``timeout`` bounds each whole upstream call."""
    opened: _Opened | None = None
    try:
        while True:
            decision = call.next_decision(driver.clock())
            if isinstance(decision, (SendUpstream, Answer, Done)):
                driver.leave_line(call)  # no longer waiting for an account
            if isinstance(decision, SendUpstream):
                record.account = decision.account.label
                opened = await _send(call, decision, driver, timeout, monotonic, record)
            elif isinstance(decision, StartStream):
                assert opened is not None
                stack, upstream = opened
                opened = None
                async with stack:
                    await _stream(call, upstream, driver, respond, lifecycle, monotonic)
            elif isinstance(decision, Answer):
                await send_reply(respond, decision.reply)
            elif isinstance(decision, ClientOutput):  # a stream that ended between upstream calls
                await _write_output(respond, decision)
            elif isinstance(decision, Done):
                return
            elif not await driver.execute(decision, call):
                raise RuntimeError(f"unexpected decision {type(decision).__name__}")
    finally:
        driver.leave_line(call)  # the client left while the call waited in line
        record.input_tokens, record.output_tokens = call.usage.input_tokens, call.usage.output_tokens
        record.error = call.error
        record.credits, record.recoveries = call.credits, call.recoveries
        if opened is not None:
            with anyio.CancelScope(shield=True):
                await opened[0].aclose()


async def _send(
    call: ModelCall,
    decision: SendUpstream,
    driver: PoolDriver,
    timeout: float,
    monotonic: Callable[[], float],
    record: RequestLog,
) -> _Opened | None:
    """Open the upstream call and feed its answer; the open stream when it answered 200."""
    stack = contextlib.AsyncExitStack()
    label = decision.account.label
    # Counted from before the connection is taken until the call is closed, however it ends.
    driver.call_opened(decision.account.account_id)
    stack.callback(driver.call_closed, decision.account.account_id)
    try:
        upstream = await stack.enter_async_context(
            driver.upstream.stream(decision.request, account=decision.account.account_id, timeout=timeout)
        )
    except UpstreamConnectionError as exc:
        await stack.aclose()
        record.upstream.append((label, "error"))
        log.warning("account %s: no answer from Kiro: %s", label, exc.failure.message)
        call.upstream_failed(exc.failure.message, driver.clock())
        return None
    except BaseException:
        # Cancelled (the client left) before the answer's head: the slot must not stay counted.
        with anyio.CancelScope(shield=True):
            await stack.aclose()
        raise
    record.upstream.append((label, str(upstream.status)))
    if upstream.status == 200:
        call.upstream_started(driver.clock(), monotonic())
        return stack, upstream
    body = bytearray()
    try:
        with upstream.deadline():
            async for chunk in upstream.chunks:
                body += chunk
                if len(body) >= _MAX_ERROR_BODY:
                    break
    except UpstreamConnectionError:
        pass
    finally:
        await stack.aclose()
    log.warning("account %s: Kiro answered HTTP %d", label, upstream.status)
    call.upstream_answered(upstream.status, bytes(body[:_MAX_ERROR_BODY]), driver.clock(), upstream.headers)
    return None


async def _stream(
    call: ModelCall,
    upstream: UpstreamStream,
    driver: PoolDriver,
    respond: Responder,
    lifecycle: Lifecycle,
    monotonic: Callable[[], float],
) -> None:
    """Read the upstream body into ``call`` and write its output, until the answer ended."""
    writer = _Writer(call, respond)
    # The call is only ever touched under this mutex and never across an await, so the tasks
    # below need no async lock. Under asyncio or gevent it is never contended; threads need it.
    mutex = writer.mutex

    async def pull() -> None:
        # Chunks are translated as they arrive and written by this task: just before the upstream
        # connection waits for more (its wait hook), so frames that arrived together leave in one
        # write; or after every chunk where there is no hook.
        hook = upstream.wait_hook
        if hook is not None:
            hook.callback = writer.pump
        try:
            with upstream.deadline():
                async for chunk in upstream.chunks:
                    with mutex:
                        if not call.reading:
                            break  # terminate() ended the call while this read was under way
                        call.receive_data(chunk, monotonic())
                    if hook is None:
                        await writer.pump()
                    if not call.reading:
                        break
                else:
                    with mutex:
                        if call.reading:
                            call.receive_data(b"", monotonic())
        except UpstreamConnectionError as exc:
            with mutex:
                if call.reading:
                    call.connection_lost(exc.failure.message, monotonic())
        writer.close()

    async def tick_once() -> None:
        with mutex:
            call.tick(monotonic())
        await writer.pump()

    async def tick() -> None:
        while True:
            await anyio.sleep(_TICK)
            await tick_once()

    # Where the upstream connection can run the clock while it waits for bytes (a direct
    # connection, read by this task), no clock task is started, cancelled and reaped per call.
    hook = upstream.wait_hook
    clock_in_reads = _PULL_IN_PLACE and hook is not None
    if clock_in_reads and call.streaming:
        assert hook is not None
        hook.tick, hook.tick_interval = tick_once, _TICK

    # At the shutdown deadline the read under way must end now. A connection that can be
    # closed from a callback is (a cancel scope entered and left per call cost more); else the
    # reader runs in a scope that is cancelled.
    interrupt = hook.interrupt if clock_in_reads and hook is not None else None
    pulling = anyio.CancelScope() if interrupt is None else None

    def terminate() -> None:
        # Called by Lifecycle.terminate() at the shutdown deadline.
        with mutex:
            call.shutdown(monotonic())
        writer.close()
        if interrupt is not None:
            interrupt()
        if pulling is not None:
            pulling.cancel()

    unwatch = lifecycle.on_terminate(terminate)
    try:
        if interrupt is not None:
            await pull()
            writer.close()
            await writer.wait_until_written()
            return
        assert pulling is not None
        if clock_in_reads:
            with pulling:
                await pull()
            writer.close()  # cancelled by terminate() before pull() closed it
            await writer.wait_until_written()
            return
        async with anyio.create_task_group() as tg:
            if call.streaming:
                tg.start_soon(tick)
            if _PULL_IN_PLACE:
                # This task reads on at once: a task of its own would start a turn of the event
                # loop later, behind everything else that is ready (time to first byte).
                with pulling:
                    await pull()
                writer.close()  # cancelled by terminate() before pull() closed it
            else:
                tg.start_soon(pull)
            await writer.wait_until_written()
            tg.cancel_scope.cancel()
    except anyio.get_cancelled_exc_class():
        # The client left (or the server gave up on us): still record what was used.
        with mutex:
            call.client_gone(shutting_down=lifecycle.shutting_down.is_set())
        with anyio.CancelScope(shield=True):
            while not isinstance(decision := call.next_decision(driver.clock()), (Done, Answer)):
                await driver.execute(decision, call)
        raise
    finally:
        unwatch()


async def _write_output(respond: Responder, output: ClientOutput) -> None:
    # The end goes with the last bytes: one write for both (the whole answer, when it came at once).
    if output.head is not None:
        status, headers = output.head
        await respond.start_stream(status, headers, output.data, end=output.end)
    elif output.end:
        await respond.end_stream(output.data)
    elif output.data:
        await respond.send_chunk(output.data)


class _Writer:
    """Writes a call's output: one write in flight at a time, bytes produced meanwhile join the
    next one. ``close()`` when the producers are done; ``wait_until_written()`` then returns
    once everything due has been written (it writes itself what only a callback produced)."""

    def __init__(self, call: ModelCall, respond: Responder) -> None:
        self._call = call
        self._respond = respond
        self.mutex = threading.Lock()
        # Rung by close() and by the end of a write after close(): wait_until_written() looks again.
        self._bell = anyio.Event()
        self._closed = False
        self._writing = False
        # Set when wait_until_written() returns: nothing is written any more.
        self._sealed = False

    async def pump(self) -> None:
        """Write what is due, unless a write is in flight already (it takes these bytes next)."""
        while True:
            with self.mutex:
                if self._writing or self._sealed:
                    return
                output = self._call.take_output()
                if output is None:
                    return
                self._writing = True
            try:
                await _write_output(self._respond, output)
            finally:
                with self.mutex:
                    self._writing = False
                    if self._closed:
                        self._bell.set()

    def close(self) -> None:
        with self.mutex:
            self._closed = True
            self._bell.set()

    async def wait_until_written(self) -> None:
        while True:
            await self._bell.wait()
            with self.mutex:
                self._bell = anyio.Event()
            await self.pump()  # bytes a callback produced (terminate) have no producer to pump them
            with self.mutex:
                if self._closed and not self._writing and not self._call.output_due:
                    self._sealed = True
                    return
