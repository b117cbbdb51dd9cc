"""Tool calls Kiro cuts off: never seen by the client, and continued when asked again."""

from __future__ import annotations

import pytest

from kiro_protocol import LocalProtocolError, RemoteProtocolError
from kiro_protocol.pool import FailureClass, PoolSettings, UpstreamFailure
from kiro_protocol.pool._failures import Verdict, judge_failure
from kiro_protocol.responses import MessageMetadata, ResponseTracker, StopReason
from tests.core.test_tracker import MESSAGE_ID, drain, plan, shape, text, tool


def tracker(resumable_cuts: int = 1) -> ResponseTracker:
    return ResponseTracker(plan(), message_id=MESSAGE_ID, estimate_tokens=len, resumable_cuts=resumable_cuts)


def test_a_tool_call_is_released_whole_when_it_closes() -> None:
    t = tracker()
    drain(t)
    t.receive(text("Writing."))
    t.receive(tool("tooluse_1", name="Write", input='{"path": "a",'))
    t.receive(tool("tooluse_1", name="Write", input=' "content": "x"}'))
    assert shape(drain(t)) == ["start0:text", "text0:Writing.", "stop0"], "nothing of the call before it is complete"
    assert t.content_started
    t.receive(tool("tooluse_1", name="Write", stop=True))
    assert shape(drain(t)) == [
        "start1:tooluse",
        'json1:{"path": "a",',
        'json1: "content": "x"}',
        "stop1",
    ]


def test_a_held_call_is_not_content_yet() -> None:
    t = tracker()
    t.receive(tool("tooluse_1", name="Write", input='{"a":'))
    assert not t.content_started, "a call the client has not seen must not open the stream"


def test_a_cut_call_waits_for_its_continuation_then_the_answer_goes_on() -> None:
    t = tracker()
    drain(t)
    t.receive(text("I will write the file."))
    t.receive(tool("tooluse_1", name="Write", input='{"path": "big.txt", "content": "aaaa'))
    t.end_of_stream()
    assert t.awaiting_continuation is not None and "'Write'" in t.awaiting_continuation
    assert not t.finished and t.failure is None
    assert shape(drain(t)) == ["start0:text", "text0:I will write the file.", "stop0"]
    t.receive(text("ignored: the cut answer is over"))
    assert shape(drain(t)) == []

    t.continue_answer()
    assert t.awaiting_continuation is None
    t.receive(text("In parts, then."))
    t.receive(tool("tooluse_2", name="Write", input='{"path": "big.txt", "content": "a"}', stop=True))
    t.receive(MessageMetadata(stop_reason="TOOL_USE"))
    t.end_of_stream()
    assert shape(drain(t)) == [
        "start1:text",
        "text1:In parts, then.",
        "stop1",
        "start2:tooluse",
        'json2:{"path": "big.txt", "content": "a"}',
        "stop2",
        "delta:tool_use",
        "message_stop",
    ]
    assert t.stop_reason is StopReason.TOOL_USE and t.failure is None


def test_a_second_cut_fails_the_response_as_a_cut_not_an_account_failure() -> None:
    t = tracker(resumable_cuts=1)
    t.receive(tool("tooluse_1", name="Write", input='{"content": "a'))
    t.end_of_stream()
    t.continue_answer()
    t.receive(tool("tooluse_2", name="Write", input='{"content": "b'))
    t.end_of_stream()
    events = shape(drain(t))
    assert events[-1] == "failed:api_error" and not any(e.startswith("start") for e in events[1:])
    assert t.upstream_failure is not None and t.upstream_failure.failure_class is FailureClass.TOOL_CALL_CUT
    assert "'Write'" in t.upstream_failure.message


def test_continue_without_a_cut_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        tracker().continue_answer()


def test_the_pool_answers_a_cut_without_marking_the_account() -> None:
    failure = UpstreamFailure(
        failure_class=FailureClass.TOOL_CALL_CUT,
        status=200,
        message="Kiro cut off the tool call 'Write'",
        reason=None,
        client_error=LocalProtocolError("cut"),
    )
    verdict = judge_failure(failure, sent_token="t", auth_retried=False, now=0.0, jitter=0.5, settings=PoolSettings())
    assert verdict.verdict is Verdict.RESPOND and verdict.update is None
    assert dict(verdict.counters) == {"tool_calls_cut": 1.0}
