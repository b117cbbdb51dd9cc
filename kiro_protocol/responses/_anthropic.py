"""Anthropic response shapes: the JSON objects both Anthropic encoders share, the streaming
encoder (one SSE event per lifecycle event) and the non-streaming ``message`` body.

The non-streaming body is accumulated from the very events the SSE encoder turns into a
stream, so a streamed and a non-streamed answer to the same upstream bytes cannot disagree
(tool inputs are the parsed concatenation of exactly the ``input_json_delta`` fragments).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Final

from .._errors import ErrorKind
from ..http._error_bodies import anthropic_error_body
from ..wire._sse import SSE_MEDIA_TYPE, sse_event
from ._lifecycle_events import (
    ContentBlock,
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    RedactedThinkingBlock,
    ServerToolUseBlock,
    SignatureDelta,
    StreamFailed,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
    Usage,
    WebSearchResultBlock,
)

__all__ = [
    "AnthropicStreamEncoder",
    "JSON_MEDIA_TYPE",
    "dumps",
    "usage_json",
    "block_start_json",
    "message_start_json",
    "AnthropicMessageEncoder",
]

JSON_MEDIA_TYPE = "application/json"


def dumps(obj: object) -> bytes:
    """Compact one-line JSON in UTF-8 (newlines inside strings are escaped by JSON itself).

    Upstream JSON may carry an escaped lone surrogate (``"\\ud800"``), which Python decodes but
    UTF-8 cannot encode; such a document is sent ASCII-escaped instead of failing the response.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def usage_json(usage: Usage) -> dict[str, Any]:
    """Anthropic's ``usage`` object; cache fields appear only when upstream reported them."""
    out: dict[str, Any] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cache_creation_input_tokens is not None:
        out["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
    if usage.cache_read_input_tokens is not None:
        out["cache_read_input_tokens"] = usage.cache_read_input_tokens
    if usage.web_search_requests:
        out["server_tool_use"] = {"web_search_requests": usage.web_search_requests, "web_fetch_requests": 0}
    return out


def block_start_json(block: ContentBlock) -> dict[str, Any]:
    """The ``content_block`` of a ``content_block_start``: empty text/thinking, ``input: {}``.

    A tool's arguments never appear here (Claude Code ignores them there and runs the tool with
    no arguments, docs/clients.md); they follow as ``input_json_delta``.
    """
    if isinstance(block, TextBlock):
        return {"type": "text", "text": ""}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": "", "signature": ""}
    if isinstance(block, RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": block.data}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
    if isinstance(block, ServerToolUseBlock):
        return {"type": "server_tool_use", "id": block.id, "name": block.name, "input": {}}
    if isinstance(block, WebSearchResultBlock):
        hits = [
            {"type": "web_search_result", "title": h.title, "url": h.url,
             "encrypted_content": h.encrypted_content, "page_age": h.page_age}
            for h in block.results
        ]  # fmt: skip
        return {"type": "web_search_tool_result", "tool_use_id": block.tool_use_id, "content": hits}
    _never: None = block  # pragma: no cover - exhaustiveness is checked by mypy
    raise AssertionError(_never)


def message_start_json(event: MessageStarted) -> dict[str, Any]:
    """The ``message`` of a ``message_start``: empty content, no stop reason yet."""
    return {
        "id": event.message_id,
        "type": "message",
        "role": "assistant",
        "model": event.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_json(event.usage),
    }


class AnthropicMessageEncoder:
    """Non-streaming encoder: accumulates lifecycle events into one Anthropic ``message``.

    ``send`` returns ``b""`` for every event except ``MessageStopped``, for which it returns the
    whole JSON body. After ``StreamFailed`` nothing is returned: ``failure`` holds the error for
    the adapter to answer with (status and body).
    """

    streaming = False
    media_type = JSON_MEDIA_TYPE

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._blocks: list[dict[str, Any]] = []
        # Raw argument JSON per tool block index, parsed when the block stops.
        self._tool_json: dict[int, list[str]] = {}
        self._done = False
        #: The failure, if the response failed.
        self.failure: StreamFailed | None = None

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """Anthropic's error body (``{"type":"error","error":{...}}``)."""
        return anthropic_error_body(kind, message)

    @property
    def message(self) -> dict[str, Any] | None:
        """The complete message once ``MessageStopped`` was sent, else None."""
        return self._message if self._done else None

    def send(self, event: LifecycleEvent) -> bytes:
        """Absorb ``event``; the JSON body when it completes the message, else ``b""``."""
        if isinstance(event, MessageStarted):
            self._message = message_start_json(event)
            self._message["content"] = self._blocks
        elif isinstance(event, ContentBlockStarted):
            self._blocks.append(block_start_json(event.block))
            if isinstance(event.block, (ToolUseBlock, ServerToolUseBlock)):
                self._tool_json[event.index] = []
        elif isinstance(event, TextDelta):
            self._blocks[event.index]["text"] += event.text
        elif isinstance(event, ThinkingDelta):
            self._blocks[event.index]["thinking"] += event.thinking
        elif isinstance(event, SignatureDelta):
            self._blocks[event.index]["signature"] = event.signature
        elif isinstance(event, ToolInputDelta):
            self._tool_json[event.index].append(event.partial_json)
        elif isinstance(event, ContentBlockStopped):
            parts = self._tool_json.pop(event.index, None)
            if parts is not None:
                # The tracker only stops a tool block whose fragments form a JSON object.
                self._blocks[event.index]["input"] = json.loads("".join(parts))
        elif isinstance(event, MessageDelta):
            assert self._message is not None
            self._message["stop_reason"] = event.stop_reason.value
            self._message["stop_sequence"] = event.stop_sequence
            self._message["usage"] = usage_json(event.usage)
        elif isinstance(event, MessageStopped):
            self._done = True
            return dumps(self._message)
        elif isinstance(event, StreamFailed):
            self.failure = event
        elif isinstance(event, Ping):
            pass
        else:  # pragma: no cover - exhaustiveness is checked by mypy
            _never: None = event
            raise AssertionError(_never)
        return b""


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
        if isinstance(event, TextDelta):  # nearly every event of a stream: asked first
            return _delta(event.index, b'"text_delta","text":', event.text)
        if isinstance(event, MessageStarted):
            return _message_start(event)
        if isinstance(event, ContentBlockStarted):
            return _event(
                {"type": "content_block_start", "index": event.index, "content_block": block_start_json(event.block)}
            )
        if isinstance(event, ThinkingDelta):
            return _delta(event.index, b'"thinking_delta","thinking":', event.thinking)
        if isinstance(event, SignatureDelta):
            return _delta(event.index, b'"signature_delta","signature":', event.signature)
        if isinstance(event, ToolInputDelta):
            return _delta(event.index, b'"input_json_delta","partial_json":', event.partial_json)
        if isinstance(event, ContentBlockStopped):
            return b"".join((_BLOCK_STOP_HEAD, str(event.index).encode("ascii"), b"}\n\n"))
        if isinstance(event, MessageDelta):
            return _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": event.stop_reason.value, "stop_sequence": event.stop_sequence},
                    "usage": usage_json(event.usage),
                }
            )
        if isinstance(event, MessageStopped):
            return _MESSAGE_STOP
        if isinstance(event, Ping):
            return _PING
        if isinstance(event, StreamFailed):
            return sse_event("error", self.error_body(event.kind, event.message))
        _never: None = event  # pragma: no cover - exhaustiveness is checked by mypy
        raise AssertionError(_never)


# Events with nothing or one integer in them: the bytes ``_event`` makes of them, made once.
_MESSAGE_STOP: Final = _event({"type": "message_stop"})
_PING: Final = _event({"type": "ping"})
_BLOCK_STOP_HEAD: Final = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'

def _message_start(event: MessageStarted) -> bytes:
    # Once per stream, and the largest of its small events: assembled around its two strings
    # and its usage, byte for byte what ``_event`` makes of ``message_start_json`` (a property
    # test checks).
    usage = event.usage
    if (
        usage.cache_creation_input_tokens is None
        and usage.cache_read_input_tokens is None
        and not usage.web_search_requests
    ):
        usage_bytes = b'{"input_tokens":%d,"output_tokens":%d}' % (usage.input_tokens, usage.output_tokens)
    else:
        usage_bytes = dumps(usage_json(usage))
    try:
        message_id = encode_basestring(event.message_id).encode("utf-8")
        model = encode_basestring(event.model).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: dumps() ASCII-escapes the whole event
        return _event({"type": "message_start", "message": message_start_json(event)})
    return b"".join((
        _MESSAGE_START_HEAD, message_id, b',"type":"message","role":"assistant","model":', model,
        b',"content":[],"stop_reason":null,"stop_sequence":null,"usage":', usage_bytes, b"}}\n\n",
    ))


_MESSAGE_START_HEAD: Final = b'event: message_start\ndata: {"type":"message_start","message":{"id":'

_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def _delta(index: int, kind_and_field: bytes, value: str) -> bytes:
    # Deltas are nearly every event of a stream: assembled around the one JSON string they
    # carry, byte for byte what ``_event`` makes of the same dict (a property test checks).
    try:
        text = encode_basestring(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from upstream: ASCII-escaped, as dumps() does
        text = encode_basestring_ascii(value).encode("ascii")
    return b"".join((_DELTA_HEAD, str(index).encode("ascii"), b',"delta":{"type":', kind_and_field, text, b"}}\n\n"))
