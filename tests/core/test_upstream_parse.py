"""Typed upstream events: the vectors, every catalogue entry, payload errors, encode round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol._errors import RemoteProtocolError
from kiro_protocol.wire._eventstream import Header, HeaderType, Message, decode_all, encode_message
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    IgnoredUpstreamEvent,
    InvalidState,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    TokenUsage,
    ToolUse,
    UnknownUpstreamEvent,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import (
    IGNORED_EVENT_TYPES,
    UpstreamPayloadError,
    encode_upstream_event,
    parse_all,
    parse_message,
)

from tests.helpers_eventstream import fixture_bytes

TOOL_ID = "tooluse_Zx9QpLm2RkT4vN8aB3cD1e"


def _event(event_type: str, payload: bytes | str) -> Message:
    raw = payload.encode() if isinstance(payload, str) else payload
    (message,) = decode_all(
        encode_message(
            {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, raw
        )
    )
    return message


# --- the vectors ------------------------------------------------------------------------------


def test_real01() -> None:
    assert parse_all(fixture_bytes("real01_simple_text")) == [
        AssistantResponse(content="Immersive Weather Car"),
        AssistantResponse(content="d: Native Web Design & Dynamic Effects"),
    ]


def test_real02_text_is_kept_verbatim() -> None:
    events = parse_all(fixture_bytes("real02_json_text_chunks"))
    assert all(isinstance(e, AssistantResponse) for e in events)
    assert "".join(e.content for e in events if isinstance(e, AssistantResponse)) == (
        '{\n    "isNewTopic": true,\n    "title": "Weather Card"\n}'
    )


def test_real03_cjk_then_tool_start() -> None:
    events = parse_all(fixture_bytes("real03_chinese_then_tool_start"))
    assert len(events) == 21
    assert events[0] == AssistantResponse(content="我")
    assert events[-1] == ToolUse(tool_use_id="tooluse_1DCqyICMR-CfTS36UNNiwA", name="Write", input="", stop=False)


def test_syn01() -> None:
    assert parse_all(fixture_bytes("syn01_text_metering_context")) == [
        AssistantResponse(content="Hello"),
        AssistantResponse(content=" world"),
        Metering(unit="credit", usage=0.0123),
        ContextUsage(percentage=1.5),
    ]


def test_syn02_tool_lifecycle() -> None:
    assert parse_all(fixture_bytes("syn02_text_then_tool")) == [
        AssistantResponse(content="Let me check."),
        ToolUse(tool_use_id=TOOL_ID, name="get_weather", input="", stop=False),
        ToolUse(tool_use_id=TOOL_ID, name="get_weather", input='{"location":', stop=False),
        ToolUse(tool_use_id=TOOL_ID, name="get_weather", input='"Tokyo"}', stop=False),
        ToolUse(tool_use_id=TOOL_ID, name="get_weather", input="", stop=True),
        Metering(unit="credit", usage=0.0571),
        ContextUsage(percentage=2.25),
    ]


def test_syn05_exception_frame() -> None:
    assert parse_all(fixture_bytes("syn05_exception_content_length"))[1] == UpstreamException(
        exception_type="ContentLengthExceededException",
        message="Response content length exceeded the maximum allowed.",
    )


def test_syn06_error_frame() -> None:
    assert parse_all(fixture_bytes("syn06_error_frame"))[1] == UpstreamError(
        error_code="InternalServerException",
        message="Encountered an unexpected error when processing the request, please try again.",
    )


def test_syn09_empty_payload_is_not_the_json_metering_requires() -> None:
    with pytest.raises(UpstreamPayloadError, match="meteringEvent.*not valid JSON") as info:
        parse_all(fixture_bytes("syn09_empty_payload"))
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.status_hint == 502


def test_syn10_message_without_headers_is_unknown() -> None:
    assert parse_all(fixture_bytes("syn10_no_headers")) == [
        UnknownUpstreamEvent(message_type="", event_type=None, payload=b'{"content":"no headers"}')
    ]


# --- catalogue entries ------------------------------------------------------------------------

PARSE_CASES: list[tuple[str, str, str, UpstreamEvent]] = [
    ("text-extra-fields", "assistantResponseEvent", '{"content":"x","messageStatus":"COMPLETED"}',
     AssistantResponse(content="x")),
    ("text-empty", "assistantResponseEvent", '{"content":""}', AssistantResponse(content="")),
    ("tool-legacy-object-input", "toolUseEvent",
     '{"name":"t","toolUseId":"tooluse_a","input":{"b":[1,"é"],"a":null},"stop":true}',
     ToolUse(tool_use_id="tooluse_a", name="t", input='{"a":null,"b":[1,"é"]}', stop=True)),
    ("tool-null-input-and-stop", "toolUseEvent", '{"name":"t","toolUseId":"i","input":null,"stop":null}',
     ToolUse(tool_use_id="i", name="t", input="", stop=False)),
    ("tool-without-name", "toolUseEvent", '{"toolUseId":"i","input":"{"}',
     ToolUse(tool_use_id="i", name="", input="{", stop=False)),
    ("metadata-extra-fields", "metadataEvent",
     '{"tokenUsage":{"outputTokens":2,"normalizedTokenUsage":0.5,"contextUsagePercentage":1.5},'
     '"stopReason":"CONTENT_FILTERED","stopDetails":{"refusal":{}}}',
     MessageMetadata(token_usage=TokenUsage(output_tokens=2), stop_reason="CONTENT_FILTERED")),
    ("tool-stop-false", "toolUseEvent", '{"name":"t","toolUseId":"i","stop":false}',
     ToolUse(tool_use_id="i", name="t", input="", stop=False)),
    ("reasoning-text", "reasoningContentEvent", '{"text":"hmm","signature":"sig"}',
     ReasoningContent(text="hmm", signature="sig")),
    ("reasoning-redacted", "reasoningContentEvent", '{"redactedContent":"b64"}',
     ReasoningContent(text="", redacted_content="b64")),
    ("metering-empty-object", "meteringEvent", "{}", Metering(unit=None, usage=None)),
    ("metering-int-usage", "meteringEvent", '{"unit":"credit","usage":1}', Metering(unit="credit", usage=1.0)),
    ("context-over-100", "contextUsageEvent", '{"contextUsagePercentage":100.5}', ContextUsage(percentage=100.5)),
    ("metadata-ids", "messageMetadataEvent", '{"conversationId":"c","utteranceId":"u"}',
     MessageMetadata(conversation_id="c", utterance_id="u")),
    ("metadata-usage", "metadataEvent",
     '{"tokenUsage":{"uncachedInputTokens":10,"outputTokens":5,"cacheReadInputTokens":3,'
     '"cacheWriteInputTokens":0,"totalTokens":18},"stopReason":"END_TURN"}',
     MessageMetadata(token_usage=TokenUsage(uncached_input_tokens=10, output_tokens=5, cache_read_input_tokens=3,
                                            cache_write_input_tokens=0), stop_reason="END_TURN")),
    ("message-stop", "messageStopEvent", '{"stopReason":"MAX_TOKENS"}', MessageStop(stop_reason="MAX_TOKENS")),
    ("message-stop-empty", "messageStopEvent", "{}", MessageStop()),
    ("invalid-state", "invalidStateEvent", '{"reason":"INVALID_TASK_ASSIST_PLAN","message":"m"}',
     InvalidState(reason="INVALID_TASK_ASSIST_PLAN", message="m")),
    ("ignored-web-links", "supplementaryWebLinksEvent", '{"supplementaryWebLinks":[]}',
     IgnoredUpstreamEvent(event_type="supplementaryWebLinksEvent")),
    ("ignored-payload-not-parsed", "followupPromptEvent", "not json",
     IgnoredUpstreamEvent(event_type="followupPromptEvent")),
    ("unknown-event-type", "somethingNewEvent", "\xff garbage",
     UnknownUpstreamEvent(message_type="event", event_type="somethingNewEvent", payload="\xff garbage".encode())),
]


@pytest.mark.parametrize(
    ("event_type", "payload", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_catalogue(event_type: str, payload: str, expected: UpstreamEvent) -> None:
    assert parse_message(_event(event_type, payload)) == expected


def test_every_ignored_type_is_ignored() -> None:
    for event_type in IGNORED_EVENT_TYPES:
        assert parse_message(_event(event_type, "{}")) == IgnoredUpstreamEvent(event_type=event_type)


BAD_PAYLOADS: list[tuple[str, str, bytes, str]] = [
    ("text-not-json", "assistantResponseEvent", b"{content}", "not valid JSON"),
    ("text-not-utf8", "assistantResponseEvent", b'{"content":"\xff"}', "not valid UTF-8"),
    ("text-utf16", "assistantResponseEvent", '{"content":"x"}'.encode("utf-16"), "not valid UTF-8"),
    ("text-array", "assistantResponseEvent", b'["x"]', "expected a JSON object, got list"),
    ("text-missing", "assistantResponseEvent", b"{}", "'content' is missing"),
    ("text-null", "assistantResponseEvent", b'{"content":null}', "'content' must be a string, got null"),
    ("text-number", "assistantResponseEvent", b'{"content":1}', "'content' must be a string, got number"),
    ("text-nan", "assistantResponseEvent", b'{"content":"x","n":NaN}', "not valid JSON"),
    ("text-trailing-garbage", "assistantResponseEvent", b'{"content":"x"} x', "not valid JSON"),
    ("tool-missing-id", "toolUseEvent", b'{"name":"t"}', "'toolUseId' is missing"),
    ("tool-name-number", "toolUseEvent", b'{"toolUseId":"i","name":1}', "'name' must be a string"),
    ("tool-input-array", "toolUseEvent", b'{"name":"t","toolUseId":"i","input":[1]}', "'input' must be"),
    ("tool-stop-string", "toolUseEvent", b'{"name":"t","toolUseId":"i","stop":"true"}', "'stop' must be a boolean"),
    ("context-missing", "contextUsageEvent", b"{}", "'contextUsagePercentage' is missing"),
    ("context-string", "contextUsageEvent", b'{"contextUsagePercentage":"5"}', "must be a number, got string"),
    ("context-bool", "contextUsageEvent", b'{"contextUsagePercentage":true}', "must be a number, got boolean"),
    ("context-infinite", "contextUsageEvent", b'{"contextUsagePercentage":1e999}', "must be a finite number"),
    ("context-huge-int", "contextUsageEvent", b'{"contextUsagePercentage":1' + b"0" * 400 + b"}",
     "must be a finite number"),
    ("metering-usage-string", "meteringEvent", b'{"usage":"1"}', "'usage' must be a number"),
    ("metadata-usage-array", "metadataEvent", b'{"tokenUsage":[]}', "'tokenUsage' must be an object"),
    ("metadata-negative-tokens", "messageMetadataEvent", b'{"tokenUsage":{"outputTokens":-1}}',
     "'outputTokens' must be a non-negative integer"),
    ("metadata-float-tokens", "metadataEvent", b'{"tokenUsage":{"outputTokens":1.5}}', "non-negative integer"),
    ("reasoning-text-number", "reasoningContentEvent", b'{"text":1}', "'text' must be a string"),
    ("invalid-state-missing-reason", "invalidStateEvent", b'{"message":"m"}', "'reason' is missing"),
    ("deep-nesting", "assistantResponseEvent", b"[" * 100000 + b"]" * 100000, "JSON"),
]


@pytest.mark.parametrize(
    ("event_type", "payload", "match"), [c[1:] for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS]
)
def test_bad_payload_is_a_remote_protocol_error(event_type: str, payload: bytes, match: str) -> None:
    with pytest.raises(UpstreamPayloadError) as info:
        parse_message(_event(event_type, payload))
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.event_type == event_type
    assert event_type in info.value.message
    assert match in info.value.message


# --- exceptions and errors --------------------------------------------------------------------


def _frame(headers: dict[str, str], payload: bytes) -> Message:
    (message,) = decode_all(encode_message(headers, payload))
    return message


@pytest.mark.parametrize(
    ("headers", "payload", "expected"),
    [
        ({":message-type": "exception", ":exception-type": "ThrottlingException"}, b'{"message":"slow down"}',
         UpstreamException(exception_type="ThrottlingException", message="slow down")),
        ({":message-type": "exception"}, b'{"__type":"com.amazon.aws.codewhisperer#ValidationException","Message":"m"}',
         UpstreamException(exception_type="ValidationException", message="m")),
        ({":message-type": "exception", ":exception-type": "A"}, b'{"__type":"B","message":"m"}',
         UpstreamException(exception_type="A", message="m")),
        ({":message-type": "exception"}, b"plain text \xff",
         UpstreamException(exception_type="UnknownException", message="plain text \ufffd")),
        ({":message-type": "exception"}, b"", UpstreamException(exception_type="UnknownException", message="")),
        ({":message-type": "error", ":error-code": "E"}, b"from payload",
         UpstreamError(error_code="E", message="from payload")),
        ({":message-type": "error"}, b"", UpstreamError(error_code="UnknownError", message="")),
        ({":message-type": "novel", ":event-type": "x"}, b"p",
         UnknownUpstreamEvent(message_type="novel", event_type="x", payload=b"p")),
        ({":message-type": "event"}, b"{}", UnknownUpstreamEvent(message_type="event", event_type=None, payload=b"{}")),
    ],
)
def test_exception_error_and_unknown_frames(headers: dict[str, str], payload: bytes, expected: UpstreamEvent) -> None:
    assert parse_message(_frame(headers, payload)) == expected


def test_non_string_event_type_header_is_unknown() -> None:
    message = Message(
        headers=(
            Header(name=":message-type", type=HeaderType.STRING, value="event"),
            Header(name=":event-type", type=HeaderType.INTEGER, value=7),
        ),
        payload=b"{}",
    )
    assert parse_message(message) == UnknownUpstreamEvent(message_type="event", event_type=None, payload=b"{}")


# --- encoder ----------------------------------------------------------------------------------


def test_encode_reproduces_the_captures_byte_exact() -> None:
    for stem in ["real01_simple_text", "real02_json_text_chunks", "real03_chinese_then_tool_start", "syn01_text_metering_context",
                 "syn02_text_then_tool", "syn03_tool_only", "syn04_text_after_tool",
                 "syn05_exception_content_length", "syn06_error_frame", "syn07_thinking_tags"]:
        data = fixture_bytes(stem)
        assert b"".join(encode_upstream_event(e) for e in parse_all(data)) == data, stem


def test_encode_header_sets() -> None:
    (text,) = decode_all(encode_upstream_event(AssistantResponse(content="x")))
    assert [(h.name, h.value) for h in text.headers] == [
        (":event-type", "assistantResponseEvent"), (":content-type", "application/json"), (":message-type", "event")]
    (exc,) = decode_all(encode_upstream_event(UpstreamException(exception_type="ThrottlingException", message="m")))
    assert [(h.name, h.value) for h in exc.headers] == [
        (":exception-type", "ThrottlingException"), (":content-type", "application/json"),
        (":message-type", "exception")]
    assert json.loads(exc.payload) == {"message": "m"}
    (err,) = decode_all(encode_upstream_event(UpstreamError(error_code="E", message="m")))
    assert [(h.name, h.value) for h in err.headers] == [
        (":error-code", "E"), (":error-message", "m"), (":message-type", "error")]
    assert err.payload == b""


_text = st.text(max_size=40)
_opt_text = st.none() | _text
_num = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
_count = st.none() | st.integers(0, 2**40)

EVENTS: st.SearchStrategy[UpstreamEvent] = st.one_of(
    st.builds(AssistantResponse, content=_text),
    st.builds(ToolUse, tool_use_id=_text, name=_text, input=_text, stop=st.booleans()),
    st.builds(ReasoningContent, text=_text, signature=_opt_text, redacted_content=_opt_text),
    st.builds(Metering, unit=_opt_text, usage=st.none() | _num),
    st.builds(ContextUsage, percentage=_num),
    st.builds(MessageMetadata, conversation_id=_opt_text, utterance_id=_opt_text, stop_reason=_opt_text,
              token_usage=st.none() | st.builds(TokenUsage, uncached_input_tokens=_count, output_tokens=_count,
                                                 cache_read_input_tokens=_count, cache_write_input_tokens=_count)),
    st.builds(MessageStop, stop_reason=_opt_text),
    st.builds(InvalidState, reason=_text, message=_text),
    st.builds(IgnoredUpstreamEvent, event_type=st.sampled_from(sorted(IGNORED_EVENT_TYPES))),
    st.builds(UpstreamException, exception_type=_text.filter(bool), message=_text),
    st.builds(UpstreamError, error_code=_text.filter(bool), message=_text),
    st.builds(UnknownUpstreamEvent, message_type=st.sampled_from(["", "event", "novel"]),
              event_type=st.none() | st.sampled_from(["newEvent", "other"]), payload=st.binary(max_size=40)),
)


@given(st.lists(EVENTS, max_size=8))
def test_encode_then_parse_is_identity(events: list[UpstreamEvent]) -> None:
    data = b"".join(encode_upstream_event(e) for e in events)
    assert parse_all(data) == events


def test_numbers_are_floats() -> None:
    event = parse_message(_event("contextUsageEvent", '{"contextUsagePercentage":7}'))
    assert isinstance(event, ContextUsage)
    assert type(event.percentage) is float and event.percentage == 7.0


def _text_message(payload: bytes) -> Message:
    return decode_all(encode_message({":message-type": "event", ":event-type": "assistantResponseEvent"}, payload))[0]


def _text_or_error(payload: bytes, *, full_parse: bool) -> tuple[str, str]:
    from kiro_protocol.responses._upstream_parse import _json_object, _req_str, answer_text

    try:
        if full_parse:
            return ("text", _req_str("assistantResponseEvent", _json_object("assistantResponseEvent", payload), "content"))
        text = answer_text(_text_message(payload))
        assert text is not None
        return ("text", text)
    except UpstreamPayloadError as exc:
        return ("error", str(exc))


@given(st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(max_size=40).map(lambda t: json.dumps(t, ensure_ascii=False).encode("utf-8", "surrogatepass")[1:-1]),
))
def test_a_text_frame_reads_as_the_full_json_parse_reads_it(inner: bytes) -> None:
    # The plain-text shortcut of answer_text gives exactly what the JSON parse gives, or its error.
    for payload in (b'{"content":"' + inner + b'"}', b'{"content":"' + inner, inner + b'"}'):
        assert _text_or_error(payload, full_parse=False) == _text_or_error(payload, full_parse=True), payload


@pytest.mark.parametrize("payload", [
    b'{"content":"}', b'{"content":""}', b'{"content":"a"}', b'{"content":"\xff"}', b'{"content":"\xed\xa0\x80"}',
    b'{"content":"a\x01"}', b'{"content":"a","x":"b"}', b'{"content":"a\\"}', b'{"content":"caf\xc3\xa9 \xe2\x80\xa8"}',
])
def test_text_frame_edge_cases(payload: bytes) -> None:
    assert _text_or_error(payload, full_parse=False) == _text_or_error(payload, full_parse=True)
