"""Server-sent events: the wire format, and the Anthropic streaming encoder.

Each event is ``event: <type>\\n`` + ``data: <one line of compact JSON>\\n\\n`` (WHATWG HTML
§9.2 "server-sent events"; the ``event`` name always equals ``data.type``, which Claude Code and
the SDKs rely on). JSON escapes every newline inside strings, so one ``data:`` line is always
enough; U+2028/U+2029 need no escaping because SSE splits lines only at CR and LF.
"""

from __future__ import annotations

from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from ._anthropic_response import block_start_json, dumps, message_start_json, usage_json
from ._error_bodies import anthropic_error_body
from ._errors import ErrorKind
from ._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    SignatureDelta,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
)

__all__ = ["SSE_MEDIA_TYPE", "SSE_HEADERS", "sse_event", "AnthropicStreamEncoder"]

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"

#: Response headers for an SSE stream: no caching, and no buffering by reverse proxies
#: (nginx honours ``X-Accel-Buffering``), so each event reaches the client when it is written.
SSE_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", SSE_MEDIA_TYPE),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)


def sse_event(event_type: str, data: bytes) -> bytes:
    """One SSE event. ``data`` must be a single line (compact JSON is)."""
    return b"event: " + event_type.encode("ascii") + b"\ndata: " + data + b"\n\n"


def _event(data: dict[str, Any]) -> bytes:
    return sse_event(data["type"], dumps(data))


class AnthropicStreamEncoder:
    """Streaming encoder: one Anthropic SSE event per lifecycle event.

    ``StreamFailed`` becomes ``event: error`` with Anthropic's error body (the same bytes as an
    HTTP error body, so clients parse it the same way); nothing follows it.
    """

    streaming = True
    media_type = SSE_MEDIA_TYPE

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """Anthropic's error body (also the ``data`` of an ``event: error``)."""
        return anthropic_error_body(kind, message)

    def send(self, event: LifecycleEvent) -> bytes:
        """The SSE bytes for ``event``."""
        if isinstance(event, MessageStarted):
            return _event({"type": "message_start", "message": message_start_json(event)})
        if isinstance(event, ContentBlockStarted):
            return _event(
                {"type": "content_block_start", "index": event.index, "content_block": block_start_json(event.block)}
            )
        if isinstance(event, TextDelta):
            return _delta(event.index, b'"text_delta","text":', event.text)
        if isinstance(event, ThinkingDelta):
            return _delta(event.index, b'"thinking_delta","thinking":', event.thinking)
        if isinstance(event, SignatureDelta):
            return _delta(event.index, b'"signature_delta","signature":', event.signature)
        if isinstance(event, ToolInputDelta):
            return _delta(event.index, b'"input_json_delta","partial_json":', event.partial_json)
        if isinstance(event, ContentBlockStopped):
            return _event({"type": "content_block_stop", "index": event.index})
        if isinstance(event, MessageDelta):
            return _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": event.stop_reason.value, "stop_sequence": event.stop_sequence},
                    "usage": usage_json(event.usage),
                }
            )
        if isinstance(event, MessageStopped):
            return _event({"type": "message_stop"})
        if isinstance(event, Ping):
            return _event({"type": "ping"})
        if isinstance(event, StreamFailed):
            return sse_event("error", self.error_body(event.kind, event.message))
        _never: None = event  # pragma: no cover - exhaustiveness is checked by mypy
        raise AssertionError(_never)


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def _delta(index: int, kind_and_field: bytes, value: str) -> bytes:
    # Deltas are nearly every event of a stream: assembled around the one JSON string they
    # carry, byte for byte what ``_event`` makes of the same dict (a property test checks).
    try:
        text = encode_basestring(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from upstream: ASCII-escaped, as dumps() does
        text = encode_basestring_ascii(value).encode("ascii")
    return b"".join((_DELTA_HEAD, str(index).encode("ascii"), b',"delta":{"type":', kind_and_field, text, b"}}\n\n"))
