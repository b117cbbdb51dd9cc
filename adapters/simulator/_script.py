"""What the simulated model answers to a ``generateAssistantResponse`` body. Pure: no IO.

``answer(body, seed=...)`` reads the (already validated) body like a model would and returns
either an HTTP failure or the EventStream to send, frame by frame:

* tool results in the current message -> a text answer that quotes them (a tool round trip
  completes);
* tools offered and the prompt asks for one ("use the Bash tool", ``[[sim:tool:NAME]]``,
  ``[[sim:tools:N]]``) -> a short text, then the call(s) with their input JSON in fragments;
* otherwise a scripted text answer in small frames;
* ``<thinking>...</thinking>\\n\\n`` first when the conversation carries the thinking-mode
  instruction (or ``[[sim:thinking]]``);
* ``meteringEvent`` and ``contextUsageEvent`` at the end;
* scenario markers (``_markers``) turn this into a failure.

Frames are built with the core's encoder (``encode_upstream_event``), so the simulator speaks
exactly the EventStream our decoder and botocore accept.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from kiro_protocol import (
    AssistantResponse,
    ContextUsage,
    encode_upstream_event,
    KIRO_MODELS,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    THINKING_PREFIX_MARKER,
    TokenUsage,
    ToolUse,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)

from ._arguments import example_arguments
from ._context import context_tokens
from ._markers import HTTP_FAILURES, HttpFailure, Markers, parse_markers, strip_markers
from ._text import UNICODE_FRAMES, greeting, has_cjk, long_frames, reasoning_text, split_text, thinking_frames

__all__ = [
    "Ending",
    "ToolCall",
    "ToolResultView",
    "Turn",
    "ErrorReply",
    "StreamReply",
    "Reply",
    "read_turn",
    "answer",
    "tool_use_id",
    "FALLBACK_TOOL",
]

# Frames of the normal answer sent before a mid-stream failure.
_FRAMES_BEFORE_FAILURE = 3
# Characters of each tool result quoted back.
_QUOTE_LIMIT = 300
# "use the Bash tool", "call the `get_weather` tool", "run the Read tool".
_ASKS_FOR_TOOL = re.compile(
    r"\b(?:use|call|run|invoke|using|with)\s+(?:the\s+|your\s+|a\s+)?[`'\"]?([A-Za-z0-9_.:-]{1,64})[`'\"]?\s+tool\b",
    re.IGNORECASE,
)
# The thinking-mode instruction the converter puts into the conversation (docs/kiro-protocol.md,
# Thinking by prompt tags).
_THINKING_PREFIX = re.compile(
    r"<thinking_mode>.*?</thinking_mode>(?:<max_thinking_length>.*?</max_thinking_length>|"
    r"<thinking_effort>.*?</thinking_effort>)?\n?",
    re.DOTALL,
)
# Context a client wraps around the user's words (Claude Code's reminders, a folded system
# message, the Codex CLI's environment block); it may itself say "use the X tool" or name
# paths, so tool requests are looked for outside it.
_CLIENT_CONTEXT = re.compile(r"<(system-reminder|system|environment_context)>.*?</\1>", re.DOTALL)
# The argument names of a shell tool's command line: Claude Code's Bash has ``command``, the
# Codex CLI's ``exec_command`` has ``cmd``.
_SHELL_ARGUMENTS = ("command", "cmd")
# json.loads already joined valid pairs, so any surrogate left in a str stands alone.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_WINDOWS = {m.kiro_id: m.context_window for m in KIRO_MODELS}
#: ``[[sim:truncate]]`` without any offered tool: a large Write, the call that gets cut in practice.
FALLBACK_TOOL = "Write"
# A model told that its last answer was cut inside a tool call (the gateway's note when it asks
# again) makes smaller calls, which Kiro does not cut.
_ASKED_FOR_SMALLER_CALLS = re.compile(r"cut off in the middle of a tool call", re.IGNORECASE)
# ... and told that its first words were already shown, it goes straight on with the calls.
_TOLD_NOT_TO_REPEAT = re.compile(r"already seen the beginning of that answer", re.IGNORECASE)
# Absolute file paths in the prompt, in order (a ``plan`` step's ``@N``).
_PATHS = re.compile(r"(?<![\w/])/(?:[\w.-]+/)*[\w-]+\.[A-Za-z0-9]{1,8}\b")


class Ending(enum.Enum):
    """How the HTTP body ends after the last chunk."""

    #: The body ends normally (chunked terminator / END_STREAM).
    COMPLETE = "complete"
    #: The connection is closed without ending the body (``[[sim:drop]]``).
    DROP = "drop"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A tool call the simulated model makes."""

    tool_use_id: str
    name: str
    arguments: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultView:
    """One ``toolResults`` item of the current message, flattened to text."""

    tool_use_id: str
    status: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """What the simulated model reads from a body."""

    #: ``modelId`` of the current message.
    model: str
    #: The latest user text: the current message's content, else the last history user text.
    prompt: str
    #: ``prompt`` without client context blocks and markers: what the user actually said.
    said: str
    #: Offered tools: (name, input schema), in order.
    tools: tuple[tuple[str, object], ...]
    tool_results: tuple[ToolResultView, ...]
    #: The thinking-mode instruction is somewhere in the conversation.
    thinking: bool
    #: The input tokens the model reads (``_context``), for the context-usage event.
    input_tokens: int
    #: Tool calls the model made earlier in the conversation (a ``plan`` marker's progress).
    calls_made: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReply:
    """Answer with an HTTP error instead of a stream."""

    failure: HttpFailure
    #: The marker that chose it.
    scenario: str
    once: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReply:
    """Answer 200 with these EventStream chunks (one write each, paced)."""

    chunks: tuple[bytes, ...]
    #: The events of the complete, intact frames among ``chunks``, in order.
    events: tuple[UpstreamEvent, ...]
    ending: Ending = Ending.COMPLETE
    #: Pause between chunks asked by ``[[sim:slow:MS]]`` (None: the server's default pace).
    pace_ms: int | None = None
    #: ``[[sim:stall:MS]]``: one extra pause of this many milliseconds before chunk ``stall_before``.
    stall_ms: int | None = None
    stall_before: int = 0
    #: The stream-failure marker applied, if any.
    scenario: str | None = None
    once: bool = False
    #: All text the answer meant to send, and its tool calls (before any failure cut them).
    text: str = ""
    #: The reasoning sent as ``reasoningContentEvent`` frames (``[[sim:reasoning]]``), if any.
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default=())


Reply = ErrorReply | StreamReply


# -- reading the body ------------------------------------------------------------------------


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []


def _result_text(result: Mapping[str, object]) -> str:
    parts: list[str] = []
    for item in _list(result.get("content")):
        item = _dict(item)
        if isinstance(item.get("text"), str):
            parts.append(str(item["text"]))
        elif "json" in item:
            parts.append(json.dumps(item["json"], ensure_ascii=False, separators=(",", ":")))
    return "\n".join(parts)


def read_turn(body: Mapping[str, object]) -> Turn:
    """The parts of a ``generateAssistantResponse`` body the simulated model looks at.

    Tolerant of any shape (missing parts read as empty), though the app only passes bodies
    the linter accepted. Lone surrogates (JSON allows ``"\\ud800"``) become U+FFFD, so whatever
    is quoted back can be encoded.
    """
    dumped = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    clean = _LONE_SURROGATE.sub("\ufffd", dumped)
    if clean != dumped:
        body = json.loads(clean)
    state = _dict(body.get("conversationState"))
    current = _dict(_dict(state.get("currentMessage")).get("userInputMessage"))
    context = _dict(current.get("userInputMessageContext"))
    history = _list(state.get("history"))
    user_texts: list[str] = []
    calls_made = 0
    for entry in history:
        content = _dict(_dict(entry).get("userInputMessage")).get("content")
        if isinstance(content, str):
            user_texts.append(content)
        calls_made += len(_list(_dict(_dict(entry).get("assistantResponseMessage")).get("toolUses")))
    content = current.get("content")
    current_text = content if isinstance(content, str) else ""
    prompt = current_text
    if not _CLIENT_CONTEXT.sub("", prompt).strip():
        # Only tool results, or only what the client wraps around turns (Claude Code's
        # reminders): the user's words are those of the last turn that had some.
        prompt = next((t for t in reversed(user_texts) if _CLIENT_CONTEXT.sub("", t).strip()), prompt)
    tools: list[tuple[str, object]] = []
    for tool in _list(context.get("tools")):
        spec = _dict(_dict(tool).get("toolSpecification"))
        name = spec.get("name")
        if isinstance(name, str) and name:
            tools.append((name, _dict(spec.get("inputSchema")).get("json")))
    results = tuple(
        ToolResultView(
            tool_use_id=str(_dict(r).get("toolUseId", "")),
            status=str(_dict(r).get("status", "success")),
            text=_result_text(_dict(r)),
        )
        for r in _list(context.get("toolResults"))
    )
    model = current.get("modelId")
    prompt = _THINKING_PREFIX.sub("", prompt)
    return Turn(
        model=model if isinstance(model, str) else "",
        prompt=prompt,
        said=strip_markers(_CLIENT_CONTEXT.sub("", prompt)).strip(),
        tools=tuple(tools),
        tool_results=results,
        thinking=any(THINKING_PREFIX_MARKER in t for t in (*user_texts, current_text)),
        input_tokens=context_tokens(body),
        calls_made=calls_made,
    )


# -- deciding the answer -----------------------------------------------------------------------


def tool_use_id(seed: int, index: int) -> str:
    """``tooluse_`` + 22 base64url characters, derived from ``seed`` and the call's index."""
    digest = hashlib.sha256(f"kiro2api-simulator:{seed}:{index}".encode()).digest()
    return "tooluse_" + base64.urlsafe_b64encode(digest).decode()[:22]


def _chosen_tool(turn: Turn, markers: Markers) -> tuple[str, object] | None:
    offered = {name.lower(): (name, schema) for name, schema in turn.tools}
    # The marker first, then the user's last request ("use the Read tool, then the Bash tool").
    wanted = [markers.tool_name] if markers.tool_name else []
    wanted += reversed(_ASKS_FOR_TOOL.findall(turn.said))
    for name in wanted:
        if name and name.lower() in offered:
            return offered[name.lower()]
    if markers.tools and turn.tools:
        return _default_tool(turn)
    return None


def _default_tool(turn: Turn, preferred: str | None = None) -> tuple[str, object]:
    """The tool to use when none is named: ``preferred`` if offered, else a shell-like tool
    (one with a ``command`` or ``cmd`` property: harmless ``echo`` calls), else the first one."""
    for name, schema in turn.tools:
        if name == preferred:
            return name, schema
    for name, schema in turn.tools:
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        if isinstance(properties, Mapping) and any(key in properties for key in _SHELL_ARGUMENTS):
            return name, schema
    return turn.tools[0]


def _tool_calls(turn: Turn, markers: Markers, seed: int) -> tuple[ToolCall, ...]:
    if markers.plan:
        return _planned_call(turn, markers.plan, seed)
    if turn.tool_results:
        return ()  # results are in: the model now answers with text
    chosen = _chosen_tool(turn, markers)
    if chosen is None and markers.failure == "truncate":
        chosen = _default_tool(turn, FALLBACK_TOOL) if turn.tools else (FALLBACK_TOOL, _WRITE_SCHEMA)
    if chosen is None:
        return ()
    name, schema = chosen
    return tuple(
        ToolCall(tool_use_id=tool_use_id(seed, i), name=name, arguments=example_arguments(schema, prompt=turn.said, index=i))
        for i in range(markers.tools or 1)
    )


def _planned_call(turn: Turn, plan: tuple[str, ...], seed: int) -> tuple[ToolCall, ...]:
    """The next step of a ``plan`` marker: one call per turn, then (plan done) none."""
    if turn.calls_made >= len(plan):
        return ()
    name, _, which = plan[turn.calls_made].partition("@")
    offered = {n.lower(): (n, schema) for n, schema in turn.tools}
    if name.lower() not in offered:
        return ()
    name, schema = offered[name.lower()]
    paths = _PATHS.findall(turn.said)
    nth = int(which) - 1 if which.isdigit() and int(which) >= 1 else 0
    # Path arguments take the first absolute path of the prompt: put the chosen one first.
    prompt = f"{paths[nth]} {turn.said}" if nth < len(paths) else turn.said
    call_id = tool_use_id(seed, turn.calls_made)
    return (ToolCall(tool_use_id=call_id, name=name, arguments=example_arguments(schema, prompt=prompt, index=0)),)


_WRITE_SCHEMA: Mapping[str, object] = {
    "type": "object",
    "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path", "content"],
}


def _reflection(turn: Turn) -> str:
    lines = []
    for result in turn.tool_results:
        quoted = " ".join(result.text.split())
        if len(quoted) > _QUOTE_LIMIT:
            quoted = quoted[: _QUOTE_LIMIT - 1] + "…"
        verb = "reported an error" if result.status == "error" else "returned"
        lines.append(f'The tool call {result.tool_use_id} {verb}: "{quoted}".')
    return " ".join(lines) + " That completes the tool round trip."


def _text_frames(turn: Turn, markers: Markers, calls: Sequence[ToolCall], rng: random.Random) -> list[str]:
    prompt = turn.said
    frames: list[str] = []
    if markers.unknown:
        frames += split_text(f"(simulator: unknown marker {', '.join(markers.unknown)}) ", rng)
    if turn.tool_results:
        frames += split_text(_reflection(turn), rng)
    elif markers.unicode:
        frames += UNICODE_FRAMES
    elif markers.long is not None:
        frames += long_frames(markers.long)
    elif calls:
        names = ", ".join(sorted({c.name for c in calls}))
        intro = f"我来调用 {names} 工具。" if has_cjk(prompt) else f"I'll use the {names} tool now."
        frames += split_text(intro, rng)
    else:
        frames += split_text(greeting(prompt, turn.model), rng)
    return frames


def _fragments(text: str, rng: random.Random) -> list[str]:
    """Cut tool input JSON into the small string fragments Kiro streams."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        size = rng.randint(1, 12)
        pieces.append(text[i : i + size])
        i += size
    return pieces or [""]


def _call_events(call: ToolCall, rng: random.Random) -> list[ToolUse]:
    raw = json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
    events = [ToolUse(tool_use_id=call.tool_use_id, name=call.name, input="", stop=False)]
    events += [ToolUse(tool_use_id=call.tool_use_id, name=call.name, input=f, stop=False) for f in _fragments(raw, rng)]
    events.append(ToolUse(tool_use_id=call.tool_use_id, name=call.name, input="", stop=True))
    return events


def _closing_events(
    turn: Turn, markers: Markers, calls: Sequence[ToolCall], output_chars: int
) -> list[UpstreamEvent]:
    window = _WINDOWS.get(turn.model, 200_000)
    # The share of the window the input took; credits grow with the output.
    percentage = 100.0 if markers.context_full else round(min(turn.input_tokens / window * 100, 100.0), 4)
    credits = round(0.01 + output_chars / 200_000, 6)
    events: list[UpstreamEvent] = [Metering(unit="credit", usage=credits), ContextUsage(percentage=percentage)]
    if markers.token_usage:
        stop = "TOOL_USE" if calls else "END_TURN"
        usage = TokenUsage(
            uncached_input_tokens=turn.input_tokens,
            output_tokens=max(1, output_chars // 4),
            cache_read_input_tokens=0,
            cache_write_input_tokens=0,
        )
        events += [MessageMetadata(token_usage=usage, stop_reason=stop), MessageStop(stop_reason=stop)]
    return events


def _reasoning_events(turn: Turn, rng: random.Random, seed: int) -> list[UpstreamEvent]:
    signature = base64.b64encode(hashlib.sha256(f"kiro2api-simulator-signature:{seed}".encode()).digest()).decode()
    pieces: list[UpstreamEvent] = [ReasoningContent(text=t) for t in split_text(reasoning_text(turn.said), rng)]
    return pieces + [ReasoningContent(text="", signature=signature)]


def _corrupt(frame: bytes) -> bytes:
    # Flip the last byte: the message CRC no longer matches (the prelude stays valid).
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def answer(body: Mapping[str, object], *, seed: int = 0, failures: bool = True) -> Reply:
    """The simulated model's answer to ``body``.

    Args:
        body: a decoded ``generateAssistantResponse`` body (validated by the caller).
        seed: varies tool-use ids and frame cuts; the same seed gives the same answer.
        failures: False ignores failure markers (a ``:once`` failure that already fired).
    """
    turn = read_turn(body)
    markers = parse_markers(turn.prompt)
    # From here on only ``turn`` is read (its strings are clean, see ``read_turn``).
    failure = markers.failure if failures else None
    if failure == "truncate" and "always" not in markers.failure_args and _ASKED_FOR_SMALLER_CALLS.search(turn.prompt):
        failure = None
    if failure in HTTP_FAILURES:
        assert failure is not None
        return ErrorReply(failure=HTTP_FAILURES[failure](markers.failure_args), scenario=failure, once=markers.once)
    rng = random.Random(seed)
    effective = markers if failures else replace(markers, failure=None, failure_args=(), once=False)
    calls = _tool_calls(turn, effective, seed)
    thinks = turn.thinking or markers.thinking or markers.reasoning
    text_events: list[UpstreamEvent] = []
    text_frames: list[str] = []
    reasoning = ""
    if thinks and markers.reasoning:
        text_events += _reasoning_events(turn, rng, seed)
        reasoning = reasoning_text(turn.said)
    elif thinks:
        text_frames += thinking_frames(turn.said, rng)
    if not (calls and _TOLD_NOT_TO_REPEAT.search(turn.prompt)):
        text_frames += _text_frames(turn, markers, calls, rng)
    text_events += [AssistantResponse(content=t) for t in text_frames]
    call_events: list[UpstreamEvent] = []
    for call in calls:
        call_events += _call_events(call, rng)
    output_chars = len(reasoning) + sum(map(len, text_frames))
    output_chars += sum(len(e.input) for e in call_events if isinstance(e, ToolUse))
    events = text_events + call_events + _closing_events(turn, markers, calls, output_chars)
    reply = StreamReply(
        chunks=(),
        events=(),
        pace_ms=markers.slow_ms,
        stall_ms=markers.stall_ms,
        stall_before=min(_FRAMES_BEFORE_FAILURE, len(text_events)),
        text="".join(text_frames),
        reasoning=reasoning,
        tool_calls=calls,
        scenario=failure,
        once=markers.once,
    )
    return _apply(reply, failure, markers.failure_args, text_events, call_events, events)


def _stream(reply: StreamReply, events: Sequence[UpstreamEvent]) -> StreamReply:
    chunks = tuple(encode_upstream_event(e) for e in events)
    return replace(reply, chunks=chunks, events=tuple(events))


def _apply(
    reply: StreamReply,
    failure: str | None,
    args: tuple[str, ...],
    text_events: list[UpstreamEvent],
    call_events: list[UpstreamEvent],
    events: list[UpstreamEvent],
) -> StreamReply:
    before = max(1, min(_FRAMES_BEFORE_FAILURE, len(text_events)))
    head = text_events[:before]
    if failure == "exception-mid-stream" or failure == "content-length-exceeded":
        if failure == "content-length-exceeded":
            kind, message = "ContentLengthExceededException", "Response content length exceeds threshold."
        else:
            kind = args[0] if args and args[0] else "InternalServerException"
            message = "Encountered an unexpected error when processing the request, please try again."
        return _stream(reply, [*head, UpstreamException(exception_type=kind, message=message)])
    if failure == "error-frame":
        code = args[0] if args and args[0] else "InternalServerException"
        return _stream(reply, [*head, UpstreamError(error_code=code, message="An internal error occurred.")])
    if failure == "truncate":
        # Kiro cuts large tool inputs: the call starts, part of its input arrives, and the body
        # simply ends (no stop, no metering, no context usage).
        if not reply.tool_calls:  # a turn answering tool results makes no call: cut the text
            return _stream(reply, text_events[: max(1, len(text_events) // 2)])
        first_id = reply.tool_calls[0].tool_use_id
        first_call = [e for e in call_events if isinstance(e, ToolUse) and e.tool_use_id == first_id]
        fragments = first_call[1:-1]
        kept = first_call[:1] + fragments[: max(1, len(fragments) // 2)]
        return _stream(reply, [*text_events, *kept])
    if failure == "bad-crc":
        intact = _stream(reply, events)
        chunks = list(intact.chunks)
        chunks[before] = _corrupt(chunks[before])
        return replace(intact, chunks=tuple(chunks), events=tuple(events[:before]))
    if failure == "drop":
        frames = [encode_upstream_event(e) for e in events[: before + 1]]
        partial = frames[-1][: len(frames[-1]) // 2]
        return replace(
            reply, chunks=(*frames[:-1], partial), events=tuple(events[:before]), ending=Ending.DROP
        )
    return _stream(reply, events)
