"""Fuzz the ASGI and WSGI pumps with arbitrary requests (what a server hands them from the wire).

Methods, paths, query strings, header names and values, ``Content-Length`` values, body pieces and
mount prefixes are attacker-controlled. Whatever they are, each pump answers exactly once with a
well-formed response and never raises.
"""

from __future__ import annotations

import io
from typing import Any

import anyio
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.asgi import create_app as create_asgi
from adapters.runtime._sync.basic_service import BasicService as SyncBasicService
from adapters.runtime.basic_service import BasicService
from adapters.runtime.settings import Settings
from adapters.wsgi_gevent import create_app as create_wsgi

TOKEN = "fuzz-adapter-token-0123456789"
SETTINGS = Settings(client_token=TOKEN, max_request_body_bytes=64)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailers"}

METHODS = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PUT"]), st.text(max_size=8))
PATHS = st.one_of(
    st.sampled_from(["/", "/health", "/v1/models", "/v1/messages", "/v1/chat/completions", "/v1/messages/count_tokens"]),
    st.text(max_size=40),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(["x-api-key", "authorization", "content-length", "content-type", "x-request-id", "transfer-encoding"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
)
HEADER_VALUES = st.one_of(
    st.sampled_from([TOKEN, f"Bearer {TOKEN}", "0", "10", "64", "65", "-1", "1e3", "chunked", "application/json"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40),
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6)
BODIES = st.lists(st.binary(max_size=50), max_size=4)
PREFIXES = st.sampled_from(["", "/kiro", "/a/b"])


def _run_asgi(method: str, path: str, root: str, query: bytes, headers: list[tuple[str, str]], pieces: list[bytes]) -> None:
    app = create_asgi(SETTINGS, service=BasicService())
    inbox: list[dict[str, Any]] = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    if not inbox:
        inbox = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[Any] = []

    async def receive() -> Any:
        if inbox:
            return inbox.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": root + path,
        "root_path": root,
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 1),
    }

    async def main() -> None:
        async with app.lifespan():
            await app(scope, receive, send)

    anyio.run(main)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    assert 100 <= starts[0]["status"] <= 599
    assert sent[0] is starts[0]
    bodies = sent[1:]
    assert bodies and all(m["type"] == "http.response.body" for m in bodies)
    assert [m.get("more_body", False) for m in bodies] == [True] * (len(bodies) - 1) + [False]
    names = [k for k, _ in starts[0]["headers"]]
    assert all(k == k.lower() for k in names)
    length = dict(starts[0]["headers"]).get(b"content-length")
    if length is not None and method != "HEAD":
        assert int(length) == sum(len(m.get("body", b"")) for m in bodies)


@given(METHODS, PATHS, PREFIXES, st.binary(max_size=20), HEADERS, BODIES)
@example("POST", "/v1/messages", "", b"", [("content-length", "999"), ("x-api-key", TOKEN)], [b"x" * 50, b"x" * 50])
@example("GET", "/v1/models", "/kiro", b"beta=true", [("authorization", f"Bearer {TOKEN}")], [])
def test_asgi_answers_every_request_exactly_once(
    method: str, path: str, root: str, query: bytes, headers: list[tuple[str, str]], pieces: list[bytes]
) -> None:
    _run_asgi(method, path, root, query, headers, pieces)


WSGI_APP = create_wsgi(SETTINGS, service=SyncBasicService())


@given(METHODS, PATHS, PREFIXES, st.text(max_size=20), HEADERS, st.binary(max_size=100), st.booleans())
@example("POST", "/v1/messages", "", "", [("content-length", "abc")], b"{}", False)
@example("POST", "/v1/messages", "", "", [("x-api-key", TOKEN)], b"x" * 100, True)
def test_wsgi_answers_every_request_exactly_once(
    method: str, path: str, script: str, query: str, headers: list[tuple[str, str]], body: bytes, chunked: bool
) -> None:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    for name, value in headers:
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    calls: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        calls.append((status, response_headers))
        return lambda data: None

    result = WSGI_APP(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert len(calls) == 1
    status, response_headers = calls[0]
    code, _, phrase = status.partition(" ")
    assert code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599 and phrase
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response_headers)
    assert not {k.lower() for k, _ in response_headers} & HOP_BY_HOP
    length = dict(response_headers).get("content-length")
    if length is not None and method != "HEAD":
        assert int(length) == len(data)
