"""Decoded EventStream messages -> typed upstream events, and back.

The events: docs/kiro-protocol.md, Event catalogue.

``parse_message`` gives meaning to one ``Message``: an event frame becomes the dataclass named
after its ``:event-type``, exception and error frames become ``UpstreamException`` /
``UpstreamError`` values (reported, not raised), a well-formed message of a type we do not know
becomes ``UnknownUpstreamEvent``. A payload that is not the JSON its event type requires raises
``UpstreamPayloadError`` (a ``RemoteProtocolError``).

``encode_upstream_event`` is the inverse, with the header set and order of the real captures;
the upstream simulator and the translator tests build their streams with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

from .._errors import RemoteProtocolError
from .._json_codec import codec_loads
from ..wire._eventstream import Header, HeaderType, Message, decode_all, encode_message
from ._upstream_events import (
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

__all__ = [
    "UpstreamPayloadError",
    "parse_message",
    "parse_all",
    "encode_upstream_event",
    "IGNORED_EVENT_TYPES",
    "decode_all",
]

_JSON: Final = "application/json"

#: Official ``ChatResponseStream`` members (docs/kiro-protocol.md, Other official events) that
#: carry nothing a client of this gateway can use. They are surfaced as ``IgnoredUpstreamEvent``
#: (so nothing is dropped silently) and their payloads are not parsed: a payload we would throw
#: away must not fail the answer.
IGNORED_EVENT_TYPES: Final = frozenset(
    {
        "supplementaryWebLinksEvent",
        "codeReferenceEvent",
        "followupPromptEvent",
        "codeEvent",
        "intentsEvent",
        "interactionComponentsEvent",
        "citationEvent",
        "dryRunSucceedEvent",
    }
)


class UpstreamPayloadError(RemoteProtocolError):
    """An event's payload is not the JSON its ``:event-type`` requires."""

    def __init__(self, event_type: str, problem: str) -> None:
        super().__init__(f"invalid {event_type} payload from upstream: {problem}")
        self.event_type = event_type


# --- JSON field access ------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# One decoder for every frame: json.loads() with any option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_object(event_type: str, payload: bytes) -> dict[str, object]:
    try:
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/32; upstream sends UTF-8.
        obj = codec_loads(payload, lambda data: _DECODER.decode(data.decode("utf-8")))  # orjson, if installed
    except UnicodeDecodeError:
        raise UpstreamPayloadError(event_type, "not valid UTF-8") from None
    except ValueError:  # json.JSONDecodeError and the NaN/Infinity rejection
        raise UpstreamPayloadError(event_type, "not valid JSON") from None
    except RecursionError:
        raise UpstreamPayloadError(event_type, "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise UpstreamPayloadError(event_type, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _req_str(event_type: str, obj: dict[str, object], key: str) -> str:
    if key not in obj:
        raise UpstreamPayloadError(event_type, f"{key!r} is missing")
    value = obj[key]
    if not isinstance(value, str):
        raise UpstreamPayloadError(event_type, f"{key!r} must be a string, got {_json_type(value)}")
    return value


def _opt_str(event_type: str, obj: dict[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise UpstreamPayloadError(event_type, f"{key!r} must be a string, got {_json_type(value)}")


def _opt_number(event_type: str, obj: dict[str, object], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)  # an int too large for a float raises OverflowError
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
        raise UpstreamPayloadError(event_type, f"{key!r} must be a finite number")
    raise UpstreamPayloadError(event_type, f"{key!r} must be a number, got {_json_type(value)}")


def _opt_int(event_type: str, obj: dict[str, object], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise UpstreamPayloadError(event_type, f"{key!r} must be a non-negative integer, got {_json_type(value)}")


def _opt_bool(event_type: str, obj: dict[str, object], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise UpstreamPayloadError(event_type, f"{key!r} must be a boolean, got {_json_type(value)}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _dumps(obj: object) -> str:
    # The captures' shape: compact, keys sorted, non-ASCII as UTF-8.
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# --- event parsers (one per :event-type) ------------------------------------------------------


def _assistant_response(obj: dict[str, object]) -> UpstreamEvent:
    # Official model: only "content". Older docs list conversationId, messageId, contentType,
    # messageStatus, supplementaryWebLinks, references, codeReference, followupPrompt, ...:
    # tolerated and ignored.
    return AssistantResponse(content=_req_str("assistantResponseEvent", obj, "content"))


def _tool_use(obj: dict[str, object]) -> UpstreamEvent:
    et = "toolUseEvent"
    raw_input = obj.get("input")
    if raw_input is None:
        fragment = ""
    elif isinstance(raw_input, str):
        fragment = raw_input
    elif isinstance(raw_input, dict):
        # Legacy one-shot form (evidenced by [GO] only): the complete arguments as an
        # object. Re-serialised so downstream sees one kind of input: JSON text.
        try:
            fragment = _dumps(raw_input)
        except (ValueError, RecursionError):  # nesting that parsed but cannot be re-serialised
            raise UpstreamPayloadError(et, "'input' object cannot be re-serialised") from None
    else:
        raise UpstreamPayloadError(et, f"'input' must be a string or an object, got {_json_type(raw_input)}")
    # "name" is on every frame of the captures, but one other implementation's wire types
    # declare it optional [EXT]; the tool is identified by toolUseId, so "" is tolerated.
    return ToolUse(
        tool_use_id=_req_str(et, obj, "toolUseId"),
        name=_opt_str(et, obj, "name") or "",
        input=fragment,
        stop=_opt_bool(et, obj, "stop"),
    )


def _reasoning_content(obj: dict[str, object]) -> UpstreamEvent:
    # [EXT] shape from other implementations only: {"text","signature"} or
    # {"redactedContent"}; no capture shows it.
    et = "reasoningContentEvent"
    return ReasoningContent(
        text=_opt_str(et, obj, "text") or "",
        signature=_opt_str(et, obj, "signature"),
        redacted_content=_opt_str(et, obj, "redactedContent"),
    )


def _metering(obj: dict[str, object]) -> UpstreamEvent:
    # [EXT] {"unit":"credit","unitPlural":"credits","usage":0.0123}; "unitPlural" is ignored.
    et = "meteringEvent"
    return Metering(unit=_opt_str(et, obj, "unit"), usage=_opt_number(et, obj, "usage"))


def _context_usage(obj: dict[str, object]) -> UpstreamEvent:
    et = "contextUsageEvent"
    percentage = _opt_number(et, obj, "contextUsagePercentage")
    if percentage is None:
        raise UpstreamPayloadError(et, "'contextUsagePercentage' is missing")
    return ContextUsage(percentage=percentage)


def _metadata(event_type: str) -> Callable[[dict[str, object]], UpstreamEvent]:
    def parse(obj: dict[str, object]) -> UpstreamEvent:
        # conversationId / utteranceId: official model (messageMetadataEvent). tokenUsage and
        # stopReason: [EXT], newer Kiro backends per other implementations, which also
        # list tokenUsage.totalTokens / contextUsagePercentage / normalizedTokenUsage and a
        # stopDetails object: tolerated and ignored (the four disjoint counters are what we use).
        raw_usage = obj.get("tokenUsage")
        usage: TokenUsage | None
        if raw_usage is None:
            usage = None
        elif isinstance(raw_usage, dict):
            usage = TokenUsage(
                uncached_input_tokens=_opt_int(event_type, raw_usage, "uncachedInputTokens"),
                output_tokens=_opt_int(event_type, raw_usage, "outputTokens"),
                cache_read_input_tokens=_opt_int(event_type, raw_usage, "cacheReadInputTokens"),
                cache_write_input_tokens=_opt_int(event_type, raw_usage, "cacheWriteInputTokens"),
            )
        else:
            raise UpstreamPayloadError(event_type, f"'tokenUsage' must be an object, got {_json_type(raw_usage)}")
        return MessageMetadata(
            conversation_id=_opt_str(event_type, obj, "conversationId"),
            utterance_id=_opt_str(event_type, obj, "utteranceId"),
            token_usage=usage,
            stop_reason=_opt_str(event_type, obj, "stopReason"),
        )

    return parse


def _message_stop(obj: dict[str, object]) -> UpstreamEvent:
    # [EXT] other implementations only.
    return MessageStop(stop_reason=_opt_str("messageStopEvent", obj, "stopReason"))


def _invalid_state(obj: dict[str, object]) -> UpstreamEvent:
    # Official model: {"reason":"INVALID_TASK_ASSIST_PLAN","message":...}; both required there.
    et = "invalidStateEvent"
    return InvalidState(reason=_req_str(et, obj, "reason"), message=_req_str(et, obj, "message"))


_EVENT_PARSERS: Final[dict[str, Callable[[dict[str, object]], UpstreamEvent]]] = {
    "assistantResponseEvent": _assistant_response,
    "toolUseEvent": _tool_use,
    "reasoningContentEvent": _reasoning_content,
    "meteringEvent": _metering,
    "contextUsageEvent": _context_usage,
    "metadataEvent": _metadata("metadataEvent"),
    "messageMetadataEvent": _metadata("messageMetadataEvent"),
    "messageStopEvent": _message_stop,
    "invalidStateEvent": _invalid_state,
}


def _payload_text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


def _exception(message: Message) -> UpstreamException:
    # The :exception-type header first, the payload's "__type" second (docs/kiro-protocol.md,
    # Exception and error frames).
    exception_type = message.string_header(":exception-type") or None
    text: str | None = None
    try:
        obj = json.loads(message.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict):
        for key in ("message", "Message"):
            value = obj.get(key)
            if isinstance(value, str):
                text = value
                break
        if exception_type is None:
            raw_type = obj.get("__type")
            if isinstance(raw_type, str) and raw_type:
                # AWS JSON protocols may qualify it: "namespace#Name" or "Name:uri".
                exception_type = raw_type.rsplit("#", 1)[-1].split(":", 1)[0] or None
    if text is None:
        # Not the JSON we expected: report the raw text rather than fail; this frame is already
        # upstream telling us something went wrong.
        text = _payload_text(message.payload)
    return UpstreamException(exception_type=exception_type or "UnknownException", message=text)


def _error(message: Message) -> UpstreamError:
    text = message.string_header(":error-message")
    if text is None:
        text = _payload_text(message.payload)
    return UpstreamError(error_code=message.string_header(":error-code") or "UnknownError", message=text)


# The last headers tuple seen and its two types, replaced whole (a strong reference: the tuple's
# identity cannot be reused while it is held here).
_last_types: tuple[tuple[Header, ...], str | None, str | None] = ((), None, None)


def _types(message: Message) -> tuple[str | None, str | None]:
    """The ``:message-type`` and ``:event-type`` of ``message``, looked up once per headers tuple."""
    global _last_types
    headers = message.headers
    memo = _last_types  # read once: another thread may replace it (never change it)
    if memo[0] is headers:
        # The decoder hands out one headers tuple for every frame with the same header bytes:
        # Kiro's text frames are asked their types once per answer, not once per frame.
        return memo[1], memo[2]
    message_type = message.string_header(":message-type")
    event_type = message.string_header(":event-type")
    _last_types = (headers, message_type, event_type)
    return message_type, event_type


def answer_text(message: Message) -> str | None:
    """The text of an ``assistantResponseEvent`` message, or None for any other message.

    What ``parse_message`` would give as ``AssistantResponse.content``, without building the
    event: the translator joins the text of consecutive frames, and text frames are nearly all
    of an answer.

    Raises:
        UpstreamPayloadError: an ``assistantResponseEvent`` whose payload is not valid.
    """
    message_type, event_type = _types(message)
    if event_type != "assistantResponseEvent" or message_type != "event":
        return None
    payload = message.payload
    if payload.startswith(_TEXT_HEAD) and payload.endswith(b'"}') and len(payload) >= _MIN_TEXT_PAYLOAD:
        # Kiro's usual text frame, {"content":"..."} with nothing to unescape: the string is the
        # bytes between the quotes (no quote, backslash or control character inside means no
        # other key and no escape). A third of the JSON parse's cost per frame; anything else,
        # invalid UTF-8 included, takes the full parse and its errors.
        inner = payload[_TEXT_AT:-2]
        if _NOT_PLAIN.search(inner) is None:
            try:
                return inner.decode("utf-8")
            except UnicodeDecodeError:
                pass
    return _req_str(event_type, _json_object(event_type, payload), "content")


_TEXT_HEAD: Final = b'{"content":"'
_TEXT_AT: Final = len(_TEXT_HEAD)
_MIN_TEXT_PAYLOAD: Final = _TEXT_AT + 2
#: What in a JSON string's bytes would need the parser: a quote, a backslash, a control character.
_NOT_PLAIN: Final = re.compile(rb'["\\\x00-\x1f]')


def parse_message(message: Message) -> UpstreamEvent:
    """Turn one decoded message into its typed upstream event.

    A message without ``:message-type`` (or of a ``:message-type`` other than event /
    exception / error), and an event without ``:event-type`` or of an unknown one, become an
    ``UnknownUpstreamEvent`` (``message_type`` is ``""`` when the header is absent).

    Raises:
        UpstreamPayloadError: a known event whose payload is not the JSON its type requires.
    """
    message_type, event_type = _types(message)
    if message_type == "event":
        if event_type is not None:
            parser = _EVENT_PARSERS.get(event_type)
            if parser is not None:
                return parser(_json_object(event_type, message.payload))
            if event_type in IGNORED_EVENT_TYPES:
                return IgnoredUpstreamEvent(event_type=event_type)
    elif message_type == "exception":
        return _exception(message)
    elif message_type == "error":
        return _error(message)
    return UnknownUpstreamEvent(
        message_type=message_type or "",
        event_type=message.string_header(":event-type"),
        payload=message.payload,
    )


def parse_all(data: bytes) -> list[UpstreamEvent]:
    """Decode and parse a complete upstream body (tests and tools)."""
    return [parse_message(m) for m in decode_all(data)]


# --- encoder ----------------------------------------------------------------------------------


def _string_headers(*items: tuple[str, str]) -> tuple[Header, ...]:
    return tuple(Header(name=n, type=HeaderType.STRING, value=v) for n, v in items)


@lru_cache(maxsize=64)
def _event_headers(event_type: str) -> tuple[Header, ...]:
    # Order of the real captures: :event-type, :content-type, :message-type.
    return _string_headers((":event-type", event_type), (":content-type", _JSON), (":message-type", "event"))


def _event_frame(event_type: str, obj: dict[str, object]) -> bytes:
    return encode_message(_event_headers(event_type), _dumps(obj).encode("utf-8"))


def encode_upstream_event(event: UpstreamEvent) -> bytes:
    """Encode ``event`` as the EventStream message upstream would send for it.

    Headers and JSON follow the captures: ``:event-type``, ``:content-type``
    ``application/json``, ``:message-type`` ``event``, compact JSON with sorted keys.
    Exceptions: ``:exception-type``, ``:content-type``, ``:message-type`` ``exception`` and
    ``{"message": ...}``. Errors: ``:error-code``, ``:error-message``, ``:message-type``
    ``error`` and an empty payload. ``parse_message`` of the result gives ``event`` back
    (``MessageMetadata`` is always sent as ``messageMetadataEvent``).
    """
    if isinstance(event, AssistantResponse):
        return _event_frame("assistantResponseEvent", {"content": event.content})
    if isinstance(event, ToolUse):
        tool: dict[str, object] = {"name": event.name, "toolUseId": event.tool_use_id}
        if event.input:
            tool["input"] = event.input
        if event.stop:
            tool["stop"] = True
        return _event_frame("toolUseEvent", tool)
    if isinstance(event, ReasoningContent):
        reasoning: dict[str, object] = {}
        if event.text or (event.signature is None and event.redacted_content is None):
            reasoning["text"] = event.text
        if event.signature is not None:
            reasoning["signature"] = event.signature
        if event.redacted_content is not None:
            reasoning["redactedContent"] = event.redacted_content
        return _event_frame("reasoningContentEvent", reasoning)
    if isinstance(event, Metering):
        metering: dict[str, object] = {}
        if event.unit is not None:
            metering["unit"] = event.unit
            metering["unitPlural"] = event.unit + "s"
        if event.usage is not None:
            metering["usage"] = event.usage
        return _event_frame("meteringEvent", metering)
    if isinstance(event, ContextUsage):
        return _event_frame("contextUsageEvent", {"contextUsagePercentage": event.percentage})
    if isinstance(event, MessageMetadata):
        meta: dict[str, object] = {}
        if event.conversation_id is not None:
            meta["conversationId"] = event.conversation_id
        if event.utterance_id is not None:
            meta["utteranceId"] = event.utterance_id
        if event.token_usage is not None:
            u = event.token_usage
            fields = {
                "uncachedInputTokens": u.uncached_input_tokens,
                "outputTokens": u.output_tokens,
                "cacheReadInputTokens": u.cache_read_input_tokens,
                "cacheWriteInputTokens": u.cache_write_input_tokens,
            }
            meta["tokenUsage"] = {k: v for k, v in fields.items() if v is not None}
        if event.stop_reason is not None:
            meta["stopReason"] = event.stop_reason
        return _event_frame("messageMetadataEvent", meta)
    if isinstance(event, MessageStop):
        return _event_frame("messageStopEvent", {} if event.stop_reason is None else {"stopReason": event.stop_reason})
    if isinstance(event, InvalidState):
        return _event_frame("invalidStateEvent", {"message": event.message, "reason": event.reason})
    if isinstance(event, IgnoredUpstreamEvent):
        return _event_frame(event.event_type, {})
    if isinstance(event, UpstreamException):
        headers = _string_headers(
            (":exception-type", event.exception_type), (":content-type", _JSON), (":message-type", "exception")
        )
        return encode_message(headers, _dumps({"message": event.message}).encode("utf-8"))
    if isinstance(event, UpstreamError):
        headers = _string_headers(
            (":error-code", event.error_code), (":error-message", event.message), (":message-type", "error")
        )
        return encode_message(headers, b"")
    # UnknownUpstreamEvent
    items: list[tuple[str, str]] = []
    if event.event_type is not None:
        items.append((":event-type", event.event_type))
    if event.message_type:
        items.append((":message-type", event.message_type))
    return encode_message(_string_headers(*items), event.payload)
