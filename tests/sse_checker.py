"""A strict checker for Anthropic SSE streams and message bodies, for every test that sees them.

``parse_sse(data)`` decodes bytes per the WHATWG "event stream interpretation" rules (HTML
WHATWG HTML §9.2.6: lines end at CRLF, LF or CR; ``:`` starts a comment; ``data`` lines are joined with
``\\n``; one leading space after the colon is dropped; a blank line dispatches).

``check_anthropic_stream(data)`` then validates the Anthropic event grammar, more strictly than
Claude Code or the SDK (which silently accept several mistakes, docs/clients.md):

* every event has an ``event:`` name equal to ``data.type``, and one ``data:`` line of JSON;
* exactly one ``message_start``, first;
* blocks: indexes 0, 1, 2, ... in order, one open at a time, each stopped exactly once;
  ``tool_use`` starts with ``input: {}``; deltas go to the open block and match its type;
  a thinking block gets one ``signature_delta``, after its thinking and before its stop;
* every stopped tool block's concatenated ``partial_json`` parses to a JSON object;
* success ends ``message_delta`` (once, no block open) then ``message_stop``, last;
* failure ends with one ``event: error`` (Anthropic error body); nothing follows it, and no
  ``message_stop`` comes before it;
* anything else (a stream that simply stops) is a violation.

It returns a ``Transcript`` with the accumulated message, so tests can compare content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SSEViolation",
    "ServerSentEvent",
    "Transcript",
    "parse_sse",
    "check_anthropic_stream",
    "check_anthropic_message",
]

STOP_REASONS = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"})
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)
_DELTA_FOR_BLOCK = {
    "text": {"text_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "web_search_tool_result": set(),
    "thinking": {"thinking_delta", "signature_delta"},
    "redacted_thinking": set(),
}


class SSEViolation(AssertionError):
    """The bytes break the SSE format or the Anthropic event grammar."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    #: Number of ``data:`` lines (our encoder always writes one).
    data_lines: int
    #: Whether an explicit ``event:`` field was present.
    named: bool


@dataclass
class Transcript:
    """The checked stream: its events and what a client accumulates from them."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The message as accumulated from the events (content blocks with parsed tool inputs).
    message: dict[str, Any] = field(default_factory=dict)
    #: True if the stream ended with ``message_stop``.
    success: bool = False
    #: The ``error`` object of a failed stream.
    error: dict[str, Any] | None = None

    @property
    def types(self) -> list[str]:
        return [name for name, _ in self.events]

    @property
    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = self.message.get("content", [])
        return blocks

    @property
    def text(self) -> str:
        return "".join(b["text"] for b in self.content if b["type"] == "text")

    @property
    def stop_reason(self) -> str | None:
        value: str | None = self.message.get("stop_reason")
        return value


def parse_sse(data: bytes) -> list[ServerSentEvent]:
    """Decode an event stream (WHATWG rules). Raises ``SSEViolation`` for invalid UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SSEViolation(f"stream is not UTF-8: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # A final line without a terminator is incomplete and discarded; so is an event not
    # dispatched by a blank line (WHATWG: "If the file ends ... the data buffer is discarded").
    lines = lines[:-1]
    events: list[ServerSentEvent] = []
    event_name = ""
    data_buf: list[str] = []
    named = False
    for line in lines:
        if line == "":
            if data_buf:
                events.append(
                    ServerSentEvent(
                        event=event_name or "message", data="\n".join(data_buf), data_lines=len(data_buf), named=named
                    )
                )
            event_name, data_buf, named = "", [], False
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_name, named = value, True
        elif name == "data":
            data_buf.append(value)
        # "id", "retry" and unknown fields do not matter here.
    return events


def _fail(i: int, name: str, problem: str) -> SSEViolation:
    return SSEViolation(f"event #{i} ({name}): {problem}")


def check_anthropic_stream(data: bytes) -> Transcript:
    """Parse ``data`` and validate it as a complete Anthropic Messages stream.

    Returns the transcript; raises ``SSEViolation`` naming the first broken rule.
    """
    sse = parse_sse(data)
    if not sse:
        raise SSEViolation("stream holds no events")
    transcript = Transcript()
    message: dict[str, Any] | None = None
    open_index: int | None = None
    open_type = ""
    tool_json: list[str] = []
    signed = False
    next_index = 0
    delta_seen = False
    ended = False
    for i, ev in enumerate(sse):
        if ended:
            raise _fail(i, ev.event, "event after the end of the stream")
        if not ev.named:
            raise _fail(i, ev.event, "no 'event:' line")
        if ev.data_lines != 1:
            raise _fail(i, ev.event, f"{ev.data_lines} data lines; expected one line of JSON")
        try:
            obj = json.loads(ev.data)
        except ValueError as exc:
            raise _fail(i, ev.event, f"data is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise _fail(i, ev.event, "data is not a JSON object")
        if obj.get("type") != ev.event:
            raise _fail(i, ev.event, f"event name differs from data.type {obj.get('type')!r}")
        name = ev.event
        transcript.events.append((name, obj))
        if message is None and name not in ("message_start", "error"):
            raise _fail(i, name, "before message_start")
        if name == "message_start":
            if message is not None:
                raise _fail(i, name, "second message_start")
            msg = obj.get("message")
            if not isinstance(msg, dict) or msg.get("type") != "message" or msg.get("role") != "assistant":
                raise _fail(i, name, "message is not an assistant message")
            if msg.get("content") != [] or msg.get("stop_reason") is not None:
                raise _fail(i, name, "message_start must have empty content and no stop_reason")
            if not isinstance(msg.get("id"), str) or not isinstance(msg.get("model"), str):
                raise _fail(i, name, "id and model must be strings")
            _check_usage(i, name, msg.get("usage"))
            message = dict(msg)
            message["content"] = []
        elif name == "ping":
            pass
        elif name == "content_block_start":
            assert message is not None
            if delta_seen:
                raise _fail(i, name, "block after message_delta")
            if open_index is not None:
                raise _fail(i, name, f"block {open_index} is still open")
            if obj.get("index") != next_index:
                raise _fail(i, name, f"index {obj.get('index')!r}, expected {next_index}")
            block = obj.get("content_block")
            if not isinstance(block, dict):
                raise _fail(i, name, "content_block missing")
            btype = block.get("type")
            if btype == "text":
                if block.get("text") != "":
                    raise _fail(i, name, "text block must start empty")
            elif btype in ("tool_use", "server_tool_use"):
                if block.get("input") != {}:
                    raise _fail(i, name, f"{btype} must start with input {{}} (arguments only as deltas)")
                if not block.get("id") or not block.get("name"):
                    raise _fail(i, name, f"{btype} needs an id and a name")
            elif btype == "web_search_tool_result":
                _check_search_result(block)
            elif btype == "thinking":
                if block.get("thinking") != "":
                    raise _fail(i, name, "thinking block must start empty")
            elif btype == "redacted_thinking":
                if not isinstance(block.get("data"), str):
                    raise _fail(i, name, "redacted_thinking needs data")
            else:
                raise _fail(i, name, f"unknown block type {btype!r}")
            open_index, open_type = next_index, str(btype)
            next_index += 1
            tool_json, signed = [], False
            message["content"].append(dict(block))
        elif name == "content_block_delta":
            assert message is not None
            if open_index is None or obj.get("index") != open_index:
                raise _fail(i, name, f"delta for index {obj.get('index')!r}, open block is {open_index}")
            delta = obj.get("delta")
            if not isinstance(delta, dict):
                raise _fail(i, name, "delta missing")
            dtype = delta.get("type")
            if dtype not in _DELTA_FOR_BLOCK[open_type]:
                raise _fail(i, name, f"{dtype} on a {open_type} block")
            block = message["content"][open_index]
            if signed:
                raise _fail(i, name, "delta after the signature")
            if dtype == "text_delta":
                _need_str(i, name, delta, "text")
                block["text"] += delta["text"]
            elif dtype == "input_json_delta":
                _need_str(i, name, delta, "partial_json")
                tool_json.append(delta["partial_json"])
            elif dtype == "thinking_delta":
                _need_str(i, name, delta, "thinking")
                block["thinking"] += delta["thinking"]
            elif dtype == "signature_delta":
                _need_str(i, name, delta, "signature")
                if not delta["signature"]:
                    raise _fail(i, name, "empty signature")
                block["signature"] = delta["signature"]
                signed = True
        elif name == "content_block_stop":
            assert message is not None
            if open_index is None or obj.get("index") != open_index:
                raise _fail(i, name, f"stop for index {obj.get('index')!r}, open block is {open_index}")
            block = message["content"][open_index]
            if open_type in ("tool_use", "server_tool_use"):
                raw = "".join(tool_json)
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise _fail(i, name, f"tool input is not valid JSON: {raw[:200]!r}") from None
                if not isinstance(parsed, dict):
                    raise _fail(i, name, f"tool input is not a JSON object: {raw[:200]!r}")
                block["input"] = parsed
            if open_type == "thinking" and not signed:
                raise _fail(i, name, "thinking block closed without a signature")
            open_index = None
        elif name == "message_delta":
            assert message is not None
            if open_index is not None:
                raise _fail(i, name, f"block {open_index} still open")
            if delta_seen:
                raise _fail(i, name, "second message_delta")
            delta = obj.get("delta")
            if not isinstance(delta, dict) or delta.get("stop_reason") not in STOP_REASONS:
                raise _fail(i, name, f"bad stop_reason in {delta!r}")
            seq = delta.get("stop_sequence")
            if (delta["stop_reason"] == "stop_sequence") != isinstance(seq, str):
                raise _fail(i, name, "stop_sequence must be set exactly when stop_reason is stop_sequence")
            _check_usage(i, name, obj.get("usage"), need_input=False)
            message["stop_reason"] = delta["stop_reason"]
            message["stop_sequence"] = seq
            message["usage"] = {**message.get("usage", {}), **obj["usage"]}
            delta_seen = True
        elif name == "message_stop":
            if not delta_seen:
                raise _fail(i, name, "message_stop without message_delta")
            transcript.success = True
            ended = True
        elif name == "error":
            err = obj.get("error")
            if not isinstance(err, dict) or err.get("type") not in ERROR_TYPES or not isinstance(err.get("message"), str):
                raise _fail(i, name, f"bad error object {err!r}")
            if not err["message"]:
                raise _fail(i, name, "error without a message")
            transcript.error = err
            ended = True
        else:
            raise _fail(i, name, "unknown event type")
    if not ended:
        raise SSEViolation("stream ended without message_stop or error (looks like success, is not)")
    transcript.message = message or {}
    return transcript


def check_anthropic_message(body: bytes) -> dict[str, Any]:
    """Validate a non-streaming Anthropic ``message`` body; return it parsed."""
    try:
        msg = json.loads(body)
    except ValueError as exc:
        raise SSEViolation(f"body is not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise SSEViolation("body is not a JSON object")
    for key in ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"):
        if key not in msg:
            raise SSEViolation(f"message lacks {key!r}")
    if msg["type"] != "message" or msg["role"] != "assistant" or not str(msg["id"]).startswith("msg_"):
        raise SSEViolation("not an assistant message with a msg_ id")
    if msg["stop_reason"] not in STOP_REASONS:
        raise SSEViolation(f"bad stop_reason {msg['stop_reason']!r}")
    if (msg["stop_reason"] == "stop_sequence") != isinstance(msg["stop_sequence"], str):
        raise SSEViolation("stop_sequence must be set exactly when stop_reason is stop_sequence")
    _check_usage(0, "message", msg["usage"])
    for block in msg["content"]:
        btype = block.get("type")
        if btype == "text":
            if not isinstance(block.get("text"), str):
                raise SSEViolation("text block without text")
        elif btype in ("tool_use", "server_tool_use"):
            if not isinstance(block.get("input"), dict) or not block.get("id") or not block.get("name"):
                raise SSEViolation(f"bad {btype} block {block!r}")
        elif btype == "web_search_tool_result":
            _check_search_result(block)
        elif btype == "thinking":
            if not isinstance(block.get("thinking"), str) or not block.get("signature"):
                raise SSEViolation("thinking block without thinking or signature")
        elif btype != "redacted_thinking":
            raise SSEViolation(f"unknown block type {btype!r}")
    return msg


def _check_search_result(block: dict[str, Any]) -> None:
    """A ``web_search_tool_result``: complete at start, every hit in Anthropic's shape."""
    if not str(block.get("tool_use_id", "")).startswith("srvtoolu_") or not isinstance(block.get("content"), list):
        raise SSEViolation(f"bad web_search_tool_result block {block!r}")
    for hit in block["content"]:
        if (
            not isinstance(hit, dict)
            or hit.get("type") != "web_search_result"
            or not all(isinstance(hit.get(k), str) for k in ("title", "url", "encrypted_content"))
            or not (hit.get("page_age") is None or isinstance(hit.get("page_age"), str))
        ):
            raise SSEViolation(f"bad web_search_result {hit!r}")


def _need_str(i: int, name: str, obj: dict[str, Any], key: str) -> None:
    if not isinstance(obj.get(key), str):
        raise _fail(i, name, f"{key} must be a string")


def _check_usage(i: int, name: str, usage: object, *, need_input: bool = True) -> None:
    if not isinstance(usage, dict):
        raise _fail(i, name, "usage missing")
    keys = ("input_tokens", "output_tokens") if need_input else ("output_tokens",)
    for key in keys:
        value = usage.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _fail(i, name, f"usage.{key} must be a non-negative integer, not {value!r}")
    for key, value in usage.items():
        if key == "server_tool_use":
            if not isinstance(value, dict) or not all(isinstance(n, int) and n >= 0 for n in value.values()):
                raise _fail(i, name, f"usage.server_tool_use must count requests, not {value!r}")
            continue
        if value is not None and (not isinstance(value, int) or value < 0):
            raise _fail(i, name, f"usage.{key} must be a non-negative integer, not {value!r}")
