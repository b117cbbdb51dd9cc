"""OpenAI Chat Completions encoders: lifecycle events -> ``chat.completion.chunk`` SSE, or one
``chat.completion`` JSON body.

Both consume the very lifecycle events the Anthropic encoders do (one tracker, two dialects), so
an OpenAI answer and an Anthropic answer to the same upstream bytes cannot disagree.

Mapping (docs/openai.md):

* text blocks -> ``content`` (consecutive text blocks, e.g. text after a tool call, concatenate:
  OpenAI has one content string per message);
* thinking blocks (only produced when the client asked for thinking) -> ``reasoning_content``;
  signatures and redacted thinking have no OpenAI form and are dropped;
* tool blocks -> ``tool_calls`` numbered 0, 1, ... in order; the first piece of each call
  carries ``id``, ``type`` and ``function.name`` (and empty ``arguments``), later pieces only
  ``index`` and ``function.arguments`` fragments (the openai SDK merges pieces by ``index``);
* ``stop_reason`` -> ``finish_reason``: ``end_turn``/``stop_sequence`` -> ``stop``,
  ``tool_use`` -> ``tool_calls``, ``max_tokens`` -> ``length`` (``content_filter`` never);
* usage -> ``prompt_tokens`` (including cached input), ``completion_tokens``, ``total_tokens``;
* a failure mid-stream -> one ``data: {"error": {...}}`` chunk and no ``[DONE]``, so no client
  mistakes a cut-off answer for a complete one; keep-alive pings -> SSE comments.

Ids and time are inputs: the core draws no randomness and reads no clock.
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import ErrorKind, LocalProtocolError
from ..http._error_bodies import openai_error_body
from ..requests._plan import ResponsePlan
from ..wire._sse import SSE_MEDIA_TYPE
from ._anthropic import JSON_MEDIA_TYPE, dumps
from ._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    ResponseEncoder,
    SignatureDelta,
    StopReason,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
    Usage,
)

__all__ = [
    "FINISH_REASONS",
    "COMPLETION_ID_PREFIX",
    "MIN_COMPLETION_ID_RANDOM",
    "DONE",
    "PING_COMMENT",
    "openai_usage_json",
    "OpenAIChunkEncoder",
    "OpenAICompletionEncoder",
    "openai_encoder",
]

#: ``stop_reason`` -> ``finish_reason`` (docs/openai.md, Response mapping).
FINISH_REASONS: dict[StopReason, str] = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.MAX_TOKENS: "length",
}

COMPLETION_ID_PREFIX = "chatcmpl-"
#: A completion id is ``chatcmpl-`` plus at least this many random characters.
MIN_COMPLETION_ID_RANDOM = 24

#: The end of a successful stream (the openai SDK stops reading at it).
DONE = b"data: [DONE]\n\n"
#: Keep-alive: an SSE comment, which every SSE client skips (WHATWG: lines starting with ``:``).
PING_COMMENT = b": ping\n\n"


def _data(obj: object) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def openai_usage_json(usage: Usage) -> dict[str, Any]:
    """OpenAI's ``usage``: ``prompt_tokens`` counts all input, cached or not (Anthropic's
    ``input_tokens`` excludes the cache); ``cached_tokens`` only when upstream reported it."""
    cached = usage.cache_read_input_tokens or 0
    prompt = usage.input_tokens + cached + (usage.cache_creation_input_tokens or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
    }
    if usage.cache_read_input_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def _check_ids(completion_id: str, created: int) -> None:
    shortest = len(COMPLETION_ID_PREFIX) + MIN_COMPLETION_ID_RANDOM
    if not completion_id.startswith(COMPLETION_ID_PREFIX) or len(completion_id) < shortest:
        raise LocalProtocolError(
            f"completion id must be {COMPLETION_ID_PREFIX!r} + at least {MIN_COMPLETION_ID_RANDOM} characters"
        )
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise LocalProtocolError("created must be a non-negative integer (Unix seconds)")


class OpenAIChunkEncoder:
    """Streaming encoder: lifecycle events -> ``chat.completion.chunk`` SSE (``data:`` lines only).

    Args:
        completion_id: ``chatcmpl-`` + at least 24 random characters, chosen by the adapter; the
            same on every chunk.
        created: Unix time in seconds, from the adapter's clock; the same on every chunk.
        include_usage: ``stream_options.include_usage``: every chunk then carries
            ``"usage": null`` and a last chunk with ``choices: []`` carries the usage.

    Raises:
        LocalProtocolError: a malformed id or ``created``.
    """

    streaming = True
    media_type = SSE_MEDIA_TYPE

    def __init__(self, *, completion_id: str, created: int, include_usage: bool = False) -> None:
        _check_ids(completion_id, created)
        self.completion_id = completion_id
        self.created = created
        self.include_usage = include_usage
        self._model = ""
        # Block index -> tool call index (0, 1, ... in order of appearance).
        self._tool_calls: dict[int, int] = {}
        self._usage: Usage | None = None

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """OpenAI's error body (also the ``data`` of the mid-stream error chunk)."""
        return openai_error_body(kind, message)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def send(self, event: LifecycleEvent) -> bytes:
        """The SSE bytes for ``event`` (``b""`` for events with no OpenAI form)."""
        if isinstance(event, MessageStarted):
            self._model = event.model
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, ContentBlockStarted):
            if not isinstance(event.block, ToolUseBlock):
                return b""
            number = self._tool_calls[event.index] = len(self._tool_calls)
            call = {
                "index": number,
                "id": event.block.id,
                "type": "function",
                "function": {"name": event.block.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._chunk({"reasoning_content": event.thinking}) if event.thinking else b""
        if isinstance(event, ToolInputDelta):
            if not event.partial_json:
                return b""
            piece = {"index": self._tool_calls[event.index], "function": {"arguments": event.partial_json}}
            return self._chunk({"tool_calls": [piece]})
        if isinstance(event, (SignatureDelta, ContentBlockStopped)):
            return b""
        if isinstance(event, MessageDelta):
            self._usage = event.usage
            return self._chunk({}, FINISH_REASONS[event.stop_reason])
        if isinstance(event, MessageStopped):
            if not self.include_usage or self._usage is None:
                return DONE
            usage_chunk = {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self._model,
                "choices": [],
                "usage": openai_usage_json(self._usage),
            }
            return _data(usage_chunk) + DONE
        if isinstance(event, Ping):
            return PING_COMMENT
        if isinstance(event, StreamFailed):
            return b"data: " + self.error_body(event.kind, event.message) + b"\n\n"
        _never: None = event  # pragma: no cover - exhaustiveness is checked by mypy
        raise AssertionError(_never)


class OpenAICompletionEncoder:
    """Non-streaming encoder: accumulates lifecycle events into one ``chat.completion``.

    ``send`` returns ``b""`` for every event except ``MessageStopped``, for which it returns the
    whole JSON body. After ``StreamFailed`` nothing is returned: ``failure`` holds the error, and
    the adapter answers with its status and ``error_body`` (``ResponseTranslator.final_response``).
    ``content`` is ``null`` only when the answer is tool calls without text.
    """

    streaming = False
    media_type = JSON_MEDIA_TYPE

    def __init__(self, *, completion_id: str, created: int) -> None:
        _check_ids(completion_id, created)
        self.completion_id = completion_id
        self.created = created
        self._model = ""
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, tuple[str, str]] = {}  # block index -> (id, name)
        self._arguments: dict[int, list[str]] = {}
        self._delta: MessageDelta | None = None
        self._body: bytes | None = None
        #: The failure, if the response failed.
        self.failure: StreamFailed | None = None

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """OpenAI's error body (``{"error":{"message","type","param","code"}}``)."""
        return openai_error_body(kind, message)

    @property
    def completion(self) -> dict[str, Any] | None:
        """The complete ``chat.completion`` once ``MessageStopped`` was sent, else None."""
        return None if self._body is None else dict(json.loads(self._body))

    def send(self, event: LifecycleEvent) -> bytes:
        """Absorb ``event``; the JSON body when it completes the response, else ``b""``."""
        if isinstance(event, MessageStarted):
            self._model = event.model
        elif isinstance(event, ContentBlockStarted):
            if isinstance(event.block, ToolUseBlock):
                self._tools[event.index] = (event.block.id, event.block.name)
                self._arguments[event.index] = []
        elif isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            self._reasoning.append(event.thinking)
        elif isinstance(event, ToolInputDelta):
            self._arguments[event.index].append(event.partial_json)
        elif isinstance(event, MessageDelta):
            self._delta = event
        elif isinstance(event, MessageStopped):
            self._body = dumps(self._build())
            return self._body
        elif isinstance(event, StreamFailed):
            self.failure = event
        elif isinstance(event, (SignatureDelta, ContentBlockStopped, Ping)):
            pass
        else:  # pragma: no cover - exhaustiveness is checked by mypy
            _never: None = event
            raise AssertionError(_never)
        return b""

    def _build(self) -> dict[str, Any]:
        assert self._delta is not None  # the tracker sends MessageDelta before MessageStopped
        text = "".join(self._text)
        calls = [
            {
                "id": call_id,
                "type": "function",
                # The tracker stops a tool block only when its fragments form a JSON object.
                "function": {"name": name, "arguments": "".join(self._arguments[index]) or "{}"},
            }
            for index, (call_id, name) in self._tools.items()
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        reasoning = "".join(self._reasoning)
        if reasoning:
            message["reasoning_content"] = reasoning
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self._model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS[self._delta.stop_reason],
                }
            ],
            "usage": openai_usage_json(self._delta.usage),
        }


def openai_encoder(
    plan: ResponsePlan, *, completion_id: str, created: int, include_usage: bool = False
) -> ResponseEncoder:
    """The OpenAI encoder for ``plan``: chunks if the client asked for a stream, else one body.

    Pass it to ``ResponseTranslator(..., encoder=...)``. ``include_usage`` is the request's
    ``include_usage`` (ignored for a non-streaming answer, which always carries usage).
    """
    if plan.stream:
        return OpenAIChunkEncoder(completion_id=completion_id, created=created, include_usage=include_usage)
    return OpenAICompletionEncoder(completion_id=completion_id, created=created)
