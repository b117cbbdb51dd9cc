"""ResponseTracker on typed upstream events: blocks, tools, thinking, stop reasons, usage."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.pool import FailureClass
from kiro_protocol.responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    RedactedThinkingBlock,
    SignatureDelta,
    StopReason,
    StreamFailed,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
    Usage,
)
from kiro_protocol.responses._outcome import compute_usage, decide_stop_reason
from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._state import Input, MessageState, next_state
from kiro_protocol.responses._stop_sequences import StopSequenceMatcher
from kiro_protocol.responses._tracker import ResponseTracker
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
from kiro_protocol._util import NEED_DATA

MESSAGE_ID = "msg_01AbCdEfGhIjKlMnOpQrStUv"


def plan(**overrides: Any) -> ResponsePlan:
    return replace(ResponsePlan(client_model="claude-x", kiro_model_id="k", estimated_input_tokens=11), **overrides)


def drain(tracker: ResponseTracker) -> list[LifecycleEvent]:
    out: list[LifecycleEvent] = []
    while (event := tracker.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def run(*events: UpstreamEvent, end: bool = True, **overrides: Any) -> tuple[ResponseTracker, list[LifecycleEvent]]:
    tracker = ResponseTracker(plan(**overrides), message_id=MESSAGE_ID, estimate_tokens=len)
    for event in events:
        tracker.receive(event)
    if end:
        tracker.end_of_stream()
    return tracker, drain(tracker)


def text(content: str) -> AssistantResponse:
    return AssistantResponse(content=content)


def tool(tid: str, name: str = "t", input: str = "", stop: bool = False) -> ToolUse:
    return ToolUse(tool_use_id=tid, name=name, input=input, stop=stop)


def shape(events: list[LifecycleEvent]) -> list[str]:
    """Compact description: 'start0:text', 'text0:Hi', 'stop0', ..."""
    out: list[str] = []
    for e in events:
        if isinstance(e, ContentBlockStarted):
            kind = type(e.block).__name__.removesuffix("Block").lower()
            out.append(f"start{e.index}:{kind}")
        elif isinstance(e, TextDelta):
            out.append(f"text{e.index}:{e.text}")
        elif isinstance(e, ThinkingDelta):
            out.append(f"think{e.index}:{e.thinking}")
        elif isinstance(e, SignatureDelta):
            out.append(f"sig{e.index}")
        elif isinstance(e, ToolInputDelta):
            out.append(f"json{e.index}:{e.partial_json}")
        elif isinstance(e, ContentBlockStopped):
            out.append(f"stop{e.index}")
        elif isinstance(e, MessageDelta):
            out.append(f"delta:{e.stop_reason.value}")
        elif isinstance(e, MessageStopped):
            out.append("message_stop")
        elif isinstance(e, StreamFailed):
            out.append(f"failed:{e.kind.value}")
    return out


def test_message_started_first_with_client_model_and_estimate() -> None:
    tracker = ResponseTracker(plan(), message_id=MESSAGE_ID)
    first = tracker.next_event()
    assert isinstance(first, MessageStarted)
    assert first.model == "claude-x" and first.message_id == MESSAGE_ID
    assert first.usage.input_tokens == 11 and first.usage.output_tokens == 0


def test_text_blocks_open_lazily() -> None:
    _, events = run(Metering(unit="credit", usage=0.1), text(""), ContextUsage(percentage=1.0), text("Hi"))
    assert shape(events) == ["start0:text", "text0:Hi", "stop0", "delta:end_turn", "message_stop"]


def test_indexes_are_sequential_and_text_after_a_tool_reopens_a_block() -> None:
    _, events = run(
        text("a"),
        tool("tooluse_1", input="{}", stop=True),
        tool("tooluse_2", input='{"k":', stop=False),
        tool("tooluse_2", input="2}", stop=True),
        text("b"),
    )
    assert shape(events) == [
        "start0:text", "text0:a", "stop0",
        "start1:tooluse", "json1:{}", "stop1",
        "start2:tooluse", 'json2:{"k":', "json2:2}", "stop2",
        "start3:text", "text3:b", "stop3",
        "delta:tool_use", "message_stop",
    ]  # fmt: skip


def test_tool_block_carries_id_and_mapped_name() -> None:
    _, events = run(
        tool("tooluse_X", name="mcp__srv__short_1", input="{}", stop=True),
        tool_names=MappingProxyType({"mcp__srv__short_1": "mcp__server__a_very_long_tool_name"}),
    )
    start = next(e for e in events if isinstance(e, ContentBlockStarted))
    assert start.block == ToolUseBlock(id="tooluse_X", name="mcp__server__a_very_long_tool_name")


def test_repeated_start_and_events_for_closed_ids_are_ignored() -> None:
    _, events = run(
        tool("tooluse_1", name="t"),
        tool("tooluse_1", name="t"),  # a second start while open
        tool("tooluse_1", input='{"a":1}'),
        tool("tooluse_1", stop=True),
        tool("tooluse_1", input='{"a":1}'),  # after stop: retransmission or violation
        tool("tooluse_1", stop=True),
    )
    assert shape(events) == ["start0:tooluse", 'json0:{"a":1}', "stop0", "delta:tool_use", "message_stop"]


def test_next_tool_closes_the_previous_one_and_end_closes_the_last() -> None:
    _, events = run(tool("tooluse_1", input='{"a":1}'), tool("tooluse_2", input='{"b":2}'))
    assert shape(events) == [
        "start0:tooluse", 'json0:{"a":1}', "stop0",
        "start1:tooluse", 'json1:{"b":2}', "stop1",
        "delta:tool_use", "message_stop",
    ]  # fmt: skip


def test_one_shot_tool_event() -> None:
    _, events = run(tool("tooluse_1", name="ls", input='{"path":"."}', stop=True))
    assert shape(events) == ["start0:tooluse", 'json0:{"path":"."}', "stop0", "delta:tool_use", "message_stop"]


def test_tool_without_arguments_gets_an_empty_object() -> None:
    _, events = run(tool("tooluse_1", name="ls"), tool("tooluse_1", stop=True))
    assert shape(events)[:3] == ["start0:tooluse", "json0:{}", "stop0"]


@pytest.mark.parametrize("then", [None, tool("tooluse_2", input="{}", stop=True), text("x")])
def test_tool_without_arguments_and_without_stop_is_truncated(then: UpstreamEvent | None) -> None:
    events_in: list[UpstreamEvent] = [tool("tooluse_1", name="Write")] + ([then] if then else [])
    tracker, events = run(*events_in)
    assert shape(events) == ["failed:api_error"], "the client never sees part of a cut call"
    assert tracker.failure is not None and "after 0 bytes" in tracker.failure.message
    assert tracker.upstream_failure is not None
    assert tracker.upstream_failure.failure_class is FailureClass.TOOL_CALL_CUT


@pytest.mark.parametrize("fragment", ['{"a": "unterminated', "[1, 2]", '"just a string"', "{} {}"])
def test_tool_input_that_is_not_a_json_object_fails_the_response(fragment: str) -> None:
    tracker, events = run(tool("tooluse_1", name="Write", input=fragment, stop=True), text("after"))
    assert shape(events) == ["failed:api_error"]
    assert tracker.failure is not None and "'Write'" in tracker.failure.message
    assert tracker.stop_reason is None


def test_text_while_a_tool_is_open_closes_it() -> None:
    _, events = run(tool("tooluse_1", input='{"a":1}'), text("x"))
    assert shape(events)[:5] == ["start0:tooluse", 'json0:{"a":1}', "stop0", "start1:text", "text1:x"]


def test_tool_start_without_name_is_an_upstream_error() -> None:
    tracker, events = run(tool("tooluse_1", name=""))
    assert shape(events) == ["failed:api_error"]
    assert tracker.upstream_failure is not None


# -- stop reasons ------------------------------------------------------------------------------


def test_stop_sequence_cut_across_fragments() -> None:
    tracker, events = run(text("Hello wo"), text("rld, ST"), text("OP and more"), text("never"), stop_sequences=("STOP",))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello world, "
    delta = next(e for e in events if isinstance(e, MessageDelta))
    assert delta.stop_reason is StopReason.STOP_SEQUENCE and delta.stop_sequence == "STOP"
    assert tracker.finished and tracker.stop_sequence == "STOP"


def test_first_completed_stop_sequence_wins() -> None:
    tracker, _ = run(text("abc END xyz STOP"), stop_sequences=("STOP", "END"))
    assert tracker.stop_sequence == "END"
    # "b" completes before "abS" does, however the text is cut.
    for chunks in (["abS"], ["ab", "S"], ["a", "b", "S"]):
        tracker, events = run(*(text(c) for c in chunks), stop_sequences=("abS", "b"))
        assert tracker.stop_sequence == "b"
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "a"


def test_held_back_text_is_released_before_a_tool_and_at_the_end() -> None:
    _, events = run(text("ab"), tool("tooluse_1", input="{}", stop=True), text("cd"), stop_sequences=("abcdefgh",))
    assert shape(events) == [
        "start0:text", "text0:ab", "stop0",
        "start1:tooluse", "json1:{}", "stop1",
        "start2:text", "text2:cd", "stop2",
        "delta:tool_use", "message_stop",
    ]  # fmt: skip


def test_stop_sequence_never_matches_inside_thinking_or_tool_json() -> None:
    tracker, _ = run(
        text("<thinking>STOP</thinking>\n\nok"), tool("tooluse_1", input='{"a":"STOP"}'), thinking=True, stop_sequences=("STOP",)
    )
    assert tracker.stop_reason is StopReason.TOOL_USE


def test_content_length_exception_after_output_is_max_tokens() -> None:
    tracker, events = run(
        text("partial"), UpstreamException(exception_type="ContentLengthExceededException", message="cut"), text("late")
    )
    assert shape(events) == ["start0:text", "text0:partial", "stop0", "delta:max_tokens", "message_stop"]
    assert tracker.stop_reason is StopReason.MAX_TOKENS


def test_content_length_exception_inside_an_incomplete_tool_fails() -> None:
    _, events = run(
        tool("tooluse_1", name="Write", input='{"content":"abc'),
        UpstreamException(exception_type="ContentLengthExceededException", message="cut"),
    )
    assert shape(events)[-1] == "failed:api_error"


def test_upstream_max_tokens_stop_reason() -> None:
    tracker, _ = run(text("x"), MessageMetadata(stop_reason="MAX_TOKENS"))
    assert tracker.stop_reason is StopReason.MAX_TOKENS
    tracker, _ = run(text("x"), MessageStop(stop_reason="MAX_TOKENS"))
    assert tracker.stop_reason is StopReason.MAX_TOKENS


def test_a_complete_answer_longer_than_max_tokens_ends_the_turn() -> None:
    # estimate_tokens=len: the answer is ten times the client's max_tokens, all of it delivered.
    tracker, events = run(text("0123456789" * 10), max_tokens=10)
    assert tracker.stop_reason is StopReason.END_TURN
    assert shape(events)[-2:] == ["delta:end_turn", "message_stop"]
    assert tracker.usage.output_tokens == 100  # reported as it was, not clipped to max_tokens


def test_tool_use_with_output_over_max_tokens_but_not_over_a_length_cut() -> None:
    tracker, _ = run(tool("tooluse_1", input='{"a":"0123456789"}', stop=True), max_tokens=5)
    assert tracker.stop_reason is StopReason.TOOL_USE
    tracker, _ = run(
        tool("tooluse_1", input="{}", stop=True),
        UpstreamException(exception_type="ContentLengthExceededException", message=""),
    )
    assert tracker.stop_reason is StopReason.MAX_TOKENS


# -- thinking ----------------------------------------------------------------------------------


def test_thinking_tags_become_a_signed_thinking_block() -> None:
    _, events = run(text("<think"), text("ing>\nhmm</thin"), text("king>\n\nAnswer"), thinking=True)
    assert shape(events) == [
        "start0:thinking", "think0:hmm", "sig0", "stop0",
        "start1:text", "text1:Answer", "stop1",
        "delta:end_turn", "message_stop",
    ]  # fmt: skip
    sig = next(e for e in events if isinstance(e, SignatureDelta))
    assert sig.signature  # opaque but present


def test_thinking_is_closed_before_a_tool() -> None:
    _, events = run(text("<thinking>plan"), tool("tooluse_1", input="{}", stop=True), thinking=True)
    assert shape(events)[:6] == ["start0:thinking", "think0:plan", "sig0", "stop0", "start1:tooluse", "json1:{}"]


def test_reasoning_events_map_to_thinking_with_upstream_signature() -> None:
    _, events = run(
        ReasoningContent(text="step 1"),
        ReasoningContent(text=", step 2"),
        ReasoningContent(text="", signature="SIG=="),
        text("done"),
        thinking=True,
    )
    assert shape(events)[:5] == ["start0:thinking", "think0:step 1", "think0:, step 2", "sig0", "stop0"]
    assert next(e for e in events if isinstance(e, SignatureDelta)).signature == "SIG=="


def test_redacted_reasoning_is_a_complete_block() -> None:
    _, events = run(ReasoningContent(text="", redacted_content="opaque"), text("x"), thinking=True)
    assert isinstance(events[1], ContentBlockStarted) and events[1].block == RedactedThinkingBlock(data="opaque")
    assert shape(events)[1:4] == ["stop0", "start1:text", "text1:x"]


def test_reasoning_without_a_thinking_request_is_dropped() -> None:
    tracker, events = run(ReasoningContent(text="secret plan"), text("x"))
    assert not any(isinstance(e, ThinkingDelta) for e in events)
    assert "reasoningContentEvent" in tracker.ignored_events


def test_thinking_blocks_are_thinking_and_text_blocks_are_text() -> None:
    _, events = run(text("<thinking>a</thinking>\n\nb"), thinking=True)
    blocks = [e.block for e in events if isinstance(e, ContentBlockStarted)]
    assert blocks == [ThinkingBlock(), TextBlock()]


# -- failures and bookkeeping ------------------------------------------------------------------


def test_error_frame_fails_and_nothing_follows() -> None:
    tracker, events = run(text("a"), UpstreamError(error_code="ThrottlingException", message="slow down"), text("b"))
    assert shape(events) == ["start0:text", "text0:a", "failed:overloaded_error"]
    assert tracker.failure is not None and "slow down" in tracker.failure.message
    assert tracker.state is MessageState.FAILED


def test_invalid_state_is_an_invalid_request() -> None:
    tracker, events = run(InvalidState(reason="INVALID_TASK_ASSIST_PLAN", message="bad"))
    assert shape(events) == ["failed:invalid_request_error"]


def test_unknown_and_ignored_events_are_recorded_not_emitted() -> None:
    tracker, events = run(
        IgnoredUpstreamEvent(event_type="followupPromptEvent"),
        UnknownUpstreamEvent(message_type="event", event_type="brandNewEvent", payload=b"{}"),
        text("x"),
    )
    assert tracker.ignored_events == ("followupPromptEvent", "brandNewEvent")
    assert shape(events)[0] == "start0:text"


def test_fail_is_final_and_idempotent() -> None:
    tracker, _ = run(text("a"), end=False)
    tracker.fail(ErrorKind.OVERLOADED, "shutting down")
    tracker.fail(ErrorKind.API, "again")
    tracker.end_of_stream()
    tracker.receive(text("b"))
    events = drain(tracker)
    assert shape(events) == ["failed:overloaded_error"]


def test_output_tokens_are_estimated_over_whole_blocks() -> None:
    calls: list[str] = []

    def estimate(s: str) -> int:
        calls.append(s)
        return 1

    tracker = ResponseTracker(plan(), message_id=MESSAGE_ID, estimate_tokens=estimate)
    for piece in ("a", "b", "c"):
        tracker.receive(text(piece))
    tracker.receive(tool("tooluse_1", input='{"x":', stop=False))
    tracker.receive(tool("tooluse_1", input="1}", stop=True))
    tracker.end_of_stream()
    assert tracker.usage.output_tokens == 2
    assert set(calls) == {"abc", '{"x":1}'}


def test_context_percentage_times_window_for_input_tokens() -> None:
    tracker, _ = run(text("x"), ContextUsage(percentage=2.5), context_window=1_000_000)
    assert tracker.usage.input_tokens == 25_000
    assert tracker.usage.cache_read_input_tokens is None


@pytest.mark.parametrize("state", list(MessageState))
@pytest.mark.parametrize("event", list(Input))
def test_state_table_over_all_states_and_inputs(state: MessageState, event: Input) -> None:
    """Every pair is either a listed transition or an error naming both; the end is final."""
    if state is MessageState.STREAMING:
        assert next_state(state, event) is {
            Input.CONTENT: MessageState.STREAMING,
            Input.FINISH: MessageState.FINISHED,
            Input.FAIL: MessageState.FAILED,
        }[event]
    else:
        with pytest.raises(LocalProtocolError, match=f"unexpected event order: {event.name} while the message is {state.name}"):
            next_state(state, event)


def test_stop_sequence_right_after_a_cut_off_tool_fails_once() -> None:
    # Found by fuzzing: the text closes the tool (bad JSON -> failed), then the stop sequence
    # must not try to finish the failed response.
    _, events = run(tool("tooluse_a", input='{"a":'), text("><"), stop_sequences=("<",))
    assert shape(events) == ["failed:api_error"]


# -- the outcome rules as pure functions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(stop_sequence="X", length_cut=True, tool_calls=1), StopReason.STOP_SEQUENCE),
        (dict(length_cut=True, tool_calls=1), StopReason.MAX_TOKENS),
        (dict(upstream_stop_reason="MAX_TOKENS", tool_calls=1), StopReason.MAX_TOKENS),
        (dict(upstream_stop_reason="END_TURN", tool_calls=2), StopReason.TOOL_USE),
        (dict(upstream_stop_reason="END_TURN"), StopReason.END_TURN),
        (dict(upstream_stop_reason="LENGTH"), StopReason.MAX_TOKENS),
        (dict(), StopReason.END_TURN),
    ],
)
def test_decide_stop_reason(kwargs: dict[str, Any], expected: StopReason) -> None:
    args: dict[str, Any] = dict(stop_sequence=None, length_cut=False, upstream_stop_reason=None, tool_calls=0)
    args.update(kwargs)
    assert decide_stop_reason(**args) is expected


@pytest.mark.parametrize(
    ("token_usage", "pct", "expected"),
    [
        (None, None, Usage(input_tokens=7, output_tokens=3)),
        (None, 12.5, Usage(input_tokens=25_000, output_tokens=3)),
        (None, -5.0, Usage(input_tokens=0, output_tokens=3)),
        (None, float("inf"), Usage(input_tokens=7, output_tokens=3)),
        (TokenUsage(output_tokens=40), 12.5, Usage(input_tokens=25_000, output_tokens=40)),
        (
            TokenUsage(uncached_input_tokens=5, cache_read_input_tokens=9, cache_write_input_tokens=0),
            12.5,
            Usage(input_tokens=5, output_tokens=3, cache_read_input_tokens=9, cache_creation_input_tokens=0),
        ),
    ],
)
def test_compute_usage(token_usage: TokenUsage | None, pct: float | None, expected: Usage) -> None:
    usage = compute_usage(
        token_usage=token_usage,
        context_percentage=pct,
        context_window=200_000,
        estimated_input_tokens=7,
        estimated_output_tokens=3,
    )
    assert usage == expected


# -- stop sequences on their own -----------------------------------------------------------------


@given(
    text=st.text(alphabet="abST\n", max_size=40),
    sequences=st.lists(st.text(alphabet="abST\n", min_size=1, max_size=4), max_size=3),
    cuts=st.lists(st.integers(0, 40), max_size=6),
)
def test_stop_sequence_matcher_is_chunking_invariant(text: str, sequences: list[str], cuts: list[int]) -> None:
    matcher = StopSequenceMatcher(tuple(sequences))
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    out, matched = "", None
    for a, b in zip(bounds, bounds[1:]):
        piece, matched = matcher.feed(text[a:b])
        out += piece
        if matched is not None:
            break
    else:
        out += matcher.flush()
    # The first sequence to complete wins; at the same end the longer; then the first listed.
    hits = [(text.find(s) + len(s), text.find(s), i, s) for i, s in enumerate(sequences) if s in text]
    if hits:
        _, at, _, seq = min(hits)
        assert (out, matched) == (text[:at], seq)
    else:
        assert (out, matched) == (text, None)
