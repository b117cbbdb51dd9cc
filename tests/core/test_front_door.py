"""The front door (kiro_protocol.http._front_door): one decision per head, in the core's order."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import (
    BodyProblem,
    ClientAuth,
    Dialect,
    Endpoint,
    ErrorKind,
    LocalProtocolError,
    Reply,
    ReplyNow,
    RequestHead,
    Serve,
    ServerState,
    body_refused,
    endpoint_error,
    front_door,
    internal_error,
    malformed_request,
    no_response,
    not_started,
)

TOKEN = "front-door-token-0123456789"
AUTH = (("x-api-key", TOKEN),)
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "Content-Type, Authorization, x-api-key",
    "access-control-expose-headers": "X-Request-ID",
}


def head(method: str, target: str, *headers: tuple[str, str]) -> RequestHead:
    return RequestHead(method=method, target=target, headers=headers, client="127.0.0.1:5000")


def decide(h: RequestHead, **state: int | bool) -> ReplyNow | Serve:
    return front_door(h, ClientAuth(TOKEN), ServerState(**state), "00ff")  # type: ignore[arg-type]


def answered(h: RequestHead, **state: int | bool) -> Reply:
    decision = decide(h, **state)
    assert isinstance(decision, ReplyNow), decision
    return decision.reply


def error_type(reply: Reply) -> str:
    return str(json.loads(reply.body)["error"]["type"])


def test_a_model_request_is_served_with_its_route_and_common_headers() -> None:
    decision = decide(head("POST", "/v1/messages?beta=true", *AUTH, ("content-length", "2")), body_limit=100)
    assert isinstance(decision, Serve)
    assert decision.route.endpoint is Endpoint.MESSAGES and decision.route.path == "/v1/messages"
    assert decision.dialect is Dialect.ANTHROPIC
    assert decision.session and decision.body_limit == 100 and not decision.omit_body
    assert decision.request_id == "req_00ff"
    assert decision.headers == (("x-request-id", "req_00ff"), *CORS.items())


def test_open_routes_need_no_token_and_are_no_session() -> None:
    for target in ("/health", "/"):
        decision = decide(head("GET", target), shutting_down=True, session_limit=1, sessions_in_use=5)
        assert isinstance(decision, Serve) and not decision.session
    chat = decide(head("POST", "/v1/chat/completions", ("authorization", f"Bearer {TOKEN}")))
    assert isinstance(chat, Serve) and chat.dialect is Dialect.OPENAI and chat.session


def test_request_ids_are_echoed_when_sane_and_generated_otherwise() -> None:
    assert decide(head("GET", "/health", ("x-request-id", "trace-42"))).request_id == "trace-42"
    assert decide(head("GET", "/health", ("x-request-id", "has space"))).request_id == "req_00ff"
    refused = decide(head("GET", "/nowhere", ("x-request-id", "trace-7")))
    assert isinstance(refused, ReplyNow) and refused.request_id == "trace-7"
    assert ("x-request-id", "trace-7") in refused.reply.headers


def test_preflight_is_answered_before_auth_with_the_requested_headers() -> None:
    reply = answered(head("OPTIONS", "/v1/messages", ("access-control-request-headers", "anthropic-version")))
    headers = dict(reply.headers)
    assert reply.status == 200 and reply.body == b"" and reply.error is None
    assert headers["access-control-allow-headers"].endswith("anthropic-version")
    assert headers["access-control-max-age"] == "86400" and headers["x-request-id"] == "req_00ff"


@pytest.mark.parametrize(
    ("request_head", "status", "kind"),
    [
        (head("GET", "/v2/nothing", *AUTH), 404, "not_found_error"),
        (head("GET", "/v1/messages", *AUTH), 405, "invalid_request_error"),
        (head("GET", "/v1/models"), 401, "authentication_error"),
        (head("GET", "/v1/models", ("x-api-key", "wrong")), 401, "authentication_error"),
        (head("POST", "/v1/messages", *AUTH, ("content-length", "101")), 413, "request_too_large"),
    ],
    ids=["404", "405", "401-missing", "401-wrong", "413-declared"],
)
def test_refusals_carry_status_kind_cors_and_request_id(request_head: RequestHead, status: int, kind: str) -> None:
    reply = answered(request_head, body_limit=100)
    assert (reply.status, error_type(reply)) == (status, kind)
    assert reply.error is not None and reply.error.value == kind
    headers = dict(reply.headers)
    assert headers["content-type"] == "application/json" and headers["x-request-id"] == "req_00ff"
    assert CORS.items() <= headers.items()
    assert TOKEN not in reply.body.decode()


def test_405_says_what_is_allowed_and_401_how_to_authenticate() -> None:
    assert dict(answered(head("GET", "/v1/messages", *AUTH)).headers)["allow"] == "POST, OPTIONS"
    assert dict(answered(head("GET", "/v1/models")).headers)["www-authenticate"].startswith("Bearer")


def test_shutdown_and_the_session_limit_refuse_model_requests_with_529() -> None:
    request = head("POST", "/v1/messages", *AUTH)
    closing = answered(request, shutting_down=True)
    full = answered(request, session_limit=2, sessions_in_use=2)
    assert (closing.status, error_type(closing)) == (529, "overloaded_error") and "shutting down" in closing.body.decode()
    assert (full.status, error_type(full)) == (529, "overloaded_error") and "limit 2" in full.body.decode()
    assert isinstance(decide(request, session_limit=2, sessions_in_use=1), Serve)
    assert isinstance(decide(request, session_limit=0, sessions_in_use=10**6), Serve)


def test_the_order_of_the_checks() -> None:
    # Routing before auth, auth before the body limit, the body limit before the server's state.
    everything = dict(shutting_down=True, session_limit=1, sessions_in_use=1, body_limit=10)
    assert answered(head("GET", "/v2/x", ("content-length", "99")), **everything).status == 404
    assert answered(head("GET", "/v1/messages", ("content-length", "99")), **everything).status == 405
    assert answered(head("OPTIONS", "/v1/messages", ("content-length", "99")), **everything).status == 200
    assert answered(head("POST", "/v1/messages", ("content-length", "99")), **everything).status == 401
    assert answered(head("POST", "/v1/messages", *AUTH, ("content-length", "99")), **everything).status == 413
    assert answered(head("POST", "/v1/messages", *AUTH, ("content-length", "9")), **everything).status == 529


def test_the_declared_length_is_read_with_care() -> None:
    assert head("POST", "/", ("content-length", "12")).declared_length == 12
    for nonsense in ("abc", "-1", ""):
        assert head("POST", "/", ("content-length", nonsense)).declared_length is None
    assert head("POST", "/").declared_length is None
    # Nonsense is no reason to refuse: the body reader finds the real length.
    assert isinstance(decide(head("POST", "/v1/messages", *AUTH, ("content-length", "lots")), body_limit=1), Serve)


def test_errors_use_the_openai_shape_under_chat() -> None:
    reply = answered(head("POST", "/v1/chat/completions", ("authorization", "Bearer nope")))
    assert json.loads(reply.body)["error"]["code"] == "invalid_api_key"


def test_head_requests_omit_bodies_but_keep_the_length() -> None:
    served = decide(head("HEAD", "/"))
    assert isinstance(served, Serve) and served.omit_body
    reply = answered(head("HEAD", "/nowhere"))
    assert reply.status == 404 and reply.body == b"" and int(dict(reply.headers)["content-length"]) > 0


def serve(target: str = "/v1/messages") -> Serve:
    decision = decide(head("POST", target, *AUTH), body_limit=100)
    assert isinstance(decision, Serve)
    return decision


def test_answers_about_the_body() -> None:
    too_large = body_refused(BodyProblem.TOO_LARGE, 100, serve())
    timed_out = body_refused(BodyProblem.TIMED_OUT, 100, serve("/v1/chat/completions"))
    malformed = body_refused(BodyProblem.MALFORMED, 100, serve())
    assert too_large is not None and too_large.status == 413 and error_type(too_large) == "request_too_large"
    assert "100 bytes" in too_large.body.decode() and ("x-request-id", "req_00ff") in too_large.headers
    assert timed_out is not None and timed_out.status == 408 and "code" in json.loads(timed_out.body)["error"]
    assert malformed is not None and malformed.status == 400
    assert body_refused(BodyProblem.CLIENT_GONE, 100, serve()) is None
    bare = body_refused(BodyProblem.TOO_LARGE, 5)
    assert bare is not None and bare.status == 413 and CORS.items() <= dict(bare.headers).items()


def test_endpoint_errors_use_the_routes_dialect_and_headers() -> None:
    error = LocalProtocolError("bad field", kind=ErrorKind.INVALID_REQUEST, param="model")
    reply = endpoint_error(serve("/v1/chat/completions"), error)
    body = json.loads(reply.body)["error"]
    assert reply.status == 400 and body["param"] == "model" and reply.error is ErrorKind.INVALID_REQUEST
    assert ("x-request-id", "req_00ff") in reply.headers


def test_answers_outside_the_endpoints() -> None:
    for reply in (no_response(), internal_error(), no_response(serve()), internal_error(serve())):
        assert reply.status == 500 and error_type(reply) == "api_error" and reply.error is ErrorKind.API
    assert ("x-request-id", "req_00ff") in internal_error(serve()).headers
    assert "Traceback" not in internal_error().body.decode()
    waiting = not_started("run the lifespan protocol.")
    assert waiting.status == 503 and error_type(waiting) == "overloaded_error"
    assert "lifespan" in json.loads(waiting.body)["error"]["message"]


def test_malformed_requests_are_explained_without_python_reprs() -> None:
    reply = malformed_request(400, "illegal request line: bytearray(b'HELLO')")
    message = json.loads(reply.body)["error"]["message"]
    assert reply.status == 400 and error_type(reply) == "invalid_request_error"
    assert message == "Malformed HTTP request: illegal request line." and "bytearray" not in message
    assert json.loads(malformed_request(431, "Request header too large").body)["error"]["message"].endswith("large.")
    assert malformed_request(505, "b'HTTP/9'").error is ErrorKind.API
    assert json.loads(malformed_request(400, "").body)["error"]["message"] == "Malformed HTTP request."
    assert json.loads(malformed_request(431, "Receive buffer too long").body)["error"]["message"] == (
        "Request header fields too large."
    )


@pytest.mark.parametrize("path, dialect_key", [("/v1/messages", "type"), ("/v1/chat/completions", "error")])
def test_a_body_framed_twice_is_refused_before_anything_else_and_closes(path: str, dialect_key: str) -> None:
    # RFC 9112 §6.1: Content-Length with Transfer-Encoding is answered, and the connection closed
    # (request smuggling); even a stranger's request, and even while shutting down.
    h = head("POST", path, ("content-length", "5"), ("transfer-encoding", "chunked"))
    assert h.ambiguous_framing
    reply = answered(h, shutting_down=True)
    assert reply.status == 400 and error_type(reply) == "invalid_request_error"
    assert dialect_key in json.loads(reply.body)
    assert ("connection", "close") in reply.headers
    assert "Content-Length and Transfer-Encoding" in json.loads(reply.body)["error"]["message"]
    assert not head("POST", path, *AUTH, ("transfer-encoding", "chunked")).ambiguous_framing
    assert not head("POST", path, *AUTH, ("content-length", "5")).ambiguous_framing
