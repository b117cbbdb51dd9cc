"""ModelCall: the commit point, stream outcomes, buffering and forced endings, driven by hand.

Each test plays the runtime's part with no IO: it answers the pool's decisions from a dict of
account states, feeds scripted upstream answers, and collects the client output.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiro_protocol import (
    Dialect,
    Done,
    ErrorKind,
    LoadState,
    LocalProtocolError,
    ModelCall,
    Persist,
    PoolSettings,
    Retry,
    SendUpstream,
    StartStream,
    parse_accounts,
)
from kiro_protocol.responses import AssistantResponse, ContextUsage, ToolUse, UpstreamException, encode_upstream_event
from tests.core import call_driver as driver
from tests.core.call_driver import FRESH, T0, Run

ACCOUNTS = parse_accounts(json.dumps([{"auth": "Social", "refreshToken": f"aor-{i}" + "x" * 40} for i in range(2)]))


def call_for(body: dict[str, object], *, dialect: Dialect = Dialect.ANTHROPIC, buffered: bool = False) -> ModelCall:
    return driver.call_for(body, accounts=ACCOUNTS, dialect=dialect, buffered=buffered)


def drive(call: ModelCall, upstream: list[driver.Scripted], **options: Any) -> Run:
    return driver.drive(call, upstream, chunk=7, step=1.0, **options)  # small chunks: frames split anywhere


def counters(run: Run) -> dict[str, float]:
    return run.counters()


def anthropic(stream: bool = True) -> dict[str, object]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def frames(*events: object) -> bytes:
    return b"".join(encode_upstream_event(e) for e in events)  # type: ignore[arg-type]


TEXT = frames(AssistantResponse(content="Hello"), ContextUsage(percentage=1.0))
EXCEPTION = frames(UpstreamException(exception_type="ThrottlingException", message="slow down"))


def test_a_stream_commits_with_its_first_content_and_ends_once() -> None:
    call = call_for(anthropic())
    run = drive(call, [(200, TEXT)])
    assert run.answer is None and run.sent == [ACCOUNTS[0].account_id]
    heads = [o.head for o in run.outputs if o.head is not None]
    assert len(heads) == 1 and heads[0][0] == 200
    assert ("content-type", "text/event-stream; charset=utf-8") in heads[0][1]
    assert run.outputs[0].head is not None, "the head goes out with the first bytes"
    assert [o.end for o in run.outputs].count(True) == 1 and run.outputs[-1].end
    text = run.body.decode()
    assert text.startswith("event: message_start") and text.rstrip().endswith('data: {"type":"message_stop"}')
    assert '"text":"Hello"' in text
    assert call.committed and call.error is None and call.usage.output_tokens > 0
    assert counters(run)["requests"] == 1 and counters(run)["output_tokens"] == call.usage.output_tokens


def test_nothing_is_released_before_the_commit_point() -> None:
    call = call_for(anthropic())
    assert call.next_decision(T0) == LoadState(account_ids=tuple(a.account_id for a in ACCOUNTS))
    call.state_loaded({a.account_id: FRESH for a in ACCOUNTS}, T0)
    assert isinstance(call.next_decision(T0), SendUpstream)
    call.upstream_started(T0, 0.0)
    while not isinstance(call.next_decision(T0), StartStream):
        pass
    assert call.take_output() is None and not call.output_due, "message_start alone is held back"
    call.tick(14.9)
    assert call.take_output() is None
    call.tick(15.0)  # PING_INTERVAL passed with no content: the stream opens to keep the client
    out = call.take_output()
    assert out is not None and out.head is not None and out.data.startswith(b"event: message_start")
    assert not call.output_due


def test_a_failure_before_the_commit_point_moves_to_another_account() -> None:
    call = call_for(anthropic())
    run = drive(call, [(200, EXCEPTION), (200, TEXT)])
    assert run.sent == [ACCOUNTS[0].account_id, ACCOUNTS[1].account_id]
    assert len(run.retries) == 1 and run.retries[0].account == ACCOUNTS[0]
    assert run.answer is None
    text = run.body.decode()
    assert text.count("event: message_start") == 1, "the failed attempt left no byte"
    assert "ThrottlingException" not in text and '"text":"Hello"' in text


def test_a_failure_after_content_is_an_error_event_not_a_retry() -> None:
    call = call_for(anthropic())
    run = drive(call, [(200, TEXT[: len(encode_upstream_event(AssistantResponse(content="Hello")))] + EXCEPTION)])
    assert run.sent == [ACCOUNTS[0].account_id] and run.retries == []
    text = run.body.decode()
    assert '"text":"Hello"' in text and "event: error" in text and run.outputs[-1].end
    assert call.error is not None and counters(run).get("failures") == 1


def test_an_upstream_error_status_is_answered_in_the_clients_dialect() -> None:
    bad = json.dumps({"message": "Improperly formed request.", "reason": None}).encode()
    for dialect, body in ((Dialect.ANTHROPIC, anthropic()), (Dialect.OPENAI, {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "stream": True})):
        call = call_for(body, dialect=dialect)
        run = drive(call, [(400, bad)])
        assert run.answer is not None and run.answer.reply.status == 400 and run.outputs == []
        error = json.loads(run.answer.reply.body)
        if dialect is Dialect.ANTHROPIC:
            assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        else:
            assert error["error"]["type"] == "invalid_request_error" and "type" not in error
        assert run.answer.reply.error is ErrorKind.INVALID_REQUEST and call.error == "invalid_request_error"


def test_a_non_streaming_answer_is_one_complete_response() -> None:
    call = call_for(anthropic(stream=False))
    run = drive(call, [(200, TEXT)])
    assert run.outputs == [] and run.answer is not None and run.answer.reply.status == 200
    message = json.loads(run.answer.reply.body)
    assert message["type"] == "message" and message["content"] == [{"type": "text", "text": "Hello"}]
    assert run.answer.reply.error is None and call.committed


def test_disable_stream_holds_everything_until_the_end() -> None:
    call = call_for(anthropic(), buffered=True)
    seen: list[bool] = []
    run = drive(call, [(200, TEXT)], mid_stream=lambda c: seen.append(c.output_due))
    assert not any(seen[:-1]), "nothing is due while the answer runs"
    assert len(run.outputs) == 1 and run.outputs[0].head is not None and run.outputs[0].end
    assert '"text":"Hello"' in run.body.decode()


def test_disable_stream_retries_a_failure_even_after_content() -> None:
    first = encode_upstream_event(AssistantResponse(content="Hel")) + EXCEPTION
    run = drive(call_for(anthropic(), buffered=True), [(200, first), (200, TEXT)])
    assert len(run.retries) == 1 and len(run.outputs) == 1 and "Hel\"" not in run.body.decode()


def test_shutdown_past_the_commit_point_ends_the_stream_with_an_error_event() -> None:
    call = call_for(anthropic())

    def shut(c: ModelCall) -> None:
        if c.output_due or c.committed:
            c.shutdown(1.5)

    run = drive(call, [(200, TEXT)], mid_stream=shut)
    text = run.body.decode()
    assert "event: error" in text and "shutting down" in text and run.outputs[-1].end
    assert run.answer is None and call.error == "shutdown"
    assert "failures" not in counters(run), "a shutdown is no fault of the account"


def test_shutdown_before_the_commit_point_answers_529() -> None:
    call = call_for(anthropic())
    run = drive(call, [(200, TEXT)], mid_stream=lambda c: c.shutdown(1.5))
    assert run.outputs == [] and run.answer is not None and run.answer.reply.status == 529
    assert json.loads(run.answer.reply.body)["error"]["type"] == "overloaded_error"
    assert counters(run)["requests"] == 1, "the upstream call is still accounted"
    assert call.error == "shutdown" and "failures" not in counters(run)


def test_a_client_that_left_still_has_its_usage_recorded() -> None:
    call = call_for(anthropic())
    call.state_loaded({a.account_id: FRESH for a in ACCOUNTS}, T0) if isinstance(call.next_decision(T0), LoadState) else None
    assert isinstance(call.next_decision(T0), SendUpstream)
    call.upstream_started(T0, 0.0)
    while not isinstance(call.next_decision(T0), StartStream):
        pass
    call.receive_data(encode_upstream_event(AssistantResponse(content="Hel")), 1.0)
    assert call.take_output() is not None
    call.client_gone()
    assert not call.reading
    assert call.error == "client_left", "the access line says the client left, not a plain 200"
    stopped = call_for(anthropic())
    stopped.client_gone(shutting_down=True)
    assert stopped.error == "shutdown", "cut by the server's shutdown, not by the client"
    decisions = []
    while not isinstance(d := call.next_decision(T0 + 5), Done):
        decisions.append(d)
    persisted = [c for d in decisions if isinstance(d, Persist) for c in d.counters]
    assert ("output_tokens", call.usage.output_tokens) in persisted and call.usage.output_tokens > 0


def test_upstream_data_outside_a_stream_is_a_local_error() -> None:
    call = call_for(anthropic())
    with pytest.raises(LocalProtocolError):
        call.receive_data(b"x", 0.0)


def test_a_bad_body_is_refused_before_any_decision() -> None:
    with pytest.raises(LocalProtocolError) as info:
        call_for({"model": "claude-sonnet-4-5", "messages": "nope", "max_tokens": 1})
    assert info.value.status_hint == 400


def test_an_account_check_never_waits() -> None:
    # The pool driver feeds ``waited`` to whichever machine asked to wait; a background check
    # never asks, so a feed is a driver bug, said as one.
    from kiro_protocol import AccountCheck

    check = AccountCheck(account=ACCOUNTS[0], settings=PoolSettings(), new_id=lambda: "id", random=lambda: 0.5)
    with pytest.raises(LocalProtocolError, match="waited"):
        check.waited(T0)



# -- tool calls Kiro cuts off -------------------------------------------------------------------

BASH_TOOL = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
CUT_CALL = frames(ToolUse(tool_use_id="tooluse_cut", name="Bash", input='{"command": "echo aaaa', stop=False))
WHOLE_CALL = frames(
    AssistantResponse(content="In parts."),
    ToolUse(tool_use_id="tooluse_ok", name="Bash", input='{"command": "echo a"}', stop=False),
    ToolUse(tool_use_id="tooluse_ok", name="Bash", input="", stop=True),
    ContextUsage(percentage=1.0),
)


def with_tools(stream: bool = True) -> dict[str, object]:
    return {**anthropic(stream), "tools": [BASH_TOOL]}


def recovery_counters(run: Run) -> list[tuple[str, float]]:
    return [c for p in run.persists for c in p.counters if c[0] in ("tool_call_recoveries", "tool_calls_cut", "failures")]


def test_a_cut_call_before_the_commit_point_is_asked_again_unseen() -> None:
    call = call_for(with_tools())
    run = drive(call, [(200, CUT_CALL), (200, WHOLE_CALL)])
    text = run.body.decode()
    assert len(run.sent) == 2 and call.recoveries == 1 and call.error is None
    assert "tooluse_cut" not in text and '"id":"tooluse_ok"' in text and '"index":1' in text
    assert text.count("event: message_start") == 1 and run.outputs[-1].end
    assert '"stop_reason":"tool_use"' in text
    assert recovery_counters(run) == [("tool_call_recoveries", 1.0)]
    assert len(run.retries) == 1 and "asking Kiro again for smaller calls" in run.retries[0].reason


def test_text_already_released_stays_and_the_continuation_follows_it() -> None:
    first = frames(AssistantResponse(content="Writing it now.")) + CUT_CALL
    call = call_for(with_tools())
    run = drive(call, [(200, first), (200, WHOLE_CALL)])
    text = run.body.decode()
    assert text.index("Writing it now.") < text.index("In parts.") < text.index("tooluse_ok")
    assert [o.head is not None for o in run.outputs].count(True) == 1
    assert '"index":2,"content_block":{"type":"tool_use"' in text, "the dropped call's index is reused"


def test_the_instruction_goes_into_the_second_upstream_body_only() -> None:
    call = call_for(with_tools())
    bodies: list[bytes] = []
    now = T0
    answers = [CUT_CALL, WHOLE_CALL]
    while not isinstance(d := call.next_decision(now), Done):
        if isinstance(d, LoadState):
            call.state_loaded({a: FRESH for a in d.account_ids}, now)
        elif isinstance(d, SendUpstream):
            bodies.append(d.request.body)
            call.upstream_started(now, 0.0)
        elif isinstance(d, StartStream):
            call.receive_data(answers.pop(0), 1.0)
            call.receive_data(b"", 1.0) if call.reading else None
            while call.take_output() is not None:
                pass
    assert len(bodies) == 2
    assert b"cut off in the middle of a tool call" not in bodies[0]
    assert b"cut off in the middle of a tool call" in bodies[1]


def test_a_second_cut_is_the_clear_error_and_no_fault_of_the_account() -> None:
    call = call_for(with_tools())
    run = drive(call, [(200, frames(AssistantResponse(content="Hi.")) + CUT_CALL), (200, CUT_CALL)])
    text = run.body.decode()
    assert "event: error" in text and "Kiro cut off the tool call 'Bash'" in text and run.outputs[-1].end
    assert "tooluse_cut" not in text.split("event: error")[0]
    assert call.error == "tool_call_cut"
    assert ("failures", 1.0) not in recovery_counters(run)


def test_a_second_cut_before_any_byte_is_a_502() -> None:
    run = drive(call_for(with_tools(stream=False)), [(200, CUT_CALL), (200, CUT_CALL)])
    assert run.answer is not None and run.answer.reply.status == 502
    assert "Kiro cut off the tool call" in json.loads(run.answer.reply.body)["error"]["message"]
    assert ("tool_calls_cut", 1.0) in recovery_counters(run)


def test_a_continuation_refused_upstream_ends_the_started_stream_with_its_error() -> None:
    refused = json.dumps({"message": "Improperly formed request.", "reason": None}).encode()
    run = drive(call_for(with_tools()), [(200, frames(AssistantResponse(content="Hi.")) + CUT_CALL), (400, refused)])
    text = run.body.decode()
    assert run.answer is None and "Hi." in text and "event: error" in text and run.outputs[-1].end
    assert [o.end for o in run.outputs].count(True) == 1


def test_a_non_streamed_answer_is_recovered_into_one_body() -> None:
    run = drive(call_for(with_tools(stream=False)), [(200, CUT_CALL), (200, WHOLE_CALL)])
    assert run.answer is not None and run.answer.reply.status == 200
    content = json.loads(run.answer.reply.body)["content"]
    assert [b["type"] for b in content] == ["text", "tool_use"] and content[1]["input"] == {"command": "echo a"}


def test_the_note_quotes_the_text_already_shown_so_it_is_not_said_twice() -> None:
    call = call_for(with_tools())
    run = drive(call, [(200, frames(AssistantResponse(content="Writing it now.")) + CUT_CALL), (200, WHOLE_CALL)])
    second = run.sends[1].request.body.decode()
    assert "cut off in the middle of a tool call" in second
    assert 'already seen the beginning of that answer: \\"Writing it now.\\"' in second
    first_only = drive(call_for(with_tools()), [(200, CUT_CALL), (200, WHOLE_CALL)]).sends[1].request.body.decode()
    assert "already seen" not in first_only, "nothing was shown: nothing to quote"
