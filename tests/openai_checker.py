"""A strict checker for OpenAI ``chat.completion.chunk`` streams and ``chat.completion`` bodies.

The openai SDK is lenient (docs/clients.md: a missing ``[DONE]`` is accepted, bad tool JSON is
kept as a string), so every OpenAI output the tests see goes through this instead. Stream rules:

* SSE per WHATWG (``tests.sse_checker.parse_sse``); no ``event:`` names; one ``data:`` line each;
* every chunk: ``object == "chat.completion.chunk"``, the same ``chatcmpl-`` id, ``created`` and
  ``model`` throughout; ``choices`` holds exactly one choice with ``index`` 0 (except the usage
  chunk);
* the first chunk's delta has ``role: "assistant"``, no later one does;
* delta keys are ``role``/``content``/``reasoning_content``/``tool_calls`` only, strings where
  text is expected;
* tool calls: a new ``index`` is the next number (0, 1, ...) and its first piece carries ``id``,
  ``type: "function"`` and a non-empty ``function.name``; later pieces carry neither ``id`` nor
  ``name``, only ``function.arguments`` fragments; each call's arguments parse to a JSON object;
* exactly one chunk has a ``finish_reason`` (``stop``/``tool_calls``/``length``), with an empty
  delta, after every content chunk; ``tool_calls`` only when a call was made;
* with ``include_usage``: every chunk has ``"usage": null`` except one last chunk with
  ``choices: []`` and the usage; without it, no chunk has ``usage``;
* success ends with ``data: [DONE]``; failure with one ``{"error": {message, type, param, code}}``
  chunk and nothing after it (and no ``[DONE]``); a stream that simply stops is a violation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.sse_checker import SSEViolation, parse_sse

__all__ = ["OpenAITranscript", "check_openai_stream", "check_openai_completion", "check_openai_error"]

FINISH_REASONS = frozenset({"stop", "tool_calls", "length"})
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)
_DELTA_KEYS = frozenset({"role", "content", "reasoning_content", "tool_calls"})


@dataclass
class OpenAITranscript:
    """The checked stream and what a client accumulates from it."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    id: str = ""
    model: str = ""
    created: int = 0
    content: str = ""
    reasoning: str = ""
    #: ``{"id", "name", "arguments"}`` per call, in index order (arguments as the raw string).
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    success: bool = False
    error: dict[str, Any] | None = None

    @property
    def tool_arguments(self) -> list[Any]:
        return [json.loads(c["arguments"]) for c in self.tool_calls]


def check_openai_error(obj: object, where: str = "error body") -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``; returns the inner object."""
    if not isinstance(obj, dict) or set(obj) != {"error"} or not isinstance(obj["error"], dict):
        raise SSEViolation(f"{where}: expected {{'error': {{...}}}}, got {obj!r}")
    error: dict[str, Any] = obj["error"]
    if set(error) != {"message", "type", "param", "code"}:
        raise SSEViolation(f"{where}: error keys {sorted(error)}")
    if not isinstance(error["message"], str) or not error["message"]:
        raise SSEViolation(f"{where}: empty message")
    if error["type"] not in ERROR_TYPES:
        raise SSEViolation(f"{where}: unknown error type {error['type']!r}")
    if error["param"] is not None and not isinstance(error["param"], str):
        raise SSEViolation(f"{where}: param must be a string or null")
    if not isinstance(error["code"], str):
        raise SSEViolation(f"{where}: code must be a string")
    return error


def _check_usage(usage: object, where: str) -> dict[str, Any]:
    if not isinstance(usage, dict):
        raise SSEViolation(f"{where}: usage must be an object, got {usage!r}")
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SSEViolation(f"{where}: usage.{key} must be a non-negative integer, got {value!r}")
    if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
        raise SSEViolation(f"{where}: total_tokens is not prompt_tokens + completion_tokens")
    details = usage.get("prompt_tokens_details")
    if details is not None:
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if not isinstance(cached, int) or not 0 <= cached <= usage["prompt_tokens"]:
            raise SSEViolation(f"{where}: bad prompt_tokens_details {details!r}")
    return usage


def _check_arguments(arguments: str, where: str) -> None:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise SSEViolation(f"{where}: arguments are not JSON: {arguments!r}") from None
    if not isinstance(parsed, dict):
        raise SSEViolation(f"{where}: arguments are not a JSON object: {arguments!r}")


def check_openai_stream(data: bytes, *, include_usage: bool = False) -> OpenAITranscript:
    """Validate an OpenAI chunk stream; returns what a client accumulates. Raises SSEViolation."""
    t = OpenAITranscript()
    events = parse_sse(data)
    if not events:
        raise SSEViolation("empty stream")
    ended = False
    usage_seen = False
    for i, ev in enumerate(events):
        where = f"chunk #{i}"
        if ended:
            raise SSEViolation(f"{where}: data after the end of the stream ({ev.data[:80]!r})")
        if ev.named:
            raise SSEViolation(f"{where}: OpenAI chunks carry no event name, got {ev.event!r}")
        if ev.data_lines != 1:
            raise SSEViolation(f"{where}: {ev.data_lines} data lines")
        if ev.data == "[DONE]":
            if t.finish_reason is None:
                raise SSEViolation(f"{where}: [DONE] before a finish_reason")
            if include_usage and not usage_seen:
                raise SSEViolation(f"{where}: [DONE] without the usage chunk")
            t.success = ended = True
            continue
        try:
            chunk = json.loads(ev.data)
        except ValueError:
            raise SSEViolation(f"{where}: data is not JSON: {ev.data[:80]!r}") from None
        if isinstance(chunk, dict) and "error" in chunk:
            t.error = check_openai_error(chunk, where)
            ended = True
            continue
        if not isinstance(chunk, dict):
            raise SSEViolation(f"{where}: chunk is not an object")
        t.chunks.append(chunk)
        _check_envelope(t, chunk, where, first=i == 0)
        if usage_seen:
            raise SSEViolation(f"{where}: a chunk after the usage chunk")
        if include_usage:
            if "usage" not in chunk:
                raise SSEViolation(f"{where}: include_usage chunks carry a usage key")
            if chunk["usage"] is not None:
                if chunk["choices"] != []:
                    raise SSEViolation(f"{where}: the usage chunk must have choices: []")
                if t.finish_reason is None:
                    raise SSEViolation(f"{where}: usage chunk before the finish_reason")
                t.usage = _check_usage(chunk["usage"], where)
                usage_seen = True
                continue
        elif "usage" in chunk:
            raise SSEViolation(f"{where}: usage without include_usage")
        choices = chunk["choices"]
        if not isinstance(choices, list) or len(choices) != 1:
            raise SSEViolation(f"{where}: expected exactly one choice, got {choices!r}")
        _check_choice(t, choices[0], where, first=i == 0)
    if not ended:
        raise SSEViolation("the stream ended without [DONE] or an error chunk")
    if t.success:
        for n, call in enumerate(t.tool_calls):
            _check_arguments(call["arguments"], f"tool call {n}")
    return t


def _check_envelope(t: OpenAITranscript, chunk: dict[str, Any], where: str, *, first: bool) -> None:
    if chunk.get("object") != "chat.completion.chunk":
        raise SSEViolation(f"{where}: object is {chunk.get('object')!r}")
    cid, created, model = chunk.get("id"), chunk.get("created"), chunk.get("model")
    if first:
        if not isinstance(cid, str) or not cid.startswith("chatcmpl-"):
            raise SSEViolation(f"{where}: id {cid!r} is not chatcmpl-...")
        if isinstance(created, bool) or not isinstance(created, int):
            raise SSEViolation(f"{where}: created must be an integer")
        if not isinstance(model, str) or not model:
            raise SSEViolation(f"{where}: model must be a non-empty string")
        t.id, t.created, t.model = cid, created, model
    elif (cid, created, model) != (t.id, t.created, t.model):
        raise SSEViolation(f"{where}: id/created/model changed mid-stream")


def _check_choice(t: OpenAITranscript, choice: object, where: str, *, first: bool) -> None:
    if not isinstance(choice, dict) or choice.get("index") != 0:
        raise SSEViolation(f"{where}: choice must be an object with index 0")
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        raise SSEViolation(f"{where}: delta must be an object")
    extra = set(delta) - _DELTA_KEYS
    if extra:
        raise SSEViolation(f"{where}: unexpected delta keys {sorted(extra)}")
    if first != ("role" in delta) or (first and delta["role"] != "assistant"):
        raise SSEViolation(f"{where}: role 'assistant' belongs in the first delta, and only there")
    finish = choice.get("finish_reason")
    if t.finish_reason is not None:
        raise SSEViolation(f"{where}: a choice after the finish_reason chunk")
    if finish is not None:
        if finish not in FINISH_REASONS:
            raise SSEViolation(f"{where}: finish_reason {finish!r}")
        if delta:
            raise SSEViolation(f"{where}: the finish_reason chunk must have an empty delta")
        if finish == "tool_calls" and not t.tool_calls:
            raise SSEViolation(f"{where}: finish_reason tool_calls without a tool call")
        t.finish_reason = finish
        return
    for key in ("content", "reasoning_content"):
        if key in delta:
            if not isinstance(delta[key], str):
                raise SSEViolation(f"{where}: {key} must be a string")
            if key == "content":
                t.content += delta[key]
            else:
                t.reasoning += delta[key]
    if "tool_calls" in delta:
        _check_tool_pieces(t, delta["tool_calls"], where)


def _check_tool_pieces(t: OpenAITranscript, pieces: object, where: str) -> None:
    if not isinstance(pieces, list) or not pieces:
        raise SSEViolation(f"{where}: tool_calls must be a non-empty array")
    for piece in pieces:
        if not isinstance(piece, dict):
            raise SSEViolation(f"{where}: a tool call piece must be an object")
        index = piece.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise SSEViolation(f"{where}: a tool call piece needs an integer index (the SDK raises TypeError)")
        function = piece.get("function")
        if not isinstance(function, dict):
            raise SSEViolation(f"{where}: a tool call piece needs a function object")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            raise SSEViolation(f"{where}: function.arguments must be a string")
        if index == len(t.tool_calls):
            call_id, name = piece.get("id"), function.get("name")
            if not isinstance(call_id, str) or not call_id:
                raise SSEViolation(f"{where}: the first piece of call {index} needs an id")
            if piece.get("type") != "function":
                raise SSEViolation(f"{where}: the first piece of call {index} needs type 'function'")
            if not isinstance(name, str) or not name:
                raise SSEViolation(f"{where}: the first piece of call {index} needs function.name")
            t.tool_calls.append({"id": call_id, "name": name, "arguments": arguments})
        elif 0 <= index < len(t.tool_calls):
            if "id" in piece or "name" in function:
                raise SSEViolation(f"{where}: id/name repeated for call {index}")
            t.tool_calls[index]["arguments"] += arguments
        else:
            raise SSEViolation(f"{where}: tool call index {index} skips {len(t.tool_calls)}")


def check_openai_completion(body: bytes) -> dict[str, Any]:
    """Validate a non-streaming ``chat.completion`` body; returns it parsed."""
    try:
        obj = json.loads(body)
    except ValueError:
        raise SSEViolation("completion body is not JSON") from None
    if not isinstance(obj, dict) or obj.get("object") != "chat.completion":
        raise SSEViolation(f"not a chat.completion: {str(obj)[:120]}")
    if not isinstance(obj.get("id"), str) or not obj["id"].startswith("chatcmpl-"):
        raise SSEViolation(f"id {obj.get('id')!r} is not chatcmpl-...")
    if isinstance(obj.get("created"), bool) or not isinstance(obj.get("created"), int):
        raise SSEViolation("created must be an integer")
    if not isinstance(obj.get("model"), str) or not obj["model"]:
        raise SSEViolation("model must be a non-empty string")
    _check_usage(obj.get("usage"), "completion")
    choices = obj.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or choices[0].get("index") != 0:
        raise SSEViolation("expected exactly one choice with index 0")
    choice = choices[0]
    if choice.get("finish_reason") not in FINISH_REASONS:
        raise SSEViolation(f"finish_reason {choice.get('finish_reason')!r}")
    message = choice.get("message")
    if not isinstance(message, dict) or message.get("role") != "assistant":
        raise SSEViolation("message must be an assistant message")
    calls = message.get("tool_calls")
    content = message.get("content")
    if content is None and not calls:
        raise SSEViolation("content is null without tool calls")
    if content is not None and not isinstance(content, str):
        raise SSEViolation("content must be a string or null")
    if calls is not None:
        if not isinstance(calls, list) or not calls:
            raise SSEViolation("tool_calls, when present, must be a non-empty array")
        for n, call in enumerate(calls):
            if not isinstance(call.get("id"), str) or call.get("type") != "function":
                raise SSEViolation(f"tool call {n}: needs id and type 'function'")
            function = call.get("function", {})
            if not isinstance(function.get("name"), str) or not function["name"]:
                raise SSEViolation(f"tool call {n}: needs function.name")
            if not isinstance(function.get("arguments"), str):
                raise SSEViolation(f"tool call {n}: arguments must be a JSON string")
            _check_arguments(function["arguments"], f"tool call {n}")
    if choice["finish_reason"] == "tool_calls" and not calls:
        raise SSEViolation("finish_reason tool_calls without tool calls")
    return obj
