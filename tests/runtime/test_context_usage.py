"""Usage a client can trust (issue 14 item 5): the input tokens ``message_start`` announces (the
gateway's estimate) and those ``message_delta`` reports (from the simulator's
``contextUsagePercentage``, standing in for Kiro's) agree within 15 %, streamed or not.

The requests: the conversion captures (tests/fixtures/conversion, copied from the spec vectors),
the requests of the estimator vectors, and every Claude Code request in the client captures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator import _script
from adapters.simulator._context import context_tokens
from adapters.simulator._script import StreamReply, answer
from kiro_protocol import ConversionConfig, parse_anthropic_request
from kiro_protocol.requests import convert_request
from kiro_protocol.responses import ResponseTranslator
from kiro_protocol.requests._conversion import KiroRequest
from tests.sse_checker import check_anthropic_stream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _bodies() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((FIXTURES / "conversion").glob("conv*.request.json")):
        out[path.name.split(".")[0]] = json.loads(path.read_text())
    vectors = json.loads((FIXTURES / "conversion" / "token_estimator_vectors.json").read_text())["requests"]
    for case in vectors:
        body = dict(case["count_tokens_request"], max_tokens=100)
        if case["name"] != "text_plus_image":  # its image is a count_tokens stand-in Kiro would refuse
            out[f"vector-{case['name']}"] = body
    samples = json.loads((FIXTURES / "clients" / "claude-code-requests.json").read_text())["samples"]
    for sample in samples:
        if sample["body"] and "messages" in sample["body"]:
            out[f"claude-code-{sample['kind']}"] = sample["body"]
    out["hello-there"] = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello there"}]}
    return out


BODIES = _bodies()


def _convert(body: dict[str, Any], *, stream: bool, config: ConversionConfig | None = None) -> KiroRequest:
    raw = json.dumps(dict(body, stream=stream)).encode()
    return convert_request(parse_anthropic_request(raw), config=config or ConversionConfig(), continuation_id="c")


def _translate(kiro: KiroRequest) -> tuple[ResponseTranslator, bytes]:
    reply = answer(json.loads(kiro.body()), seed=3)
    assert isinstance(reply, StreamReply)
    translator = ResponseTranslator(kiro.response_plan, message_id="msg_" + "0" * 24, now=0.0)
    out = translator.data_to_send()
    for chunk in reply.chunks:
        translator.receive_data(chunk, now=0.0)
    translator.receive_data(b"", now=0.0)
    return translator, out + translator.data_to_send()


@pytest.mark.parametrize("name", sorted(BODIES))
def test_message_start_and_message_delta_agree_within_15_percent(name: str) -> None:
    kiro = _convert(BODIES[name], stream=True)
    translator, sse = _translate(kiro)
    transcript = check_anthropic_stream(sse)
    assert transcript.success
    start = int(re.search(rb'"input_tokens":(\d+)', sse.split(b"event: message_delta")[0]).group(1))  # type: ignore[union-attr]
    final = translator.usage.input_tokens
    assert start == kiro.response_plan.estimated_input_tokens
    assert abs(final - context_tokens(json.loads(kiro.body()))) <= 1  # the percentage has 4 decimals
    assert abs(start - final) <= 0.15 * final, (start, final)


@pytest.mark.parametrize("name", ["hello-there", "claude-code-main_turn_stream", "conv03_tool_roundtrip"])
def test_stream_and_non_stream_report_the_same_final_usage(name: str) -> None:
    streamed, sse = _translate(_convert(BODIES[name], stream=True))
    whole, _ = _translate(_convert(BODIES[name], stream=False))
    reply = whole.final_response()
    assert reply is not None and reply.status == 200
    usage = json.loads(reply.body)["usage"]
    delta = json.loads(sse.split(b"event: message_delta\ndata: ")[1].split(b"\n")[0])["usage"]
    assert usage["input_tokens"] == delta["input_tokens"] == streamed.usage.input_tokens
    assert usage["output_tokens"] == delta["output_tokens"] == streamed.usage.output_tokens


def test_hello_there_is_a_handful_of_tokens_on_both_sides() -> None:
    # Was 8 and 103: the simulator counted the JSON envelope at four characters a token.
    kiro = _convert(BODIES["hello-there"], stream=True)
    translator, _ = _translate(kiro)
    assert kiro.response_plan.estimated_input_tokens == translator.usage.input_tokens == 8


def test_the_context_usage_event_is_the_tokens_over_the_window() -> None:
    kiro = _convert(BODIES["claude-code-main_turn_stream"], stream=True)
    body = json.loads(kiro.body())
    turn = _script.read_turn(body)
    assert turn.input_tokens == context_tokens(body) > 5000
    reply = answer(body, seed=1)
    assert isinstance(reply, StreamReply)
    (usage,) = [e for e in reply.events if type(e).__name__ == "ContextUsage"]
    window = kiro.response_plan.context_window
    assert getattr(usage, "percentage") == round(turn.input_tokens / window * 100, 4)


def test_the_cached_estimate_is_the_estimate() -> None:
    config = ConversionConfig()
    first = _convert(BODIES["claude-code-main_turn_stream"], stream=True, config=config)
    assert len(config.token_cache) == 1
    again = _convert(BODIES["claude-code-followup_with_tool_result"], stream=True, config=config)
    assert len(config.token_cache) == 1  # the same system prompt and tools: one entry, a hit
    for kiro, name in ((first, "claude-code-main_turn_stream"), (again, "claude-code-followup_with_tool_result")):
        fresh = _convert(BODIES[name], stream=True)
        assert kiro.response_plan.estimated_input_tokens == fresh.response_plan.estimated_input_tokens
    changed = json.loads(json.dumps(BODIES["claude-code-main_turn_stream"]))
    changed["tools"][0]["input_schema"]["properties"]["extra"] = {"type": "string", "description": "x " * 400}
    bigger = _convert(changed, stream=True, config=config)
    assert len(config.token_cache) == 2
    assert bigger.response_plan.estimated_input_tokens > first.response_plan.estimated_input_tokens
