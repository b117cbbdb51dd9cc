"""The simulator's script (no sockets): what it answers, frame by frame, for each marker."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.simulator._arguments import DEFAULT_ECHO, echo_command, example_arguments
from adapters.simulator._markers import HTTP_FAILURES, INPUT_TOO_LONG, MARKERS, parse_markers, strip_markers
from adapters.simulator._script import (
    FALLBACK_TOOL,
    Ending,
    ErrorReply,
    StreamReply,
    answer,
    read_turn,
    tool_use_id,
)
from adapters.simulator._text import UNICODE_FRAMES, UNICODE_TEXT, has_cjk, split_text
from kiro_protocol.requests._anthropic import parse_anthropic_request
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.wire._eventstream import EventStreamDecoder, decode_all
from kiro_protocol.wire._eventstream_errors import EventStreamError
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.pool._upstream_errors import FailureClass, classify_stream_failure, classify_upstream_failure
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    ToolUse,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import parse_all, parse_message

FIXTURES = Path(__file__).parent.parent / "fixtures"
TOOL_ID = re.compile(r"^tooluse_[A-Za-z0-9_-]{22}$")
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location", "unit"],
    },
}
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
    },
}


def kiro_body(
    messages: list[dict[str, Any]] | str,
    *,
    tools: list[dict[str, Any]] | None = None,
    system: str | None = None,
    thinking: bool = False,
    model: str = "claude-sonnet-4-5",
) -> dict[str, Any]:
    """A Kiro body exactly as the gateway's converter builds it from an Anthropic request."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    raw: dict[str, Any] = {"model": model, "max_tokens": 1024, "messages": messages}
    if tools:
        raw["tools"] = tools
    if system:
        raw["system"] = system
    if thinking:
        raw["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    converted = convert_request(parse_anthropic_request(raw), config=ConversionConfig(), continuation_id="cont-1")
    body: dict[str, Any] = json.loads(converted.body("arn:aws:codewhisperer:us-east-1:1:profile/X"))
    assert lint_kiro_body(body) == []
    return body


def stream(body: dict[str, Any], seed: int = 7) -> StreamReply:
    reply = answer(body, seed=seed)
    assert isinstance(reply, StreamReply)
    return reply


def events_of(reply: StreamReply) -> list[UpstreamEvent]:
    return parse_all(b"".join(reply.chunks))


def text_of(events: list[UpstreamEvent]) -> str:
    return "".join(e.content for e in events if isinstance(e, AssistantResponse))


def tool_events(events: list[UpstreamEvent]) -> list[ToolUse]:
    return [e for e in events if isinstance(e, ToolUse)]


# -- plain answers -----------------------------------------------------------------------------


def test_plain_answer_is_many_small_frames_then_metering_and_context_usage() -> None:
    reply = stream(kiro_body("Tell me about the weather in spring"))
    events = events_of(reply)
    texts = [e for e in events if isinstance(e, AssistantResponse)]
    assert len(texts) >= 8
    assert all(1 <= len(t.content.split()) <= 4 for t in texts)
    assert text_of(events) == reply.text
    assert "Tell me about the weather in spring" in reply.text
    assert "claude-sonnet-4.5" in reply.text
    assert isinstance(events[-2], Metering) and events[-2].unit == "credit" and events[-2].usage
    assert isinstance(events[-1], ContextUsage) and 0 < events[-1].percentage < 100
    assert reply.ending is Ending.COMPLETE and reply.scenario is None and reply.pace_ms is None
    assert reply.events == tuple(events)
    assert len(reply.chunks) == len(events)  # one frame per write


def test_frames_are_what_botocore_decodes_too() -> None:
    reply = stream(kiro_body("Hello there"))
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(reply.chunks))
    decoded = list(buffer)
    assert len(decoded) == len(reply.chunks)
    assert decoded[0].headers[":event-type"] == "assistantResponseEvent"
    assert [m.payload for m in decoded] == [m.payload for m in decode_all(b"".join(reply.chunks))]


def test_same_seed_same_answer_other_seed_other_cuts() -> None:
    body = kiro_body("A fairly long question with quite a few words in it, to be cut into frames")
    assert stream(body, 1).chunks == stream(body, 1).chunks
    assert stream(body, 1).text == stream(body, 2).text
    assert stream(body, 1).chunks != stream(body, 2).chunks


def test_cjk_prompt_gets_cjk_answer_in_one_to_three_character_frames() -> None:
    events = events_of(stream(kiro_body("请介绍一下你自己")))
    texts = [e.content for e in events if isinstance(e, AssistantResponse)]
    assert has_cjk(text_of(events)) and "请介绍一下你自己" in text_of(events)
    cjk_frames = [t for t in texts if all(has_cjk(c) for c in t)]
    assert len(cjk_frames) > 10
    assert all(1 <= len(t) <= 3 for t in cjk_frames)


def test_thinking_prefix_gives_a_thinking_block_with_split_tags() -> None:
    body = kiro_body("Why is the sky blue?", thinking=True)
    assert read_turn(body).thinking
    reply = stream(body)
    texts = [e.content for e in events_of(reply) if isinstance(e, AssistantResponse)]
    assert texts[:2] == ["<thin", "king>"]
    assert reply.text.startswith("<thinking>")
    thought, _, rest = reply.text.partition("</thinking>\n\n")
    assert "Why is the sky blue?" in thought and "Why is the sky blue?" in rest
    assert "<thinking_mode>" not in reply.text  # the instruction is not quoted back


def test_no_thinking_without_the_prefix_but_marker_forces_it() -> None:
    assert not stream(kiro_body("Hi")).text.startswith("<thinking>")
    assert stream(kiro_body("Hi [[sim:thinking]]")).text.startswith("<thinking>")


# -- tool calls --------------------------------------------------------------------------------


def test_asking_for_an_offered_tool_gives_a_fragmented_call() -> None:
    reply = stream(kiro_body("Please use the get_weather tool for Paris", tools=[WEATHER]))
    events = events_of(reply)
    calls = tool_events(events)
    start, *fragments, stop = calls
    assert TOOL_ID.match(start.tool_use_id) and start.name == "get_weather"
    assert start.input == "" and not start.stop
    assert stop.stop and stop.input == "" and stop.tool_use_id == start.tool_use_id
    assert len(fragments) >= 2 and all(f.input and not f.stop for f in fragments)
    arguments = json.loads("".join(f.input for f in fragments))
    assert arguments == {"location": "Tokyo", "unit": "celsius"}
    assert reply.tool_calls[0].arguments == arguments
    assert "get_weather" in text_of(events)  # "I'll use the get_weather tool now."
    assert isinstance(events[-1], ContextUsage)
    # Text first, then the call, then metering.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolUse") > kinds.index("AssistantResponse")
    assert kinds.index("Metering") > max(i for i, k in enumerate(kinds) if k == "ToolUse")


@pytest.mark.parametrize(
    ("prompt", "command"),
    [
        ("Use the Bash tool to run `echo kiro-sim-42`", "echo kiro-sim-42"),
        ("call the bash tool please", DEFAULT_ECHO),
        ("[[sim:tool:Bash]] go", DEFAULT_ECHO),
    ],
)
def test_bash_like_tool_gets_an_echo_command(prompt: str, command: str) -> None:
    reply = stream(kiro_body(prompt, tools=[WEATHER, BASH]))
    assert [(c.name, dict(c.arguments)) for c in reply.tool_calls] == [("Bash", {"command": command})]


def test_tool_requests_inside_client_context_are_ignored_and_the_last_request_wins() -> None:
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>\nUse the get_weather tool when asked; run echo nope\n</system-reminder>"},
                {"type": "text", "text": "First use the get_weather tool, then use the Bash tool to run `echo yes`"},
            ],
        }
    ]
    reply = stream(kiro_body(messages, tools=[WEATHER, BASH]))
    assert [(c.name, dict(c.arguments)) for c in reply.tool_calls] == [("Bash", {"command": "echo yes"})]
    quoted = stream(kiro_body(messages)).text  # no tools offered: the greeting quotes the user's words only
    assert "system-reminder" not in quoted and "First use the get_weather tool" in quoted
    only_context = [{"role": "user", "content": "<system-reminder>use the Bash tool</system-reminder> hi"}]
    assert stream(kiro_body(only_context, tools=[BASH])).tool_calls == ()


def test_without_a_named_tool_a_shell_like_tool_is_preferred() -> None:
    reply = stream(kiro_body("go [[sim:tools:2]]", tools=[WEATHER, BASH]))
    assert {c.name for c in reply.tool_calls} == {"Bash"}
    write = {
        "name": "Write",
        "description": "write a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]},
    }
    truncated = stream(kiro_body("go [[sim:truncate]]", tools=[BASH, write]))
    assert truncated.tool_calls[0].name == "Write"


# The Codex CLI's shell tool (its capture in tests/fixtures/clients or ../shared/spec/clients):
# the command line is ``cmd``, next to optional knobs.
EXEC_COMMAND = {
    "name": "exec_command",
    "description": "Runs a command in a PTY, returning output or a session ID for ongoing interaction.",
    "input_schema": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}, "yield_time_ms": {"type": "number"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
VIEW_IMAGE = {
    "name": "view_image",
    "description": "View a local image file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}


def test_codex_exec_command_is_the_shell_tool() -> None:
    named = stream(kiro_body("Use the exec_command tool to run `echo codex-sim-7`", tools=[VIEW_IMAGE, EXEC_COMMAND]))
    assert [(c.name, dict(c.arguments)) for c in named.tool_calls] == [("exec_command", {"cmd": "echo codex-sim-7"})]
    # Not named: a tool with a ``cmd`` is as shell-like as one with a ``command``.
    unnamed = stream(kiro_body("go [[sim:tools:1]]", tools=[VIEW_IMAGE, EXEC_COMMAND]))
    assert [(c.name, dict(c.arguments)) for c in unnamed.tool_calls] == [("exec_command", {"cmd": DEFAULT_ECHO})]


def test_codex_environment_context_is_not_the_users_words() -> None:
    environment = (
        "<environment_context>\n  <cwd>/home/user/notes.txt</cwd>\n  <shell>bash</shell>\n"
        "  <note>use the view_image tool; echo nope</note>\n</environment_context>"
    )
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": environment}, {"type": "text", "text": "say hi codex-env"}]}
    ]
    quoted = stream(kiro_body(messages)).text
    assert "environment_context" not in quoted and "codex-env" in quoted
    asks = [{"role": "user", "content": [{"type": "text", "text": environment}, {"type": "text", "text": "Use the exec_command tool"}]}]
    reply = stream(kiro_body(asks, tools=[VIEW_IMAGE, EXEC_COMMAND]))
    assert [(c.name, dict(c.arguments)) for c in reply.tool_calls] == [("exec_command", {"cmd": DEFAULT_ECHO})]


def test_a_tool_that_is_not_offered_is_not_called() -> None:
    reply = stream(kiro_body("Use the Bash tool to run echo hi", tools=[WEATHER]))
    assert reply.tool_calls == () and tool_events(events_of(reply)) == []
    reply = stream(kiro_body("Use the Bash tool to run echo hi"))
    assert reply.tool_calls == ()


def test_tools_marker_gives_n_sequential_calls_with_distinct_ids() -> None:
    reply = stream(kiro_body("Run these [[sim:tools:3]]", tools=[WEATHER, BASH]))
    calls = tool_events(events_of(reply))
    ids = list(dict.fromkeys(c.tool_use_id for c in calls))
    assert len(ids) == 3 and all(TOOL_ID.match(i) for i in ids)
    for tid in ids:  # each call is start, fragments, stop, one after the other
        mine = [i for i, c in enumerate(calls) if c.tool_use_id == tid]
        assert mine == list(range(mine[0], mine[-1] + 1))
        assert calls[mine[-1]].stop and not calls[mine[0]].input
    commands = [c.arguments["command"] for c in reply.tool_calls]
    assert commands == [DEFAULT_ECHO, f"{DEFAULT_ECHO} 2", f"{DEFAULT_ECHO} 3"]


def test_tool_results_are_reflected_and_no_new_call_is_made() -> None:
    tid = tool_use_id(1, 0)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use the Bash tool to run echo round-trip"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "echo round-trip"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "round-trip\n"}]},
    ]
    body = kiro_body(messages, tools=[BASH])
    turn = read_turn(body)
    assert [r.text for r in turn.tool_results] == ["round-trip\n"]
    reply = stream(body)
    assert reply.tool_calls == ()
    assert f'The tool call {tid} returned: "round-trip".' in reply.text
    assert text_of(events_of(reply)) == reply.text


def test_error_tool_result_is_reported_as_an_error() -> None:
    tid = tool_use_id(1, 0)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use the Bash tool"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "x"}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tid, "content": "boom", "is_error": True}],
        },
    ]
    assert "reported an error" in stream(kiro_body(messages, tools=[BASH])).text


def test_every_claude_code_tool_gets_its_required_arguments() -> None:
    samples = json.loads((FIXTURES / "clients" / "claude-code-requests.json").read_text())["samples"]
    tools = next(s["body"]["tools"] for s in samples if s["body"] and s["body"].get("tools"))
    assert len(tools) > 5
    for tool in tools:
        schema = tool["input_schema"]
        arguments = example_arguments(schema, prompt="do it")
        assert set(arguments) == set(schema.get("required") or []), tool["name"]
        if tool["name"] == "Bash":
            assert arguments["command"] == DEFAULT_ECHO


# -- argument generation -----------------------------------------------------------------------


def test_arguments_follow_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"const": "fast"},
            "count": {"type": "integer", "minimum": 5, "maximum": 9},
            "ratio": {"type": "number", "maximum": 0.5},
            "flag": {"type": "boolean"},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "nested": {
                "type": "object",
                "properties": {"url": {"type": "string"}, "skip": {"type": "string"}},
                "required": ["url"],
            },
            "either": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "maybe": {"type": ["null", "string"], "minLength": 12},
            "level": {"type": "string", "default": "info"},
            "optional": {"type": "string"},
        },
        "required": ["mode", "count", "ratio", "flag", "when", "tags", "nested", "either", "maybe", "level"],
    }
    args = example_arguments(schema)
    assert args == {
        "mode": "fast",
        "count": 5,
        "ratio": 0.5,
        "flag": True,
        "when": "2026-01-01T00:00:00Z",
        "tags": ["example", "example"],
        "nested": {"url": "https://example.com/"},
        "either": 1,
        "maybe": "examplexxxxx",
        "level": "info",
    }


def test_arguments_by_property_name_and_odd_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {n: {"type": "string"} for n in ("file_path", "pattern", "query", "content", "city")},
        "required": ["file_path", "pattern", "query", "content", "city"],
    }
    args = example_arguments(schema, prompt="find   the  answer")
    assert args == {
        "file_path": "/tmp/kiro2api-simulator.txt",
        "pattern": "*.py",
        "query": "find the answer",
        "content": "Hello from the kiro2api simulator.",
        "city": "Tokyo",
    }
    assert example_arguments(None) == {} and example_arguments({"type": "object"}) == {}
    assert example_arguments({"type": "object", "required": ["x"], "properties": None}) == {"x": "example"}
    recursive: dict[str, Any] = {"type": "object", "required": ["child"], "properties": {}}
    recursive["properties"]["child"] = recursive
    assert json.dumps(example_arguments(recursive))  # depth-limited, serialisable


def test_echo_command_from_prompt() -> None:
    assert echo_command("please run echo 'hi'\nthanks") == "echo 'hi'"
    assert echo_command("run `echo a b c` now") == "echo a b c"
    assert echo_command("nothing", 2) == f"{DEFAULT_ECHO} 3"


# -- HTTP failure markers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "status", "failure_class"),
    [
        ("throttle", 429, FailureClass.THROTTLED),
        ("expired-token", 403, FailureClass.INVALID_TOKEN),
        ("suspended", 403, FailureClass.INVALID_TOKEN),
        ("quota", 402, FailureClass.QUOTA_EXHAUSTED),
        ("server-error", 500, FailureClass.SERVER_ERROR),
        ("server-error:503", 503, FailureClass.SERVER_ERROR),
        ("input-too-long", 400, FailureClass.INPUT_TOO_LONG),
        ("improperly-formed", 400, FailureClass.MALFORMED_REQUEST),
    ],
)
def test_http_failure_markers_answer_like_kiro(marker: str, status: int, failure_class: FailureClass) -> None:
    reply = answer(kiro_body(f"hello [[sim:{marker}]]"))
    assert isinstance(reply, ErrorReply)
    assert reply.failure.status == status and reply.scenario == marker.split(":")[0] and not reply.once
    assert classify_upstream_failure(status, reply.failure.body).failure_class is failure_class
    assert json.loads(reply.failure.body)["message"]


def test_exact_bodies() -> None:
    assert INPUT_TOO_LONG == b'{"message":"Input content length exceeds threshold.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}'
    body = answer(kiro_body("[[sim:expired-token]]"))
    assert isinstance(body, ErrorReply)
    assert json.loads(body.failure.body) == {"message": "The bearer token included in the request is invalid.", "reason": None}
    quota = answer(kiro_body("[[sim:quota]]"))
    assert isinstance(quota, ErrorReply) and json.loads(quota.failure.body)["reason"] == "MONTHLY_REQUEST_COUNT"


def test_once_and_failures_off() -> None:
    body = kiro_body("hi [[sim:throttle:once]]")
    reply = answer(body)
    assert isinstance(reply, ErrorReply) and reply.once
    normal = answer(body, failures=False)
    assert isinstance(normal, StreamReply) and normal.scenario is None and normal.text


def test_markers_are_found_in_the_last_user_text_when_the_turn_only_carries_results() -> None:
    tid = tool_use_id(1, 0)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use the Bash tool [[sim:slow:7]]"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "ok"}]},
    ]
    assert stream(kiro_body(messages, tools=[BASH])).pace_ms == 7


# -- stream failure markers ----------------------------------------------------------------------


def test_exception_mid_stream_is_text_then_an_exception_frame() -> None:
    reply = stream(kiro_body("hello there, a long enough prompt [[sim:exception-mid-stream]]"))
    events = events_of(reply)
    assert all(isinstance(e, AssistantResponse) for e in events[:-1]) and 1 <= len(events) - 1 <= 3
    last = events[-1]
    assert isinstance(last, UpstreamException) and last.exception_type == "InternalServerException"
    assert classify_stream_failure(last.exception_type, last.message).failure_class is FailureClass.SERVER_ERROR
    assert reply.scenario == "exception-mid-stream" and reply.ending is Ending.COMPLETE


def test_exception_type_argument_and_content_length_exceeded() -> None:
    last = events_of(stream(kiro_body("x [[sim:exception-mid-stream:ThrottlingException]]")))[-1]
    assert isinstance(last, UpstreamException) and last.exception_type == "ThrottlingException"
    last = events_of(stream(kiro_body("x [[sim:content-length-exceeded]]")))[-1]
    assert isinstance(last, UpstreamException) and last.exception_type == "ContentLengthExceededException"


def test_error_frame() -> None:
    events = events_of(stream(kiro_body("hello [[sim:error-frame]]")))
    assert isinstance(events[0], AssistantResponse)
    assert isinstance(events[-1], UpstreamError) and events[-1].error_code == "InternalServerException"


def test_truncate_cuts_the_tool_input_and_ends_the_body() -> None:
    reply = stream(kiro_body("use the get_weather tool [[sim:truncate]]", tools=[WEATHER]))
    events = events_of(reply)
    calls = tool_events(events)
    assert calls and not any(c.stop for c in calls)
    assert not any(isinstance(e, (Metering, ContextUsage)) for e in events)
    partial = "".join(c.input for c in calls)
    full = json.dumps(reply.tool_calls[0].arguments, separators=(",", ":"))
    assert partial and full.startswith(partial) and partial != full
    assert reply.ending is Ending.COMPLETE  # the body itself ends cleanly


def test_truncate_without_tools_cuts_a_write_call() -> None:
    reply = stream(kiro_body("hello [[sim:truncate]]"))
    calls = tool_events(events_of(reply))
    assert calls[0].name == FALLBACK_TOOL and not calls[-1].stop


def test_truncate_on_a_tool_result_turn_cuts_the_text() -> None:
    tid = tool_use_id(1, 0)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use the Bash tool [[sim:truncate]]"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "ok"}]},
    ]
    reply = stream(kiro_body(messages, tools=[BASH]))
    events = events_of(reply)
    assert reply.tool_calls == () and all(isinstance(e, AssistantResponse) for e in events)
    assert reply.text.startswith(text_of(events)) and len(text_of(events)) < len(reply.text)


def test_bad_crc_corrupts_one_frame_mid_stream() -> None:
    reply = stream(kiro_body("hello there my friend [[sim:bad-crc]]"))
    data = b"".join(reply.chunks)
    decoder = EventStreamDecoder()
    decoder.receive_data(data)
    good = []
    with pytest.raises(EventStreamError):
        while True:
            good.append(parse_message(decoder.next_event()))  # type: ignore[arg-type]
    assert good == list(reply.events) and 1 <= len(good) <= 3
    assert len(reply.chunks) > len(good) + 1  # valid frames follow the bad one


def test_drop_sends_half_a_frame_and_closes() -> None:
    reply = stream(kiro_body("hello there my friend [[sim:drop]]"))
    assert reply.ending is Ending.DROP
    decoder = EventStreamDecoder()
    decoder.receive_data(b"".join(reply.chunks))
    decoder.receive_data(b"")
    decoded = []
    with pytest.raises(EventStreamError):
        while True:
            decoded.append(parse_message(decoder.next_event()))  # type: ignore[arg-type]
    assert decoded == list(reply.events)


# -- shaping markers -------------------------------------------------------------------------------


def test_long_gives_exactly_n_text_frames() -> None:
    reply = stream(kiro_body("[[sim:long:2000]]"))
    texts = [e for e in events_of(reply) if isinstance(e, AssistantResponse)]
    assert len(texts) == 2000
    assert texts[0].content == "chunk-1 " and texts[-1].content == "chunk-2000 "


def test_reasoning_events_instead_of_tags() -> None:
    reply = stream(kiro_body("Why? [[sim:reasoning]]"))
    events = events_of(reply)
    reasoning = [e for e in events if isinstance(e, ReasoningContent)]
    assert len(reasoning) >= 3 and reasoning[-1].signature and not reasoning[-1].text
    assert "".join(r.text for r in reasoning) == reply.reasoning and "Why?" in reply.reasoning
    first_text = next(i for i, e in enumerate(events) if isinstance(e, AssistantResponse))
    assert all(isinstance(e, ReasoningContent) for e in events[:first_text])
    assert "<thinking>" not in reply.text


def test_token_usage_and_context_full() -> None:
    events = events_of(stream(kiro_body("use the Bash tool [[sim:token-usage]] [[sim:context-full]]", tools=[BASH])))
    metadata = next(e for e in events if isinstance(e, MessageMetadata))
    assert metadata.stop_reason == "TOOL_USE" and metadata.token_usage is not None
    assert (metadata.token_usage.uncached_input_tokens or 0) > 0 and (metadata.token_usage.output_tokens or 0) > 0
    assert isinstance(events[-1], MessageStop) and events[-1].stop_reason == "TOOL_USE"
    assert next(e for e in events if isinstance(e, ContextUsage)).percentage == 100.0
    plain = events_of(stream(kiro_body("hi")))
    assert not any(isinstance(e, (MessageMetadata, MessageStop)) for e in plain)


def test_stall_pauses_once_after_the_first_frames() -> None:
    reply = stream(kiro_body("a question with several words [[sim:stall:1500]]"))
    assert reply.stall_ms == 1500 and 1 <= reply.stall_before <= 3
    assert stream(kiro_body("hi")).stall_ms is None


def test_slow_sets_the_pace() -> None:
    assert stream(kiro_body("[[sim:slow:250]] hi")).pace_ms == 250
    assert stream(kiro_body("[[sim:slow:0]] hi")).pace_ms == 0


def test_unicode_splits_multibyte_text_across_frames() -> None:
    reply = stream(kiro_body("[[sim:unicode]]"))
    events = events_of(reply)
    texts = [e.content for e in events if isinstance(e, AssistantResponse)]
    assert texts == list(UNICODE_FRAMES) and text_of(events) == UNICODE_TEXT
    assert any(t.endswith("\u200d") for t in texts)  # a ZWJ sequence continues in the next frame
    assert "🇯" in texts and "\u0301" in texts


def test_lone_surrogates_in_the_body_are_replaced_in_the_answer() -> None:
    body = json.loads(json.dumps(kiro_body("hi SURROGATE", tools=[BASH])).replace("SURROGATE", "\\udc00 use the Bash tool"))
    reply = stream(body)
    assert reply.tool_calls and read_turn(body).said.startswith("hi \ufffd")
    assert events_of(reply)


def test_unknown_markers_are_reported_and_stripped_from_quotes() -> None:
    reply = stream(kiro_body("hi [[sim:nonsense:1]]"))
    assert "unknown marker [[sim:nonsense:1]]" in reply.text
    assert strip_markers("a [[sim:long:3]] b") == "a  b"


def test_marker_parsing() -> None:
    m = parse_markers("[[sim:server-error:503:once]] [[sim:throttle]] [[sim:long:5]] [[sim:tools:99999]] [[sim:slow:x]]")
    assert (m.failure, m.failure_args, m.once) == ("server-error", ("503",), True)
    assert m.long == 5 and m.tools == 64 and m.slow_ms == 200
    assert parse_markers("[[SIM:long:3]]").long is None  # the prefix is case-sensitive
    assert set(HTTP_FAILURES) < MARKERS


# -- properties ------------------------------------------------------------------------------------


@given(st.text(max_size=300), st.integers(0, 2**32))
@settings(max_examples=150)
def test_split_text_reassembles(text: str, seed: int) -> None:
    pieces = split_text(text, random.Random(seed))
    assert "".join(pieces) == text
    assert all(pieces)


@given(st.text(max_size=200), st.integers(0, 1000))
@settings(max_examples=60)
def test_any_prompt_gives_a_decodable_answer_or_a_kiro_error(prompt: str, seed: int) -> None:
    body = {
        "conversationState": {
            "currentMessage": {"userInputMessage": {"content": prompt, "modelId": "claude-sonnet-4.5"}},
        }
    }
    reply = answer(body, seed=seed)
    if isinstance(reply, ErrorReply):
        assert reply.failure.status >= 400 and json.loads(reply.failure.body)["message"]
        return
    data = b"".join(reply.chunks)
    if reply.scenario in ("bad-crc", "drop"):
        return
    events = parse_all(data)
    assert text_of(events) == reply.text or reply.scenario is not None
