"""Properties of parse + convert over generated Anthropic requests.

Any generated request either converts to a body the linter accepts (alternation, pairing,
non-empty entries, limits) in which no user text or tool output was lost, or is refused with a
``LocalProtocolError``; nothing else may escape.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from kiro_protocol.requests._anthropic import parse_anthropic_request
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._linter import LintLimits, lint_kiro_body

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
IDS = ["t1", "t2", "t3", "toolu_01ABC"]
NAMES = ["Bash", "Read", "mcp__server__" + "very_long_tool_name_" * 4, "web_search"]

texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
images = st.sampled_from(
    [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},  # mismatch
    ]
)
text_blocks = texts.map(lambda t: {"type": "text", "text": t})
tool_uses = st.builds(
    lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": {"arg": a}},
    st.sampled_from(IDS),
    st.sampled_from(NAMES),
    st.integers(),
)
tool_results = st.builds(
    lambda i, c, e: {"type": "tool_result", "tool_use_id": i, "content": c, "is_error": e},
    st.sampled_from(IDS),
    st.one_of(texts, st.lists(st.one_of(text_blocks, images), max_size=2), st.none()),
    st.booleans(),
)
thinking = texts.map(lambda t: {"type": "thinking", "thinking": t, "signature": "s"})
user_content = st.one_of(texts, st.lists(st.one_of(text_blocks, images, tool_results), min_size=1, max_size=4))
assistant_content = st.one_of(texts, st.lists(st.one_of(text_blocks, tool_uses, thinking), min_size=1, max_size=4))
system_content = st.one_of(texts, st.lists(text_blocks, min_size=1, max_size=2))


@st.composite
def messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    roles = draw(st.lists(st.sampled_from(["user", "user", "assistant", "system"]), min_size=1, max_size=8))
    out = []
    for role in roles:
        content = {"user": user_content, "assistant": assistant_content, "system": system_content}[role]
        out.append({"role": role, "content": draw(content)})
    return out


tools = st.lists(
    st.one_of(
        st.builds(
            lambda n, d, s: {"name": n, "description": d, "input_schema": s},
            st.sampled_from(NAMES),
            st.sampled_from(["", "does things", "x" * 12_000]),
            st.sampled_from([{}, {"type": "object", "properties": None, "required": None}, {"type": "object"}]),
        ),
        st.just({"type": "web_search_20250305", "name": "web_search"}),
    ),
    max_size=3,
    unique_by=lambda t: t["name"],
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-8", "claude-haiku-4-5-thinking", "gpt-4"])),
        "max_tokens": draw(st.integers(min_value=1, max_value=128_000)),
        "messages": draw(messages()),
    }
    if draw(st.booleans()):
        body["system"] = draw(system_content)
    if draw(st.booleans()):
        body["tools"] = draw(tools)
    if draw(st.booleans()):
        body["thinking"] = draw(
            st.sampled_from([{"type": "adaptive"}, {"type": "enabled", "budget_tokens": 30000}, {"type": "disabled"}])
        )
    if draw(st.booleans()):
        body["tool_choice"] = draw(st.sampled_from([{"type": "any"}, {"type": "none"}, {"type": "tool", "name": "Bash"}]))
    return body


def user_side_texts(body: dict[str, Any]) -> list[str]:
    """Texts the converter must never drop: user text blocks and tool result texts."""
    out = []
    for message in body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            out.append(content)
            continue
        for block in content:
            if block["type"] == "text":
                out.append(block["text"])
            elif block["type"] == "tool_result":
                inner = block["content"]
                if isinstance(inner, str):
                    out.append(inner)
                elif isinstance(inner, list):
                    out.extend(b["text"] for b in inner if b["type"] == "text")
    return out


@settings(max_examples=300)
@given(requests(), st.sampled_from([None, 2_000, 1_200_000]), st.sampled_from([None, 4, 200]))
def test_generated_requests_convert_to_valid_bodies_or_are_refused(
    raw: dict[str, Any], budget: int | None, max_history: int | None
) -> None:
    config = ConversionConfig(max_body_bytes=budget or 1_200_000, max_history_entries=max_history)
    try:
        request = parse_anthropic_request(json.dumps(raw).encode())
        result = convert_request(request, config=config, continuation_id="c")
    except LocalProtocolError as exc:
        assert exc.status_hint in (400, 404)
        assert exc.message
        event(f"refused: {exc.param}")
        return
    event("converted")
    body = json.loads(result.body("arn:aws:codewhisperer:us-east-1:1:profile/P"))
    limits = LintLimits(max_body_bytes=config.max_body_bytes, max_history_entries=max_history)
    assert lint_kiro_body(body, limits=limits) == []
    # Nothing the user (or a tool) said is lost; JSON-encode to compare like with like.
    serialised = json.dumps(body, ensure_ascii=False)
    for text in user_side_texts(raw):
        assert json.dumps(text, ensure_ascii=False)[1:-1] in serialised
    # Every shortened tool name maps back to a name the client used.
    for upstream, client in result.response_plan.tool_names.items():
        assert len(upstream) <= 64 and client in NAMES


@given(requests())
def test_conversion_is_deterministic(raw: dict[str, Any]) -> None:
    def run() -> bytes | str:
        try:
            request = parse_anthropic_request(raw)
            return convert_request(request, config=ConversionConfig(), continuation_id="c").body()
        except LocalProtocolError as exc:
            return exc.message

    assert run() == run()


@given(st.lists(st.text(min_size=1, max_size=150), unique=True, max_size=20))
def test_tool_name_shortening_is_stable_and_reversible(names: list[str]) -> None:
    from kiro_protocol.requests._convert_tools import ToolNames

    first, second = ToolNames(), ToolNames()
    upstream = [first.upstream(n) for n in names]
    assert upstream == [second.upstream(n) for n in names]  # same name, same short name
    assert all(len(u) <= 64 for u in upstream)
    # Distinct long names stay distinct (hash suffix); short names pass through unchanged.
    long_ones = [u for n, u in zip(names, upstream) if len(n) > 64]
    assert len(set(long_ones)) == len(long_ones)
    for name, short in zip(names, upstream):
        assert first.to_client.get(short, short) == name


json_schemas = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["type", "properties", "required", "items", "additionalProperties", "x"]), children, max_size=4
    ),
    max_leaves=15,
)


@given(st.dictionaries(st.sampled_from(["type", "properties", "required", "additionalProperties", "x"]), json_schemas))
def test_normalised_schemas_pass_the_linter_and_are_idempotent(schema: dict[str, Any]) -> None:
    from kiro_protocol.requests._convert_tools import normalise_schema

    once = normalise_schema(schema)
    assert normalise_schema(once) == once
    spec = {"toolSpecification": {"name": "f", "description": "d", "inputSchema": {"json": once}}}
    body = {
        "conversationState": {
            "agentContinuationId": "c", "agentTaskType": "vibe", "chatTriggerType": "MANUAL", "conversationId": "i",
            "currentMessage": {"userInputMessage": {
                "content": "x", "modelId": "m", "origin": "AI_EDITOR", "userInputMessageContext": {"tools": [spec]}}},
        }
    }
    assert lint_kiro_body(body) == []
