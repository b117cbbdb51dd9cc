"""Fuzz targets for the Responses API encoders behind the response translator (invariants in
fuzz/README.md, "Responses API answers").

Same inputs as ``test_fuzz_translator`` (mutated upstream vectors, raw bytes, arbitrary event
orders, random plans), rendered for ``/v1/responses`` and held to ``tests/responses_checker.py``.
"""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from fuzz.test_fuzz_translator import ANY_EVENT, MESSAGE_ID, PLANS, mutated_seed
from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._responses_api import responses_encoder
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import UpstreamEvent
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from tests.responses_checker import check_responses_error, check_responses_object, check_responses_stream

RESPONSE_ID = "resp_" + "F" * 24


def _translate(plan: ResponsePlan, data: bytes, cuts: list[int], times: list[float]) -> tuple[ResponseTranslator, bytes]:
    encoder = responses_encoder(plan, response_id=RESPONSE_ID, created_at=0)
    translator = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder, ping_interval=10.0)
    out = bytearray(translator.data_to_send())
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if b > a:
            translator.receive_data(data[a:b])
        if i < len(times):
            translator.tick(sum(times[: i + 1]))
        out += translator.data_to_send()
    translator.receive_data(b"")
    out += translator.data_to_send()
    assert translator.finished
    return translator, bytes(out)


def _run(plan: ResponsePlan, data: bytes, cuts: list[int], times: list[float]) -> None:
    streamed, sse = _translate(dataclasses.replace(plan, stream=True), data, cuts, times)
    transcript = check_responses_stream(sse)
    assert transcript.success != streamed.failed
    plain, body = _translate(dataclasses.replace(plan, stream=False), data, cuts, [])
    response = plain.final_response()
    assert response is not None and plain.failed == streamed.failed
    if response.status == 200:
        assert body == response.body
        # The stream's last response object is the body: one answer, two shapes.
        assert check_responses_object(body) == transcript.response
    else:
        assert body == b"" and transcript.error is not None
        error = check_responses_error(json.loads(response.body))
        assert error["code"] == transcript.error["code"] and error["message"] == transcript.error["message"]


@given(plan=PLANS, data=st.one_of(mutated_seed(), st.binary(max_size=300)), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_any_upstream_bytes_give_a_well_formed_responses_answer(plan: ResponsePlan, data: bytes, cuts: list[int]) -> None:
    _run(plan, data, cuts, [])


@given(
    plan=PLANS,
    events=st.lists(ANY_EVENT, max_size=12),
    cuts=st.lists(st.integers(0, 5000), max_size=4),
    times=st.lists(st.floats(0, 100), max_size=3),
)
def test_any_upstream_event_sequence_gives_a_well_formed_responses_answer(
    plan: ResponsePlan, events: list[UpstreamEvent], cuts: list[int], times: list[float]
) -> None:
    """Whatever lifecycle sequence the tracker makes of arbitrary, often invalid, event orders
    encodes to a grammatical stream and the same response object."""
    _run(plan, b"".join(encode_upstream_event(e) for e in events), cuts, times)
