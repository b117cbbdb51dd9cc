"""The response tracker (``kiro_protocol.responses.ResponseTracker``) where a stop sequence, a
tool call or a failure meets text that is still held back."""

from __future__ import annotations

from kiro_protocol._util import NEED_DATA
from kiro_protocol import ErrorKind
from kiro_protocol.requests import ResponsePlan
from kiro_protocol.responses import StopReason
from kiro_protocol.responses import (
    AssistantResponse,
    ContentBlockStarted,
    LifecycleEvent,
    MessageDelta,
    ResponseTracker,
    StreamFailed,
    TextBlock,
    TextDelta,
    ToolInputDelta,
    ToolUse,
    ToolUseBlock,
    Usage,
)

MESSAGE_ID = "msg_01AbCdEfGhIjKlMnOpQrStUv"


def tracker(**plan: object) -> ResponseTracker:
    base = ResponsePlan(client_model="claude-x", kiro_model_id="k", estimated_input_tokens=11, **plan)  # type: ignore[arg-type]
    return ResponseTracker(base, message_id=MESSAGE_ID, estimate_tokens=len)


def drain(t: ResponseTracker) -> list[LifecycleEvent]:
    out: list[LifecycleEvent] = []
    # NEED_DATA (no public name: the sentinel of kiro_protocol._util) ends the run.
    while (event := t.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def blocks(events: list[LifecycleEvent]) -> list[tuple[object, str]]:
    """(block, its joined text or tool input) per content block, in order."""
    out: list[tuple[object, str]] = []
    for e in events:
        if isinstance(e, ContentBlockStarted):
            out.append((e.block, ""))
        elif isinstance(e, (TextDelta, ToolInputDelta)):
            block, content = out[e.index]
            out[e.index] = (block, content + (e.text if isinstance(e, TextDelta) else e.partial_json))
    return out


def test_a_stop_sequence_ends_the_turn_before_the_thinking_that_follows_in_one_fragment() -> None:
    t = tracker(thinking=True, stop_sequences=("STOP",))
    t.receive(AssistantResponse(content="a STOP b<thinking>\nr</thinking>\n\nc"))
    t.end_of_stream()
    events = drain(t)
    assert blocks(events) == [(TextBlock(), "a ")]
    (delta,) = [e for e in events if isinstance(e, MessageDelta)]
    assert (delta.stop_reason, delta.stop_sequence) == (StopReason.STOP_SEQUENCE, "STOP")


def test_text_held_back_for_a_stop_sequence_lands_before_a_tool_call() -> None:
    t = tracker(stop_sequences=("STOP",))
    t.receive(AssistantResponse(content="abc ST"))  # "ST" could still become "STOP"
    t.receive(ToolUse(name="f", tool_use_id="t1", input='{"a":1}', stop=True))
    t.end_of_stream()
    events = drain(t)
    assert blocks(events) == [(TextBlock(), "abc ST"), (ToolUseBlock(id="t1", name="f"), '{"a":1}')]
    assert t.stop_reason is StopReason.TOOL_USE


def test_a_failure_mid_block_counts_the_open_block_in_the_output_estimate() -> None:
    t = tracker()
    t.receive(AssistantResponse(content="hello"))
    t.fail(ErrorKind.API, "cut")
    events = drain(t)
    assert events[-1] == StreamFailed(kind=ErrorKind.API, message="cut")
    assert t.usage == Usage(input_tokens=11, output_tokens=len("hello"))
