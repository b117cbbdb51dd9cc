"""The error vocabulary and the plain HTTP values of the core (``kiro_protocol``,
``kiro_protocol.http``)."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import ErrorKind, HttpRequest, LocalProtocolError, ProtocolError, RemoteProtocolError
from kiro_protocol.http import error_body_for


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="ProtocolError is abstract"):
        ProtocolError("x")


def test_repr_names_the_class_kind_and_status() -> None:
    assert repr(LocalProtocolError("bad field")) == "LocalProtocolError('bad field', kind=INVALID_REQUEST, status_hint=400)"
    assert repr(RemoteProtocolError("bad frame")) == "RemoteProtocolError('bad frame', kind=API, status_hint=502)"
    throttled = LocalProtocolError("slow down", kind=ErrorKind.RATE_LIMIT)
    assert (throttled.status_hint, throttled.param) == (429, None)


def test_error_body_for_renders_each_dialect() -> None:
    error = LocalProtocolError("messages: field required", param="messages")
    assert json.loads(error_body_for(error, dialect="openai")) == {
        "error": {
            "message": "messages: field required",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "invalid_request",
        }
    }
    assert json.loads(error_body_for(error, dialect="anthropic")) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages: field required"},
    }


def test_a_request_header_is_found_case_insensitively_or_not_at_all() -> None:
    request = HttpRequest(method="GET", url="https://x.test/", headers=(("Content-Type", "a"), ("content-type", "b")))
    assert request.header("CONTENT-TYPE") == "a"
    assert request.header("accept") is None
