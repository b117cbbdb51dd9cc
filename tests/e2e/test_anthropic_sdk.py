"""The official ``anthropic`` SDK reads the translator's output as the final message we expect.

The SDK uses its own HTTP stack (docs/clients.md), so a real HTTP server on 127.0.0.1 serves the
translator's bytes; nothing leaves the machine. The SDK is lenient (it ignores mismatched deltas
and turns bad tool JSON into ``{}``), so every served stream is also run through the strict
checker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import pytest

from tests.sse_checker import check_anthropic_stream
from tests.core.test_translator import CASES, MODEL, UPSTREAM, translate

# What the SDK sends; the translator reports the plan's model (MODEL) back.
REQUEST_MODEL = "claude-opus-4-8"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length", "0"))
        self.server.requests.append(json.loads(self.rfile.read(length)))
        status, content_type, body = self.server.answer
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        # Small writes, so the SDK sees the stream in several reads.
        for i in range(0, len(body), 97):
            self.wfile.write(body[i : i + 97])
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answer: tuple[int, str, bytes] = (500, "text/plain", b"")
    requests: list[dict[str, Any]]


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def client(server: _Server) -> Iterator[anthropic.Anthropic]:
    host, port = server.server_address[:2]
    with anthropic.Anthropic(api_key="test-key", base_url=f"http://{host!s}:{port}", max_retries=0, timeout=10) as c:
        yield c


def _payload(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = message.model_dump(exclude_none=False)
    return data


SUCCESS = sorted(c for c, e in CASES.items() if e.error_type is None)
FAILURE = sorted(c for c, e in CASES.items() if e.error_type is not None)


@pytest.mark.parametrize("case", SUCCESS)
def test_stream_accumulates_to_the_expected_message(server: _Server, client: anthropic.Anthropic, case: str) -> None:
    thinking = CASES[case].thinking
    _, sse = translate((UPSTREAM / f"{case}.bin").read_bytes(), thinking=thinking)
    expected = check_anthropic_stream(sse).message
    server.answer = (200, "text/event-stream; charset=utf-8", sse)
    with client.messages.stream(model=REQUEST_MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]) as stream:
        final = stream.get_final_message()
    got = _payload(final)
    assert got["id"] == expected["id"] and got["model"] == MODEL
    assert got["stop_reason"] == expected["stop_reason"] == CASES[case].stop_reason
    assert [_strip(b) for b in got["content"]] == [_strip(b) for b in expected["content"]]
    assert got["usage"]["output_tokens"] == expected["usage"]["output_tokens"]
    assert got["usage"]["input_tokens"] == expected["usage"]["input_tokens"]


@pytest.mark.parametrize("case", SUCCESS)
def test_non_streaming_body_parses_to_the_same_message(server: _Server, client: anthropic.Anthropic, case: str) -> None:
    thinking = CASES[case].thinking
    t, body = translate((UPSTREAM / f"{case}.bin").read_bytes(), stream=False, thinking=thinking)
    _, sse = translate((UPSTREAM / f"{case}.bin").read_bytes(), thinking=thinking)
    server.answer = (200, "application/json", body)
    message = client.messages.create(model=REQUEST_MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}])
    assert [_strip(b) for b in _payload(message)["content"]] == [
        _strip(b) for b in check_anthropic_stream(sse).message["content"]
    ]
    assert message.stop_reason == CASES[case].stop_reason


@pytest.mark.parametrize("case", FAILURE)
def test_error_event_raises_in_the_sdk(server: _Server, client: anthropic.Anthropic, case: str) -> None:
    _, sse = translate((UPSTREAM / f"{case}.bin").read_bytes())
    server.answer = (200, "text/event-stream; charset=utf-8", sse)
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model=REQUEST_MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]) as s:
            s.get_final_message()
    assert "Kiro" in str(info.value)


@pytest.mark.parametrize("case", FAILURE)
def test_non_streaming_error_response_raises_with_status(server: _Server, client: anthropic.Anthropic, case: str) -> None:
    t, _ = translate((UPSTREAM / f"{case}.bin").read_bytes(), stream=False)
    response = t.final_response()
    assert response is not None
    server.answer = (response.status, "application/json", response.body)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=REQUEST_MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == response.status
    assert info.value.body == json.loads(response.body)


def _strip(block: dict[str, Any]) -> dict[str, Any]:
    """Drop keys the SDK adds with null/default values (citations, caller ...)."""
    return {k: v for k, v in block.items() if v is not None and k not in ("citations", "caller")}


