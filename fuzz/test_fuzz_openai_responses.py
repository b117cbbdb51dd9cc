"""Fuzz targets for the OpenAI encoders behind the response translator (invariants in
fuzz/README.md, "OpenAI requests and responses").

Same inputs as ``test_fuzz_translator`` (mutated upstream vectors, raw bytes, arbitrary event
orders, random plans), rendered in the OpenAI dialect and held to ``tests/openai_checker.py``.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fuzz.test_fuzz_translator import ANY_EVENT, MESSAGE_ID, PLANS, mutated_seed
from kiro_protocol.responses._openai import DONE, openai_encoder
from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import UpstreamEvent
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from tests.openai_checker import check_openai_completion, check_openai_error, check_openai_stream

COMPLETION_ID = "chatcmpl-" + "F" * 24


def _run(plan: ResponsePlan, data: bytes, cuts: list[int], include_usage: bool, times: list[float]) -> None:
    encoder = openai_encoder(plan, completion_id=COMPLETION_ID, created=0, include_usage=include_usage)
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
    if translator.streaming:
        transcript = check_openai_stream(bytes(out), include_usage=include_usage)
        assert transcript.success != translator.failed
        assert bytes(out).endswith(DONE) != translator.failed
    else:
        response = translator.final_response()
        assert response is not None
        if response.status == 200:
            assert bytes(out) == response.body and not translator.failed
            check_openai_completion(response.body)
        else:
            assert out == b"" and translator.failed
            check_openai_error(json.loads(response.body))


@given(
    plan=PLANS,
    data=st.one_of(mutated_seed(), st.binary(max_size=300)),
    cuts=st.lists(st.integers(0, 5000), max_size=6),
    include_usage=st.booleans(),
)
def test_any_upstream_bytes_give_a_well_formed_openai_response(
    plan: ResponsePlan, data: bytes, cuts: list[int], include_usage: bool
) -> None:
    _run(plan, data, cuts, include_usage, [])


@given(
    plan=PLANS,
    events=st.lists(ANY_EVENT, max_size=12),
    cuts=st.lists(st.integers(0, 5000), max_size=4),
    include_usage=st.booleans(),
    times=st.lists(st.floats(0, 100), max_size=3),
)
def test_any_upstream_event_sequence_gives_a_well_formed_openai_response(
    plan: ResponsePlan, events: list[UpstreamEvent], cuts: list[int], include_usage: bool, times: list[float]
) -> None:
    """Arbitrary, often invalid, event orders still give a strictly valid OpenAI response."""
    _run(plan, b"".join(encode_upstream_event(e) for e in events), cuts, include_usage, times)
