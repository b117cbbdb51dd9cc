"""A Kiro stand-in that costs (almost) nothing per request, for measuring the gateway alone.

Run: ``.venv/bin/python -m bench.precomputed_upstream --port 8090 [--frames 50]``.

Every answer is built once at start-up: ``generateAssistantResponse`` gets the same 50-frame
EventStream body (encoded with the core's own encoder, one HTTP/1.1 chunk per frame, as Kiro
sends them), the refresh endpoints a token that never expires within a run, ``getUsageLimits``
and ``ListAvailableModels`` the simulator's documents. Per request the server only finds the end
of the head, reads ``content-length``, skips the body and writes the ready bytes: no JSON, no
validation, no record. Whatever CPU a load then costs beyond this is the gateway's.

It trusts its client (the gateway under test, on loopback): it is not a simulator. The
simulator (``adapters/simulator``) stays the faithful stand-in for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulator import DEMO_PROFILE_ARN
from adapters.simulator._documents import models_document, usage_document
from kiro_protocol import AssistantResponse, ContextUsage, encode_upstream_event, Metering, UpstreamEvent

__all__ = ["answer_frames", "build_replies", "chunked", "main", "serve", "start"]

_ACCESS_TOKEN = "bench-precomputed-access-token"
# A head larger than this without its blank line is not a request we sent: drop the connection.
_HEAD_LIMIT = 64 * 1024


def answer_frames(frames: int) -> list[bytes]:
    """The EventStream messages of one answer: ``frames`` text frames, then metering and context usage.

    The same closing events as the simulator's scripted answers, so the gateway does the same work.
    """
    events: list[UpstreamEvent] = [AssistantResponse(content=f"Word {i} of the benchmark answer. ") for i in range(1, frames + 1)]
    events += [Metering(unit="credit", usage=0.011), ContextUsage(percentage=1.25)]
    return [encode_upstream_event(e) for e in events]


def chunked(status: str, headers: Sequence[tuple[str, str]], pieces: Sequence[bytes]) -> bytes:
    """A whole HTTP/1.1 response with a chunked body, one chunk per piece."""
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "transfer-encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return head.encode() + body + b"0\r\n\r\n"


def _json(status: str, document: object) -> bytes:
    body = json.dumps(document, separators=(",", ":")).encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def build_replies(frames: int) -> dict[bytes, bytes]:
    """Last path segment -> the whole response to write (``b""``: any other path)."""
    eventstream = chunked(
        "200 OK",
        [("content-type", "application/vnd.amazon.eventstream"), ("x-amzn-requestid", "bench-precomputed-request")],
        answer_frames(frames),
    )
    social = {"accessToken": _ACCESS_TOKEN, "expiresIn": 86400, "profileArn": DEMO_PROFILE_ARN,
              "refreshToken": "aorAAAAAG-bench-precomputed-rotated-token"}
    idc = {"accessToken": _ACCESS_TOKEN, "expiresIn": 86400, "refreshToken": "bench-precomputed-rotated-token",
           "tokenType": "Bearer"}
    usage = usage_document("bench", used=0, now=0.0, with_email=False, exhausted=False)
    return {
        b"generateAssistantResponse": eventstream,
        b"refreshToken": _json("200 OK", social),
        b"token": _json("200 OK", idc),
        b"getUsageLimits": _json("200 OK", usage),
        b"ListAvailableModels": _json("200 OK", models_document()),
        b"health": _json("200 OK", {"status": "ok", "upstream": "precomputed"}),
        b"": _json("404 Not Found", {"message": "UnknownOperationException", "reason": None}),
    }


class _Connection(asyncio.Protocol):
    """One keep-alive connection: heads parsed just enough to skip their bodies."""

    def __init__(self, replies: Mapping[bytes, bytes]) -> None:
        self._replies = replies
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        # Body bytes of the current request still to skip, and the answer to write after them.
        self._skip = 0
        self._pending: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        transport = self._transport
        assert transport is not None
        while True:
            if self._pending is not None:
                if len(buffer) < self._skip:
                    return
                del buffer[: self._skip]
                transport.write(self._pending)
                self._pending = None
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _HEAD_LIMIT:
                    transport.close()
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            line, _, fields = head.partition(b"\r\n")
            target = line.split(b" ", 2)[1] if line.count(b" ") >= 2 else b""
            operation = target.split(b"?", 1)[0].rstrip(b"/").rsplit(b"/", 1)[-1]
            self._pending = self._replies.get(operation) or self._replies[b""]
            self._skip = 0
            lowered = fields.lower()
            at = lowered.find(b"content-length:")
            if at >= 0:
                self._skip = int(lowered[at + 15:].split(b"\r\n", 1)[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def start(host: str, port: int, frames: int) -> asyncio.Server:
    """The listening server on the running loop (port 0: a free one)."""
    replies = build_replies(frames)
    return await asyncio.get_running_loop().create_server(lambda: _Connection(replies), host, port, backlog=1024)


async def serve(host: str, port: int, frames: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await start(host, port, frames)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--frames", type=int, default=50, help="text frames per answer (default 50)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
