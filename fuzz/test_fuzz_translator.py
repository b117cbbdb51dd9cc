"""Fuzz targets for the response translator (invariants in fuzz/README.md, "Response translator").

Seeds: tests/fixtures/responses/upstream/*.bin (real captures, synthetic and negative vectors).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    InvalidState,
    MessageMetadata,
    MessageStop,
    ReasoningContent,
    TokenUsage,
    ToolUse,
    UnknownUpstreamEvent,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from tests.sse_checker import check_anthropic_message, check_anthropic_stream

SEEDS = [p.read_bytes() for p in sorted((Path(__file__).parents[1] / "tests" / "fixtures" / "responses" / "upstream").glob("*.bin"))]
MESSAGE_ID = "msg_" + "F" * 24

PLANS = st.builds(
    ResponsePlan,
    client_model=st.just("claude-fuzz"),
    kiro_model_id=st.just("k"),
    thinking=st.booleans(),
    stream=st.booleans(),
    max_tokens=st.integers(1, 200),
    stop_sequences=st.lists(st.sampled_from(["STOP", "\n\n", "}", "<", "a"]), max_size=2).map(tuple),
    tool_names=st.just(MappingProxyType({"t": "mapped_tool"})),
    estimated_input_tokens=st.integers(0, 1000),
)


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """A seed stream with a few byte flips, deletions, insertions or a truncation."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[at:]
    return bytes(data)


TEXT = st.text(alphabet=st.sampled_from(list("<thinking>/ \n`\"STOP{}é")), max_size=20)
IDS = st.sampled_from(["tooluse_a", "tooluse_b", "tooluse_c", ""])
ANY_EVENT: st.SearchStrategy[UpstreamEvent] = st.one_of(
    TEXT.map(lambda t: AssistantResponse(content=t)),
    st.builds(
        ToolUse,
        tool_use_id=IDS,
        name=st.sampled_from(["t", "Write", ""]),
        input=st.one_of(st.just(""), st.sampled_from(['{"a":', "1}", "{}", "[", '"x"', "}"]), TEXT),
        stop=st.booleans(),
    ),
    st.builds(ReasoningContent, text=TEXT, signature=st.none() | st.just("sig"), redacted_content=st.none() | st.just("r")),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=1e6).map(lambda p: ContextUsage(percentage=p)),
    st.builds(
        MessageMetadata,
        token_usage=st.none() | st.builds(TokenUsage, output_tokens=st.none() | st.integers(0, 10**6)),
        stop_reason=st.none() | st.sampled_from(["END_TURN", "MAX_TOKENS", "TOOL_USE"]),
    ),
    st.builds(MessageStop, stop_reason=st.none() | st.just("MAX_TOKENS")),
    st.builds(UpstreamException, exception_type=st.sampled_from(["ContentLengthExceededException", "ThrottlingException", "X"]), message=TEXT),
    st.builds(UpstreamError, error_code=st.sampled_from(["InternalServerException", ""]), message=TEXT),
    st.builds(InvalidState, reason=st.just("R"), message=TEXT),
    st.builds(UnknownUpstreamEvent, message_type=st.just("event"), event_type=st.just("newEvent"), payload=st.just(b"{}")),
)


def _check_output(translator: ResponseTranslator, out: bytes) -> None:
    assert translator.finished
    if translator.streaming:
        transcript = check_anthropic_stream(out)
        assert transcript.success != translator.failed
    else:
        response = translator.final_response()
        assert response is not None
        if response.status == 200:
            assert out == response.body and not translator.failed
            check_anthropic_message(response.body)
        else:
            assert out == b"" and translator.failed
            assert json.loads(response.body)["type"] == "error"


@given(
    plan=PLANS,
    data=st.one_of(mutated_seed(), st.binary(max_size=300)),
    cuts=st.lists(st.integers(0, 5000), max_size=6),
)
def test_any_upstream_bytes_give_a_well_formed_response(plan: ResponsePlan, data: bytes, cuts: list[int]) -> None:
    translator = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0)
    out = bytearray(translator.data_to_send())
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            translator.receive_data(data[a:b])
            out += translator.data_to_send()
    translator.receive_data(b"")
    out += translator.data_to_send()
    _check_output(translator, bytes(out))


@given(plan=PLANS, events=st.lists(ANY_EVENT, max_size=12), times=st.lists(st.floats(0, 100), max_size=3))
def test_any_upstream_event_sequence_gives_a_well_formed_response(
    plan: ResponsePlan, events: list[UpstreamEvent], times: list[float]
) -> None:
    """Arbitrary, often invalid, event orders (fragments after stop, nameless tools, bad JSON,
    failures mid-tool) still give a complete, strictly valid response."""
    data = b"".join(encode_upstream_event(e) for e in events)
    translator = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, ping_interval=10.0)
    out = bytearray(translator.data_to_send())
    for i, frame_end in enumerate(range(0, len(data), max(1, len(data) // 3 or 1))):
        translator.receive_data(data[frame_end : frame_end + max(1, len(data) // 3 or 1)])
        if i < len(times):
            translator.tick(sum(times[: i + 1]))
        out += translator.data_to_send()
    translator.receive_data(b"")
    out += translator.data_to_send()
    _check_output(translator, bytes(out))
