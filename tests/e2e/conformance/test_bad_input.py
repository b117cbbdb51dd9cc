"""The bad-input catalogue (issue 18): what a hostile or careless client sends, on every way of
serving, each with its exact status, error type and the state of the connection after it.

One table, ``CASES``. Each case is sent as raw bytes on a fresh HTTP/1.1 connection (no HTTP
library would send most of them). Then:

- ``kept``: the connection must still serve: a second request on the same socket gets 200;
- ``closed``: the server closes it without answering anything more (after a framing error a
  pipelined request must not be served: RFC 9112 §6.1);
- a case with ``status=None`` expects no answer at all (the client broke its own request).

uvicorn and hypercorn parse HTTP themselves: where they answer a framing error otherwise than
kiro2api's own servers, the case says so in ``differs`` with the reason (docs/deployment.md).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import h2.config
import h2.connection
import h2.events
import pytest

from tests.e2e.conformance.conftest import TOKEN, Gateway
from tests.e2e.conformance.raw_http import RawConnection, RawResponse, chunked, request_bytes

pytestmark = [pytest.mark.timeout(60)]

After = Literal["kept", "closed"]
Dialect = Literal["anthropic", "openai", "none"]

MODEL = "claude-sonnet-4-5"
AUTH = [("x-api-key", TOKEN)]
JSON_AUTH = AUTH + [("content-type", "application/json")]
BEARER = [("authorization", f"Bearer {TOKEN}"), ("content-type", "application/json")]
#: MAX_REQUEST_BODY_BYTES's default (the conformance gateways keep it).
BODY_LIMIT = 20 * 1024 * 1024
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class Differs:
    """What a third-party server does instead, and why that is acceptable."""

    reason: str
    #: The status, or the statuses it may give (None: no answer).
    status: int | None | tuple[int | None, ...]
    after: After = "closed"
    #: The error type in the body; None: its own body, not checked.
    error: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    #: The bytes sent, in order; a pause between pieces (a slow client).
    send: tuple[bytes, ...]
    #: The expected status; None: no answer at all.
    status: int | None
    #: The expected error type (``error.type``); None for a success or no body to check.
    error: str | None
    dialect: Dialect = "anthropic"
    after: After = "kept"
    #: Close our sending side after the last piece (a client that gives up mid-body).
    cut: bool = False
    #: Per-server exceptions: server name -> what it does instead.
    differs: Mapping[str, Differs] = field(default_factory=dict)


def messages(body: Any, headers: list[tuple[str, str]] | None = None, path: str = "/v1/messages") -> tuple[bytes, ...]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (request_bytes("POST", path, JSON_AUTH if headers is None else headers, raw),)


def anthropic(**fields: Any) -> dict[str, Any]:
    """A valid Messages request with ``fields`` replaced (a value of ``...`` removes the field)."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def user(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def image(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def chat(**fields: Any) -> tuple[bytes, ...]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return messages({k: v for k, v in body.items() if v is not ...}, BEARER, "/v1/chat/completions")


def responses(**fields: Any) -> tuple[bytes, ...]:
    body: dict[str, Any] = {"model": MODEL, "input": "hi"}
    body.update(fields)
    return messages({k: v for k, v in body.items() if v is not ...}, BEARER, "/v1/responses")


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


BAD = "invalid_request_error"
AUTH_ERR = "authentication_error"
NOT_FOUND = "not_found_error"
TOO_LARGE = "request_too_large"
GET_MODELS = request_bytes("GET", "/v1/models", AUTH)
COUNT = "/v1/messages/count_tokens"
COUNT_BODY = json.dumps(anthropic()).encode()

# uvicorn and hypercorn parse HTTP/1.1 with h11 themselves. h11 reads a request with both
# Content-Length and Transfer-Encoding as chunked; our front door answers it 400 with
# ``connection: close``, which both honour, so that case needs no exception.
UVICORN_HEAD = (
    "uvicorn's h11 limit (16 KiB) applies only to a head still incomplete after a read: a 100 KB head that "
    "arrives in one or two reads is served"
)
HYPERCORN_HEAD = "hypercorn answers a head over its limit with its own 431 body"
THIRD_PARTY_FRAMING = "the HTTP parser is the server's own: it answers the framing error with its own 400 (not our JSON)"
CUT_IS_LEAVING = "it takes the end of the client's sending side for the client leaving: no answer"
CUT_RACE = (
    "hypercorn's h11 sees the cut body either as a framing error (its own 400) or as the client "
    "leaving (no answer), whichever its reader meets first"
)

CASES: list[Case] = [
    # -- authentication -------------------------------------------------------------------------
    Case("auth/no key", messages(anthropic(), [("content-type", "application/json")]), 401, AUTH_ERR),
    Case("auth/wrong x-api-key", messages(anthropic(), [("x-api-key", "wrong-token"), ("content-type", "application/json")]), 401, AUTH_ERR),
    Case("auth/wrong bearer", messages(anthropic(), [("authorization", "Bearer wrong-token")]), 401, AUTH_ERR),
    Case("auth/basic scheme", messages(anthropic(), [("authorization", f"Basic {TOKEN}")]), 401, AUTH_ERR),
    Case("auth/empty x-api-key", messages(anthropic(), [("x-api-key", "")]), 401, AUTH_ERR),
    Case("auth/both headers wrong", messages(anthropic(), [("x-api-key", "nope"), ("authorization", "Bearer nope")]), 401, AUTH_ERR),
    Case(
        "auth/both headers, one right",
        (request_bytes("POST", COUNT, [("x-api-key", "nope"), ("authorization", f"Bearer {TOKEN}")], COUNT_BODY),),
        200,
        None,
    ),
    Case("auth/wrong key on a bad body", messages(b"{not json", [("x-api-key", "nope")]), 401, AUTH_ERR),
    Case(
        "auth/wrong key, expecting 100-continue",
        (request_bytes("POST", "/v1/messages", [("x-api-key", "nope"), ("expect", "100-continue"), ("content-length", "5000")], length=False),),
        401,
        AUTH_ERR,
        after="closed",
    ),
    # -- JSON shape and depth --------------------------------------------------------------------
    Case("json/not json", messages(b"{not json"), 400, BAD),
    Case("json/empty body", messages(b""), 400, BAD),
    Case("json/array", messages(b"[1, 2]"), 400, BAD),
    Case("json/string", messages(b'"hello"'), 400, BAD),
    Case("json/NaN", messages(b'{"model": "x", "max_tokens": NaN, "messages": []}'), 400, BAD),
    Case("json/bad utf-8", messages(b'{"model": "\xff\xfe", "max_tokens": 1, "messages": []}'), 400, BAD),
    Case("json/too deep", messages(anthropic(tools=[{"name": "t", "input_schema": nested(200)}])), 400, BAD),
    Case("json/trailing garbage", messages(json.dumps(anthropic()).encode() + b" }"), 400, BAD),
    # -- every field of Anthropic Messages -------------------------------------------------------
    Case("field/model missing", messages(anthropic(model=...)), 400, BAD),
    Case("field/model a number", messages(anthropic(model=42)), 400, BAD),
    Case("field/max_tokens missing", messages(anthropic(max_tokens=...)), 400, BAD),
    Case("field/max_tokens a string", messages(anthropic(max_tokens="16")), 400, BAD),
    Case("field/max_tokens zero", messages(anthropic(max_tokens=0)), 400, BAD),
    Case("field/max_tokens a float", messages(anthropic(max_tokens=1.5)), 400, BAD),
    Case("field/messages missing", messages(anthropic(messages=...)), 400, BAD),
    Case("field/messages empty", messages(anthropic(messages=[])), 400, BAD),
    Case("field/messages an object", messages(anthropic(messages={"role": "user"})), 400, BAD),
    Case("field/role unknown", messages(anthropic(messages=[{"role": "robot", "content": "hi"}])), 400, BAD),
    Case("field/role missing", messages(anthropic(messages=[{"content": "hi"}])), 400, BAD),
    Case("field/content a number", messages(anthropic(messages=[{"role": "user", "content": 7}])), 400, BAD),
    Case("field/content block unknown", messages(anthropic(messages=user({"type": "hologram"}))), 400, BAD),
    Case("field/text block not text", messages(anthropic(messages=user({"type": "text", "text": 5}))), 400, BAD),
    Case(
        "field/tool_result without id",
        messages(anthropic(messages=user({"type": "tool_result", "content": "x"}))),
        400,
        BAD,
    ),
    Case("field/system a number", messages(anthropic(system=3)), 400, BAD),
    Case("field/system block unknown", messages(anthropic(system=[{"type": "image"}])), 400, BAD),
    Case("field/tools an object", messages(anthropic(tools={"name": "x"})), 400, BAD),
    Case("field/tool without name", messages(anthropic(tools=[{"input_schema": {"type": "object"}}])), 400, BAD),
    Case("field/tool schema a string", messages(anthropic(tools=[{"name": "t", "input_schema": "object"}])), 400, BAD),
    Case("field/tool_choice unknown", messages(anthropic(tool_choice={"type": "sometimes"})), 400, BAD),
    Case("field/tool_choice tool without name", messages(anthropic(tool_choice={"type": "tool"})), 400, BAD),
    Case("field/stream a string", messages(anthropic(stream="yes")), 400, BAD),
    Case("field/temperature a string", messages(anthropic(temperature="hot")), 400, BAD),
    Case("field/temperature a list", messages(anthropic(temperature=[1])), 400, BAD),
    Case("field/stop_sequences a string", messages(anthropic(stop_sequences="STOP")), 400, BAD),
    Case("field/stop_sequences of numbers", messages(anthropic(stop_sequences=[1, 2])), 400, BAD),
    Case("field/metadata a list", messages(anthropic(metadata=["x"])), 400, BAD),
    Case("field/thinking unknown type", messages(anthropic(thinking={"type": "deep"})), 400, BAD),
    Case(
        "field/thinking budget a string",
        messages(anthropic(thinking={"type": "enabled", "budget_tokens": "lots"})),
        400,
        BAD,
    ),
    # -- images ----------------------------------------------------------------------------------
    Case("image/bad base64", messages(anthropic(messages=user(image("image/png", "%%%not-base64%%%")))), 400, BAD),
    Case("image/empty data", messages(anthropic(messages=user(image("image/png", "")))), 400, BAD),
    Case(
        "image/unsupported media type",
        messages(anthropic(messages=user(image("image/x-icon", base64.b64encode(PNG_1PX).decode())))),
        400,
        BAD,
    ),
    Case(
        "image/declared jpeg, is png",
        messages(anthropic(messages=user(image("image/jpeg", base64.b64encode(PNG_1PX).decode())))),
        400,
        BAD,
    ),
    Case(
        "image/too big and broken",
        messages(anthropic(messages=user(image("image/png", base64.b64encode(PNG_1PX[:33] + bytes(6 * 1024 * 1024)).decode())))),
        400,
        BAD,
    ),
    # -- sizes -----------------------------------------------------------------------------------
    Case(
        "size/declared over the limit",
        (request_bytes("POST", "/v1/messages", JSON_AUTH, length=False)[:-2] + f"content-length: {BODY_LIMIT + 1}\r\n\r\n".encode(),),
        413,
        TOO_LARGE,
        after="closed",
    ),
    Case(
        "size/chunked over the limit",
        (
            request_bytes("POST", "/v1/messages", JSON_AUTH + [("transfer-encoding", "chunked")], length=False),
            chunked(*([b"x" * (1024 * 1024)] * 21)),
        ),
        413,
        TOO_LARGE,
        after="closed",
    ),
    # -- slow and cut bodies ---------------------------------------------------------------------
    Case(
        "body/slow, in pieces",
        (
            request_bytes("POST", COUNT, JSON_AUTH, COUNT_BODY)[: -len(COUNT_BODY) + 10],
            COUNT_BODY[10:30],
            COUNT_BODY[30:],
        ),
        200,
        None,
    ),
    Case(
        "body/slow chunked",
        (
            request_bytes("POST", COUNT, JSON_AUTH + [("transfer-encoding", "chunked")], length=False),
            chunked(COUNT_BODY[:20])[:-5],
            chunked(COUNT_BODY[20:]),
        ),
        200,
        None,
    ),
    Case(
        "body/cut short",
        (request_bytes("POST", "/v1/messages", JSON_AUTH, length=False)[:-2] + b"content-length: 100\r\n\r\n{\"model\":",),
        400,
        BAD,
        after="closed",
        cut=True,
        differs={"uvicorn": Differs(CUT_IS_LEAVING, None), "hypercorn": Differs(CUT_RACE, (None, 400))},
    ),
    Case(
        "body/chunked cut short",
        (request_bytes("POST", "/v1/messages", JSON_AUTH + [("transfer-encoding", "chunked")], length=False) + b"40\r\n{\"mo",),
        400,
        BAD,
        after="closed",
        cut=True,
        differs={"uvicorn": Differs(CUT_IS_LEAVING, None), "hypercorn": Differs(CUT_RACE, (None, 400))},
    ),
    # -- HTTP/1.0 and pipelining -----------------------------------------------------------------
    Case("http1.0/get", (request_bytes("GET", "/v1/models", AUTH, version="HTTP/1.0"),), 200, None, after="closed"),
    Case("http1.0/bad json", (request_bytes("POST", "/v1/messages", JSON_AUTH, b"{", version="HTTP/1.0"),), 400, BAD, after="closed"),
    Case("pipelined/two gets", (GET_MODELS + GET_MODELS,), 200, None),
    Case("pipelined/bad body, then a get", (messages(b"{")[0] + GET_MODELS,), 400, BAD),
    Case("connection close", (request_bytes("GET", "/v1/models", AUTH + [("connection", "close")]),), 200, None, after="closed"),
    # -- huge headers and bad framing ------------------------------------------------------------
    Case(
        "framing/huge header",
        (request_bytes("GET", "/v1/models", AUTH + [("x-big", "a" * 100_000)]),),
        431,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(UVICORN_HEAD, 200, "kept"),
            "hypercorn": Differs(HYPERCORN_HEAD, 431),
        },
    ),
    Case(
        "framing/huge request line",
        (request_bytes("GET", "/v1/models?" + "a" * 100_000, AUTH),),
        431,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(UVICORN_HEAD, 200, "kept"),
            "hypercorn": Differs(HYPERCORN_HEAD, 431),
            "gevent": Differs("pywsgi refuses a request line over 8 KiB as too long a URI (414)", 414, error=BAD),
        },
    ),
    Case(
        "framing/content-length and chunked",
        (
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + TOKEN.encode()
            + b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET_MODELS,
        ),
        400,
        BAD,
        after="closed",
        differs={"uvicorn": Differs(THIRD_PARTY_FRAMING, 400)},
    ),
    Case(
        "framing/bad content-length",
        (request_bytes("POST", "/v1/messages", JSON_AUTH + [("content-length", "abc")], length=False) + b"{}",),
        400,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(THIRD_PARTY_FRAMING, 400),
            "hypercorn": Differs(THIRD_PARTY_FRAMING, 400),
        },
    ),
    Case(
        "framing/two content-lengths",
        (request_bytes("POST", "/v1/messages", JSON_AUTH + [("content-length", "2"), ("content-length", "3")], length=False) + b"{}x",),
        400,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(THIRD_PARTY_FRAMING, 400),
            "hypercorn": Differs(THIRD_PARTY_FRAMING, 400),
        },
    ),
    Case(
        "framing/bad chunk size",
        (request_bytes("POST", "/v1/messages", JSON_AUTH + [("transfer-encoding", "chunked")], length=False) + b"zz\r\n{}\r\n0\r\n\r\n",),
        400,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(THIRD_PARTY_FRAMING, 400),
            "hypercorn": Differs(THIRD_PARTY_FRAMING, 400),
        },
    ),
    Case(
        "framing/bad request line",
        (b"HELLO\r\n\r\n",),
        400,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(THIRD_PARTY_FRAMING, 400),
            "hypercorn": Differs(THIRD_PARTY_FRAMING, 400),
        },
    ),
    Case(
        "framing/header without colon",
        (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",),
        400,
        BAD,
        after="closed",
        differs={
            "uvicorn": Differs(THIRD_PARTY_FRAMING, 400),
            "hypercorn": Differs(THIRD_PARTY_FRAMING, 400),
        },
    ),
    # -- methods and paths -----------------------------------------------------------------------
    Case("method/get messages", (request_bytes("GET", "/v1/messages", AUTH),), 405, BAD),
    Case("method/delete models", (request_bytes("DELETE", "/v1/models", AUTH),), 405, BAD),
    Case("path/unknown", (request_bytes("GET", "/v2/everything", AUTH),), 404, NOT_FOUND),
    Case("path/unknown under v1", (request_bytes("POST", "/v1/messages/extra", JSON_AUTH, b"{}"),), 404, NOT_FOUND),
    # -- OpenAI Chat Completions -----------------------------------------------------------------
    Case("chat/no key", messages(b"{}", [("content-type", "application/json")], "/v1/chat/completions"), 401, AUTH_ERR, "openai"),
    Case("chat/not json", messages(b"{", BEARER, "/v1/chat/completions"), 400, BAD, "openai"),
    Case("chat/messages missing", chat(messages=...), 400, BAD, "openai"),
    Case("chat/messages a string", chat(messages="hi"), 400, BAD, "openai"),
    Case("chat/role unknown", chat(messages=[{"role": "robot", "content": "hi"}]), 400, BAD, "openai"),
    Case("chat/model a number", chat(model=4), 400, BAD, "openai"),
    Case("chat/stream a string", chat(stream="yes"), 400, BAD, "openai"),
    Case("chat/temperature a string", chat(temperature="hot"), 400, BAD, "openai"),
    Case("chat/tools an object", chat(tools={"type": "function"}), 400, BAD, "openai"),
    Case(
        "chat/bad image url",
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]}]),
        400,
        BAD,
        "openai",
    ),
    Case("chat/get", (request_bytes("GET", "/v1/chat/completions", BEARER),), 405, BAD, "openai"),
    # -- OpenAI Responses ------------------------------------------------------------------------
    Case("responses/no key", messages(b"{}", [("content-type", "application/json")], "/v1/responses"), 401, AUTH_ERR, "openai"),
    Case("responses/not json", messages(b"[", BEARER, "/v1/responses"), 400, BAD, "openai"),
    Case("responses/input a number", responses(input=5), 400, BAD, "openai"),
    Case("responses/model missing", responses(model=...), 400, BAD, "openai"),
    Case("responses/tools a string", responses(tools="all"), 400, BAD, "openai"),
    Case("responses/max_output_tokens a string", responses(max_output_tokens="9"), 400, BAD, "openai"),
    Case("responses/get", (request_bytes("GET", "/v1/responses", BEARER),), 405, BAD, "openai"),
]


def _check_error(response: RawResponse, error: str, dialect: Dialect) -> None:
    body = response.json()
    if dialect == "anthropic":
        assert body["type"] == "error", body
        assert body["error"]["type"] == error, body
    else:
        assert "type" not in body and body["error"]["type"] == error, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message and "Traceback" not in message and "bytearray" not in message


def _still_serves(conn: RawConnection) -> None:
    conn.send(GET_MODELS)
    follow = conn.response()
    assert follow is not None and follow.status == 200, "the kept connection did not serve a second request"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(gateway: Gateway, case: Case) -> None:
    expected = case.differs.get(gateway.name)
    status, error, after = (expected.status, expected.error, expected.after) if expected else (case.status, case.error, case.after)
    conn = RawConnection.open(gateway.port)
    try:
        for i, piece in enumerate(case.send):
            if i:
                time.sleep(0.2)
            try:
                conn.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # refused while still sending (a body over the limit): the answer is waiting
        if case.cut:
            conn.sock.shutdown(socket.SHUT_WR)
        response = conn.response()
        allowed = status if isinstance(status, tuple) else (status,)
        got = None if response is None else response.status
        assert got in allowed, (got, response and response.body[:300])
        if response is not None and error is not None:
            _check_error(response, error, case.dialect)
        if case.id.startswith("pipelined/"):
            second = conn.response()
            assert second is not None and second.status == 200
        if after == "kept":
            _still_serves(conn)
        else:
            assert conn.closed_by_server(), "the connection was kept (or answered again) where it must close"
    finally:
        conn.close()


def test_the_catalogue_is_complete() -> None:
    """Issue 18 asks for at least 58 cases; every one has a unique name."""
    assert len(CASES) >= 58
    assert len({c.id for c in CASES}) == len(CASES)


def test_h2c_a_request_with_transfer_encoding_ends_the_connection(gateway: Gateway) -> None:
    """HTTP/2 has no Transfer-Encoding (RFC 9113 §8.2.2): a stream that sends it is malformed;
    the connection ends with GOAWAY and the request behind it is not served."""
    if not gateway.h2c:
        pytest.skip(f"{gateway.name} serves HTTP/1.1 only")
    config = h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False
    )
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    authority = [(":scheme", "http"), (":authority", "127.0.0.1"), ("x-api-key", TOKEN)]
    conn.send_headers(
        1, [(":method", "POST"), (":path", "/v1/messages"), *authority, ("content-length", "5"), ("transfer-encoding", "chunked")]
    )
    conn.send_data(1, b"0\r\n\r\n", end_stream=True)
    conn.send_headers(3, [(":method", "GET"), (":path", "/v1/models"), *authority], end_stream=True)
    events: list[h2.events.Event] = []
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # the server may close first
            while data := sock.recv(65536):
                events += conn.receive_data(data)
                if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
                    break
                sock.sendall(conn.data_to_send())
    assert not [e for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == 3], "served after a malformed stream"
    assert any(isinstance(e, (h2.events.ConnectionTerminated, h2.events.StreamReset)) for e in events), events
