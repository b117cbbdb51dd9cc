"""Fuzz target for parse_message: untrusted headers and JSON payloads of decoded messages.

Invariant in fuzz/README.md ("EventStream", typed upstream events).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.wire._eventstream import Header, HeaderType, Message, decode_all
from kiro_protocol.responses._upstream_events import UnknownUpstreamEvent
from kiro_protocol.responses._upstream_parse import (
    IGNORED_EVENT_TYPES,
    UpstreamPayloadError,
    encode_upstream_event,
    parse_message,
)

EVENT_TYPES = [
    "assistantResponseEvent",
    "toolUseEvent",
    "reasoningContentEvent",
    "meteringEvent",
    "contextUsageEvent",
    "metadataEvent",
    "messageMetadataEvent",
    "messageStopEvent",
    "invalidStateEvent",
    "somethingNewEvent",
    *sorted(IGNORED_EVENT_TYPES),
]
KEYS = [
    "content", "toolUseId", "name", "input", "stop", "text", "signature", "redactedContent", "unit",
    "usage", "contextUsagePercentage", "tokenUsage", "outputTokens", "uncachedInputTokens",
    "cacheReadInputTokens", "cacheWriteInputTokens", "stopReason", "conversationId", "utteranceId",
    "reason", "message", "Message", "__type",
]

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    max_leaves=12,
)
PAYLOADS = (
    st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=6).map(lambda d: json.dumps(d).encode())
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
)
HEADER_VALUES = st.sampled_from(["event", "exception", "error", "", "x"]) | st.sampled_from(EVENT_TYPES)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    names = draw(st.lists(st.sampled_from([":message-type", ":event-type", ":exception-type", ":error-code",
                                           ":error-message", ":content-type"]), unique=True, max_size=6))
    headers = []
    for name in names:
        if draw(st.integers(0, 9)) == 0:
            headers.append(Header(name=name, type=HeaderType.INTEGER, value=draw(st.integers(-5, 5))))
        else:
            headers.append(Header(name=name, type=HeaderType.STRING, value=draw(HEADER_VALUES)))
    return Message(headers=tuple(headers), payload=draw(PAYLOADS))


@given(messages())
def test_parse_message_gives_an_event_or_the_payload_error(message: Message) -> None:
    # Invariant: an UpstreamEvent or UpstreamPayloadError, nothing else; an event type we do not
    # know is never an error; whatever parses re-encodes to a message that parses the same.
    try:
        event = parse_message(message)
    except UpstreamPayloadError as exc:
        assert message.string_header(":message-type") == "event"
        assert exc.event_type == message.string_header(":event-type")
        return
    if message.string_header(":event-type") == "somethingNewEvent" and message.string_header(":message-type") == "event":
        assert event == UnknownUpstreamEvent(message_type="event", event_type="somethingNewEvent", payload=message.payload)
    try:
        frame = encode_upstream_event(event)
    except Exception as exc:  # only header limits can refuse: a value longer than 65535 bytes
        raise AssertionError(f"cannot re-encode {event!r}") from exc
    (again,) = decode_all(frame)
    assert parse_message(again) == event
