"""The response translator (``kiro_protocol.ResponseTranslator``): a stop sequence is reported
with the turn, a non-positive ping interval is refused, and an exception the core did not
expect leaves the translator unusable instead of carrying on in an unknown state."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import AssistantResponse, LocalProtocolError, encode_upstream_event
from kiro_protocol.requests import ResponsePlan
from kiro_protocol.responses import ResponseTranslator, StopReason

MESSAGE_ID = "msg_01AbCdEfGhIjKlMnOpQrStUv"


def plan(**extra: object) -> ResponsePlan:
    return ResponsePlan(client_model="claude-sonnet-4-5", kiro_model_id="claude-sonnet-4.5", **extra)  # type: ignore[arg-type]


def test_the_stop_sequence_that_ended_the_turn_is_reported() -> None:
    t = ResponseTranslator(plan(stream=False, stop_sequences=("STOP",)), message_id=MESSAGE_ID, now=0.0)
    before = t.stop_sequence
    t.receive_data(encode_upstream_event(AssistantResponse(content="one STOP two")))
    t.receive_data(b"")
    assert before is None
    assert (t.stop_reason, t.stop_sequence) == (StopReason.STOP_SEQUENCE, "STOP")
    final = t.final_response()
    assert final is not None and final.status == 200
    body = json.loads(final.body)
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "STOP")
    assert body["content"] == [{"type": "text", "text": "one "}]


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_the_ping_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(LocalProtocolError, match="^ping_interval must be positive$"):
        ResponseTranslator(plan(), message_id=MESSAGE_ID, now=0.0, ping_interval=interval)


def test_an_unexpected_exception_leaves_the_translator_unusable() -> None:
    t = ResponseTranslator(plan(), message_id=MESSAGE_ID, now=0.0)
    with pytest.raises(TypeError):
        t.receive_data("not bytes")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="^ResponseTranslator is unusable after an internal error: TypeError"):
        t.receive_data(b"")
