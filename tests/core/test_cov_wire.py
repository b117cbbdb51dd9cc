"""Small edges of the wire layer and of upstream payload parsing (``kiro_protocol.wire``,
``kiro_protocol.responses``, ``kiro_protocol.pool``, ``kiro_protocol.requests``)."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import LocalProtocolError
from kiro_protocol.pool import remaining_credits
from kiro_protocol.requests import type_name
from kiro_protocol.responses import UpstreamPayloadError, parse_message
from kiro_protocol.wire import EventStreamDecoder, Header, HeaderType, decode_all, encode_message


def event(event_type: str, payload: object) -> bytes:
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps(payload).encode())


def test_a_decoder_reports_its_message_length_limit() -> None:
    assert EventStreamDecoder(max_message_length=1024).max_message_length == 1024
    with pytest.raises(ValueError, match=r"max_message_length must be in \[16, 2\*\*32-1\], not 15"):
        EventStreamDecoder(max_message_length=15)


def test_a_header_name_must_be_text() -> None:
    with pytest.raises(LocalProtocolError, match="^header name must be str, not bytes$"):
        Header(name=b":event-type", type=HeaderType.STRING, value="x")  # type: ignore[arg-type]


def test_a_string_field_holding_an_object_is_an_upstream_fault() -> None:
    (message,) = decode_all(event("assistantResponseEvent", {"content": {"text": "hi"}}))
    with pytest.raises(UpstreamPayloadError) as caught:
        parse_message(message)
    assert caught.value.message == "invalid assistantResponseEvent payload from upstream: 'content' must be a string, got object"
    assert (caught.value.event_type, caught.value.status_hint) == ("assistantResponseEvent", 502)


@pytest.mark.parametrize("document", [None, [], "usage", 3])
def test_a_usage_answer_that_is_not_an_object_leaves_nothing(document: object) -> None:
    assert remaining_credits(document) == (0.0, 0.0, 0.0)


def test_type_names_are_the_json_names_or_the_python_one() -> None:
    values: tuple[object, ...] = (None, True, 1, 1.5, "s", [], {})
    assert [type_name(v) for v in values] == [
        "null", "boolean", "number", "number", "string", "array", "object",
    ]
    assert type_name((1, 2)) == "tuple"
