"""call_runner's stream loop against the shutdown deadline: a chunk that arrives after the
deadline ended the call is dropped, not fed to it (which raised, and turned the access line's
``shutdown`` into ``invalid_request_error`` under gevent, where the cancel of the read lands late)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import pytest

from adapters.runtime import call_runner
from adapters.runtime.app import Lifecycle
from adapters.runtime.upstream import UpstreamStream
from kiro_protocol import LoadState, ModelCall, SendUpstream, StartStream, parse_accounts
from kiro_protocol.responses import AssistantResponse, encode_upstream_event
from tests.core import call_driver
from tests.core.call_driver import FRESH, T0

ACCOUNTS = parse_accounts(json.dumps([{"auth": "Social", "refreshToken": "aor-0" + "x" * 40}]))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        raise AssertionError("a started stream is not answered with a whole response")

    async def start_stream(self, status: int, headers: Sequence[tuple[str, str]], data: bytes = b"", *, end: bool = False) -> None:
        self.data += data
        self.ended = end

    async def send_chunk(self, data: bytes) -> None:
        self.data += data

    async def end_stream(self, data: bytes = b"") -> None:
        self.data += data
        self.ended = True


class NoDriver:
    def clock(self) -> float:
        return T0

    async def execute(self, decision: object, call: ModelCall) -> bool:
        return True


def streaming_call() -> ModelCall:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    call = call_driver.call_for(body, accounts=ACCOUNTS)
    if isinstance(call.next_decision(T0), LoadState):
        call.state_loaded({a.account_id: FRESH for a in ACCOUNTS}, T0)
    assert isinstance(call.next_decision(T0), SendUpstream)
    call.upstream_started(T0, 0.0)
    while not isinstance(call.next_decision(T0), StartStream):
        pass
    return call


@pytest.mark.anyio
async def test_a_chunk_read_after_the_shutdown_deadline_is_dropped() -> None:
    call = streaming_call()
    lifecycle = Lifecycle()

    async def chunks() -> AsyncIterator[bytes]:
        yield encode_upstream_event(AssistantResponse(content="Once upon"))
        # The deadline passes while the next read is under way; its bytes still come back.
        lifecycle.terminate()
        yield encode_upstream_event(AssistantResponse(content=" a time"))

    upstream = UpstreamStream(status=200, headers=(), chunks=chunks())
    respond = Recorder()
    await call_runner._stream(call, upstream, NoDriver(), respond, lifecycle, lambda: 1.0)  # type: ignore[arg-type]
    text = respond.data.decode()
    assert "Once upon" in text and " a time" not in text
    assert "event: error" in text and respond.ended
    assert call.error == "shutdown"


@pytest.mark.anyio
async def test_the_shutdown_deadline_ends_a_waiting_read_by_closing_the_connection() -> None:
    # No cancel scope per call: where the connection can be closed from a callback, the deadline
    # closes it, the waiting read fails, and the client still gets its error event and the end.
    import anyio

    from adapters.runtime.upstream import UpstreamConnectionError
    from adapters.runtime.upstream_http1 import WaitHook
    from kiro_protocol.pool import connection_failure

    call = streaming_call()
    lifecycle = Lifecycle()
    hook = WaitHook()
    closed = anyio.Event()
    hook.interrupt = closed.set

    async def chunks() -> AsyncIterator[bytes]:
        yield encode_upstream_event(AssistantResponse(content="Once upon"))
        await closed.wait()  # waiting for Kiro's next bytes
        raise UpstreamConnectionError(connection_failure("connection closed"))

    upstream = UpstreamStream(status=200, headers=(), chunks=chunks(), wait_hook=hook)
    respond = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_runner._stream, call, upstream, NoDriver(), respond, lifecycle, lambda: 1.0)  # type: ignore[arg-type]
            await anyio.sleep(0.05)
            assert not respond.ended
            lifecycle.terminate()
    text = respond.data.decode()
    assert "Once upon" in text and "event: error" in text and respond.ended
    assert closed.is_set() and call.error == "shutdown"
