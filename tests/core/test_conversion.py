"""Anthropic request -> Kiro body: the canonical rules of docs/conversion.md."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
import time
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol.requests._anthropic import parse_anthropic_request
from kiro_protocol.requests._conversion import (
    CONTINUE_PROMPT,
    SYSTEM_ACK,
    ConversionConfig,
    KiroRequest,
    convert_request,
)
from kiro_protocol.requests._convert_tools import PLACEHOLDER_DESCRIPTION
from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.requests._linter import lint_kiro_body

FIXTURES = Path(__file__).parent.parent / "fixtures"
CONV = FIXTURES / "conversion"
CONFIG = ConversionConfig()
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
# The Python reference appends this paragraph to every system prompt; we do not.
PY_POLICY = (
    "\nWhen the Write or Edit tool has content size limits, always comply silently. Never suggest "
    "bypassing these limits via alternative tools. Never ask the user whether to switch approaches. "
    "Complete all chunked operations without commentary."
)


def convert(raw: dict[str, Any] | bytes, *, config: ConversionConfig = CONFIG, **kw: Any) -> KiroRequest:
    request = parse_anthropic_request(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    return convert_request(request, config=config, continuation_id="cont-0001", **kw)


def state(result: KiroRequest) -> dict[str, Any]:
    return json.loads(result.body())["conversationState"]  # type: ignore[no-any-return]


def current(result: KiroRequest) -> dict[str, Any]:
    return state(result)["currentMessage"]["userInputMessage"]  # type: ignore[no-any-return]


def history(result: KiroRequest) -> list[dict[str, Any]]:
    return state(result).get("history", [])  # type: ignore[no-any-return]


def roles(result: KiroRequest) -> list[str]:
    return ["U" if "userInputMessage" in e else "A" for e in history(result)]


def body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages, **extra}


def load(case: str, suffix: str) -> Any:
    return json.loads((CONV / f"{case}.{suffix}.json").read_text())


def python_reference(case: str) -> dict[str, Any]:
    """The Python reference's body for a case, with the parts we deliberately differ on
    removed (its random ids, its policy paragraph, its redundant ``isError`` flag)."""
    ref = load(case, "py.cw")["conversationState"]
    for entry in ref.get("history", []):
        user = entry.get("userInputMessage")
        if user is not None:
            user["content"] = user["content"].replace(PY_POLICY, "")
    for result in ref["currentMessage"]["userInputMessage"]["userInputMessageContext"].get("toolResults", []):
        result.pop("isError", None)
    return ref  # type: ignore[no-any-return]


def comparable(conv_state: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(conv_state)
    out.pop("agentContinuationId")
    out.pop("conversationId")
    return out


# -- the conversion vectors (tests/fixtures/conversion) ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["conv01_simple", "conv02_system_history", "conv03_tool_roundtrip", "conv06_image"])
def test_vectors_where_the_python_reference_is_canonical(case: str) -> None:
    result = convert(load(case, "request"))
    assert comparable(state(result)) == comparable(python_reference(case))


def test_conv03_tool_results_are_single_text_items_and_tools_are_sent() -> None:
    result = convert(load("conv03_tool_roundtrip", "request"))
    ctx = current(result)["userInputMessageContext"]
    assert ctx["toolResults"] == [
        {"toolUseId": "tooluse_Zx9QpLm2RkT4vN8aB3cD1e", "content": [{"text": "Sunny, 25C"}], "status": "success"}
    ]
    assert [t["toolSpecification"]["name"] for t in ctx["tools"]] == ["get_weather"]
    assert history(result)[1]["assistantResponseMessage"]["toolUses"][0]["input"] == {"location": "Tokyo"}


def test_conv04_consecutive_messages_merge_and_leading_assistant_is_dropped() -> None:
    result = convert(load("conv04_orphans_and_consecutive_users", "request"))
    assert roles(result) == ["U", "A"]
    assert history(result)[0]["userInputMessage"]["content"] == "q1"
    # Consecutive assistants are merged (nothing lost), not dropped like the references do.
    assert history(result)[1]["assistantResponseMessage"]["content"] == "a1\n\na1-duplicate"
    # The trailing user messages form one current turn; no invented "OK" reply in between.
    assert current(result)["content"] == "q2 part 1\nq2 part 2\nq3 current"
    assert "orphan assistant first" not in result.body().decode()


def test_conv05_prefill_stays_assistant_and_is_continued() -> None:
    result = convert(load("conv05_trailing_assistant_prefill", "request"))
    assert roles(result) == ["U", "A"]
    assert history(result)[1]["assistantResponseMessage"]["content"] == "Autumn"
    assert current(result)["content"] == CONTINUE_PROMPT  # not the prefill re-sent as user text


def test_conv07_text_next_to_tool_result_is_kept_and_error_status() -> None:
    result = convert(load("conv07_web_search_filtered_and_error_result", "request"))
    cur = current(result)
    assert cur["content"] == "try Paris"
    assert cur["userInputMessageContext"]["toolResults"][0]["status"] == "error"
    names = [t["toolSpecification"]["name"] for t in cur["userInputMessageContext"]["tools"]]
    assert names == ["get_weather", "web_search"]  # a *custom* tool named web_search is a custom tool
    assert history(result)[-1]["assistantResponseMessage"]["content"] == " "
    assert state(result)["chatTriggerType"] == "MANUAL"


def test_conv08_thinking_prefix_goes_into_the_system_pair() -> None:
    result = convert(load("conv08_thinking", "request"))
    first = history(result)[0]["userInputMessage"]["content"]
    assert first == (
        "<thinking_mode>enabled</thinking_mode><max_thinking_length>24576</max_thinking_length>\nBe concise."
    )
    assert history(result)[1]["assistantResponseMessage"]["content"] == SYSTEM_ACK
    assert result.response_plan.thinking is True


@pytest.mark.parametrize("case", sorted(p.name.split(".")[0] for p in CONV.glob("conv*.request.json")))
def test_every_vector_satisfies_the_linter(case: str) -> None:
    result = convert(load(case, "request"))
    assert lint_kiro_body(json.loads(result.body("arn:aws:codewhisperer:us-east-1:1:profile/X"))) == []


# -- Claude Code bodies -------------------------------------------------------------------------


def claude_code_bodies() -> dict[str, dict[str, Any]]:
    samples = json.loads((FIXTURES / "clients" / "claude-code-requests.json").read_text())["samples"]
    return {s["kind"]: s["body"] for s in samples if s["body"]}


@pytest.mark.parametrize("kind", sorted(claude_code_bodies()))
def test_every_claude_code_body_converts_and_lints_clean(kind: str) -> None:
    raw = claude_code_bodies()[kind]
    result = convert(raw)
    assert lint_kiro_body(json.loads(result.body("arn:x"))) == []
    cur = current(result)
    assert cur["content"] or cur["userInputMessageContext"]["toolResults"]
    if raw.get("tools"):
        assert len(cur["userInputMessageContext"]["tools"]) == len(raw["tools"])
    assert result.response_plan.max_tokens == raw["max_tokens"]


def test_claude_code_mid_conversation_system_message_is_folded_into_the_user_turn() -> None:
    result = convert(claude_code_bodies()["main_turn_stream"])
    content = current(result)["content"]
    assert content.count("<system>") == 1 and content.rstrip().endswith("</system>")
    system_pair = history(result)[0]["userInputMessage"]["content"]
    assert system_pair.startswith("<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>\n")
    assert "x-anthropic-billing-header" in system_pair


def test_claude_code_thinking_block_is_replayed_in_assistant_history() -> None:
    result = convert(claude_code_bodies()["followup_with_thinking_block"])
    assistant = history(result)[-1]["assistantResponseMessage"]
    assert assistant["content"].startswith("<thinking>")
    assert assistant["toolUses"][0]["name"] == "Bash"
    assert current(result)["userInputMessageContext"]["toolResults"][0]["toolUseId"] == assistant["toolUses"][0]["toolUseId"]
    # The thinking instruction never lands in a tool-result turn.
    assert "<thinking_mode>" not in current(result)["content"]


def test_claude_code_title_request_gets_the_json_schema_instruction() -> None:
    result = convert(claude_code_bodies()["title_generation_nonessential"])
    system_pair = history(result)[0]["userInputMessage"]["content"]
    assert '"required":["title"]' in system_pair
    assert result.response_plan.thinking is False


def test_conversion_of_a_100kb_claude_code_body_is_fast() -> None:
    raw = copy.deepcopy(claude_code_bodies()["followup_with_tool_result"])
    filler = ("The quick brown fox jumps over the lazy dog; 0123456789 {json: [1, 2]}.\n") * 60
    for tool in raw["tools"]:
        tool["description"] = filler[:3500]
    raw["system"][2]["text"] = filler * 5
    data = json.dumps(raw).encode()
    assert len(data) > 100_000
    request = parse_anthropic_request(data)
    convert_request(request, config=CONFIG, continuation_id="c")  # warm up
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        convert_request(request, config=CONFIG, continuation_id="c")
    per_call = (time.perf_counter() - start) / runs
    assert per_call < 0.025  # ~3 ms measured; generous for a shared 2-core CI box


# -- repairs ------------------------------------------------------------------------------------


def tool_round(tool_id: str = "t1", name: str = "f") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]},
    ]


def test_placeholder_specs_for_tools_used_in_history_but_not_offered() -> None:
    result = convert(body(tool_round() + [{"role": "assistant", "content": "done"}, {"role": "user", "content": "next"}]))
    tools = current(result)["userInputMessageContext"]["tools"]
    assert tools == [
        {
            "toolSpecification": {
                "name": "f",
                "description": PLACEHOLDER_DESCRIPTION,
                "inputSchema": {"json": {"type": "object", "properties": {}, "additionalProperties": True}},
            }
        }
    ]


def test_unanswered_tool_use_is_removed_and_orphan_result_kept_as_text() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "used", "name": "f", "input": {}},
            {"type": "tool_use", "id": "never", "name": "f", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "used", "content": "r1"},
            {"type": "tool_result", "tool_use_id": "used", "content": "dup"},
            {"type": "tool_result", "tool_use_id": "ghost", "content": "r2", "is_error": True},
            {"type": "text", "text": "and then?"},
        ]},
    ]
    result = convert(body(messages, tools=[{"name": "f", "description": "d", "input_schema": {}}]))
    uses = history(result)[-1]["assistantResponseMessage"]["toolUses"]
    assert [u["toolUseId"] for u in uses] == ["used"]
    cur = current(result)
    assert [r["toolUseId"] for r in cur["userInputMessageContext"]["toolResults"]] == ["used"]
    assert "[Tool result for used]\ndup" in cur["content"]
    assert "[Tool result for ghost (error)]\nr2" in cur["content"]
    assert cur["content"].endswith("and then?")
    assert any(r.startswith("tool-pairing") for r in result.repairs)


def test_tool_only_assistant_turn_gets_a_space() -> None:
    result = convert(body(tool_round(), tools=[{"name": "f", "description": "d", "input_schema": {}}]))
    assert history(result)[-1]["assistantResponseMessage"]["content"] == " "


def test_long_tool_names_are_shortened_reversibly() -> None:
    long_name = "mcp__some_server_with_a_long_name__" + "x" * 60
    tools = [{"name": long_name, "description": "d", "input_schema": {"type": "object"}}]
    result = convert(body(tool_round(name=long_name), tools=tools))
    spec_name = current(result)["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"]
    assert len(spec_name) == 64 and spec_name != long_name
    assert history(result)[-1]["assistantResponseMessage"]["toolUses"][0]["name"] == spec_name
    assert result.response_plan.client_tool_name(spec_name) == long_name
    assert result.response_plan.client_tool_name("f") == "f"


def test_two_long_names_with_one_prefix_stay_distinct() -> None:
    prefix = "p" * 70
    tools = [{"name": prefix + s, "description": "d", "input_schema": {}} for s in ("a", "b")]
    result = convert(body([{"role": "user", "content": "x"}], tools=tools))
    names = [t["toolSpecification"]["name"] for t in current(result)["userInputMessageContext"]["tools"]]
    assert len(set(names)) == 2 and all(len(n) == 64 for n in names)


def test_tool_descriptions_are_filled_and_cut_on_characters() -> None:
    tools = [
        {"name": "empty", "description": "", "input_schema": {}},
        {"name": "long", "description": "é" * 12_000, "input_schema": {}},
    ]
    config = ConversionConfig(max_tool_description_length=9000)
    result = convert(body([{"role": "user", "content": "x"}], tools=tools), config=config)
    specs = [t["toolSpecification"] for t in current(result)["userInputMessageContext"]["tools"]]
    assert specs[0]["description"] and "empty" in specs[0]["description"]
    assert specs[1]["description"] == "é" * 9000


def test_description_cap_never_exceeds_the_upstream_limit() -> None:
    tools = [{"name": "long", "description": "a" * 20_000, "input_schema": {}}]
    result = convert(body([{"role": "user", "content": "x"}], tools=tools), config=ConversionConfig(max_tool_description_length=50_000))
    assert len(current(result)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"]) == 10_240


def test_schemas_are_normalised() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": None,
        "required": None,
        "additionalProperties": "sometimes",
    }
    nested = {"type": "object", "properties": {"a": {"type": "object", "properties": None, "required": [1, "x"]}}}
    tools = [{"name": "a", "description": "d", "input_schema": schema}, {"name": "b", "description": "d", "input_schema": nested}]
    result = convert(body([{"role": "user", "content": "x"}], tools=tools))
    specs = [t["toolSpecification"]["inputSchema"]["json"] for t in current(result)["userInputMessageContext"]["tools"]]
    assert specs[0] == {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {}}
    assert specs[1]["properties"]["a"] == {"type": "object", "required": ["x"]}


def test_server_tools_are_not_forwarded_and_defined_tools_are() -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"name": "later", "defer_loading": True},
    ]
    result = convert(body([{"role": "user", "content": "x"}], tools=tools))
    specs = [t["toolSpecification"] for t in current(result)["userInputMessageContext"]["tools"]]
    assert [s["name"] for s in specs] == ["str_replace_based_edit_tool", "later"]
    assert specs[0]["inputSchema"]["json"]["required"] == ["command", "path"]
    assert any("web_search" in r for r in result.repairs)


def test_only_server_tools_means_no_tools_key() -> None:
    result = convert(body([{"role": "user", "content": "x"}], tools=[{"type": "web_search_20250305", "name": "web_search"}]))
    assert "tools" not in current(result)["userInputMessageContext"]


def test_images_stay_on_the_message_that_carried_them() -> None:
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}}
    messages = [
        {"role": "user", "content": [img]},  # image-only turn: the image is not lost
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [img, {"type": "text", "text": "screen"}]}]},
    ]
    result = convert(body(messages, tools=[{"name": "shot", "description": "d", "input_schema": {}}]))
    first = history(result)[0]["userInputMessage"]
    assert first["images"] == [{"format": "png", "source": {"bytes": PNG_1PX}}]
    cur = current(result)
    assert cur["images"] == [{"format": "png", "source": {"bytes": PNG_1PX}}]
    assert cur["userInputMessageContext"]["toolResults"][0]["content"] == [{"text": "screen"}]


def test_empty_tool_result_gets_placeholder_text() -> None:
    messages = tool_round()
    messages[2]["content"][0]["content"] = []
    result = convert(body(messages, tools=[{"name": "f", "description": "d", "input_schema": {}}]))
    assert current(result)["userInputMessageContext"]["toolResults"][0]["content"] == [{"text": "(no output)"}]


def test_tool_choice_instructions() -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {}}]
    forced = convert(body([{"role": "user", "content": "x"}], tools=tools, tool_choice={"type": "tool", "name": "f"}))
    assert "You must call the tool f" in history(forced)[0]["userInputMessage"]["content"]
    auto = convert(body([{"role": "user", "content": "x"}], tools=tools, tool_choice={"type": "auto"}))
    assert history(auto) == []


def test_thinking_variants() -> None:
    adaptive = convert(body([{"role": "user", "content": "x"}], thinking={"type": "adaptive"}, output_config={"effort": "medium"}))
    assert history(adaptive)[0]["userInputMessage"]["content"] == (
        "<thinking_mode>adaptive</thinking_mode><thinking_effort>medium</thinking_effort>"
    )
    small = convert(body([{"role": "user", "content": "x"}], thinking={"type": "enabled", "budget_tokens": 2048}))
    assert "<max_thinking_length>2048</max_thinking_length>" in history(small)[0]["userInputMessage"]["content"]
    suffix = convert({**body([{"role": "user", "content": "x"}]), "model": "claude-sonnet-4-5-thinking"})
    assert "<max_thinking_length>20000</max_thinking_length>" in history(suffix)[0]["userInputMessage"]["content"]
    off = convert(body([{"role": "user", "content": "x"}], thinking={"type": "disabled"}))
    assert "thinking_mode" not in off.body().decode() and off.response_plan.thinking is False


def test_thinking_blocks_are_dropped_when_thinking_is_off() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "secret"}, {"type": "text", "text": "y"}]},
        {"role": "user", "content": "z"},
    ]
    result = convert(body(messages))
    assert history(result)[1]["assistantResponseMessage"]["content"] == "y"


def test_plan_carries_what_the_response_side_needs() -> None:
    result = convert(body([{"role": "user", "content": "x"}], stop_sequences=["STOP"], stream=True, max_tokens=777))
    plan = result.response_plan
    assert plan.client_model == "claude-sonnet-4-5" and plan.kiro_model_id == "claude-sonnet-4.5"
    assert plan.stop_sequences == ("STOP",) and plan.stream is True and plan.max_tokens == 777
    assert plan.estimated_input_tokens > 0 and plan.context_window == 200_000
    assert result.model_id == "claude-sonnet-4.5"


def test_sampling_parameters_are_not_forwarded() -> None:
    raw = body([{"role": "user", "content": "x"}], temperature=0.1, top_p=0.2, top_k=3, stop_sequences=["S"])
    text = convert(raw).body().decode()
    for word in ("temperature", "top_p", "top_k", "stop", "max_tokens"):
        assert word not in text


# -- body, ids, limits --------------------------------------------------------------------------


def test_body_is_compact_utf8_with_profile_arn_at_the_root() -> None:
    result = convert(body([{"role": "user", "content": "héllo <b>"}]))
    raw = result.body("arn:aws:codewhisperer:us-east-1:123:profile/ABC")
    assert b", " not in raw and b'": ' not in raw
    assert "héllo <b>".encode() in raw
    decoded = json.loads(raw)
    assert list(decoded) == ["conversationState", "profileArn"]
    assert decoded["profileArn"] == "arn:aws:codewhisperer:us-east-1:123:profile/ABC"
    assert decoded["conversationState"] == result.conversation_state
    assert list(json.loads(result.body())) == ["conversationState"]
    assert state(result)["agentContinuationId"] == "cont-0001"
    assert (state(result)["agentTaskType"], state(result)["chatTriggerType"]) == ("vibe", "MANUAL")
    assert current(result)["origin"] == "AI_EDITOR"


def test_lone_surrogates_still_serialise() -> None:
    result = convert(b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"a\\ud800b"}]}')
    assert json.loads(result.body())["conversationState"]["currentMessage"]["userInputMessage"]["content"] == "a\ud800b"


def session_body(session: str, first: str, turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    for i in range(turns):
        messages += [{"role": "assistant", "content": f"a{i}"}, {"role": "user", "content": f"u{i}"}]
    meta = {"user_id": json.dumps({"device_id": "d", "account_uuid": "", "session_id": session})} if session else {}
    return body(messages, metadata=meta) if meta else body(messages)


def test_conversation_id_is_stable_within_a_session_and_distinct_across() -> None:
    a1 = convert(session_body("s-1", "hello", 0)).conversation_id
    a2 = convert(session_body("s-1", "hello", 3)).conversation_id
    b = convert(session_body("s-2", "hello", 0)).conversation_id
    sub = convert(session_body("s-1", "sub-agent task", 0)).conversation_id
    assert a1 == a2 and len({a1, b, sub}) == 3
    header = convert(session_body("", "hello", 0), session_id_header="s-1").conversation_id
    assert header == a1  # metadata and header carry the same Claude Code session id
    no_session = {convert(session_body("", first, 0)).conversation_id for first in ("hello", "other")}
    assert len(no_session) == 2
    for cid in (a1, b, sub, *no_session):  # canonical version-4 UUID text, as Kiro's clients send
        parsed = uuid.UUID(cid)
        assert str(parsed) == cid and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # The value itself is fixed by the session and the first message (stable across releases).
    key = "\0".join(("session", "s-1", "hello")).encode()
    assert a1 == str(uuid.UUID(bytes=hashlib.sha256(key).digest()[:16], version=4))
    assert convert(session_body("", "hello", 2)).conversation_id == convert(session_body("", "hello", 5)).conversation_id


def test_body_over_budget_is_a_400_that_says_by_how_much() -> None:
    raw = body([{"role": "user", "content": "x" * 5000}])
    with pytest.raises(LocalProtocolError) as err:
        convert(raw, config=ConversionConfig(max_body_bytes=3000))
    exc = err.value
    assert exc.kind is ErrorKind.INVALID_REQUEST and exc.status_hint == 400
    assert exc.message.startswith("prompt is too long")
    assert "over the 3000-byte limit" in exc.message


def test_too_many_history_entries_is_a_400() -> None:
    raw = session_body("", "q", 6)
    with pytest.raises(LocalProtocolError) as err:
        convert(raw, config=ConversionConfig(max_history_entries=10))
    assert "12 history entries, the limit is 10" in err.value.message
    assert len(history(convert(raw, config=ConversionConfig(max_history_entries=12)))) == 12


def test_unknown_model_is_404() -> None:
    with pytest.raises(LocalProtocolError) as err:
        convert({**body([{"role": "user", "content": "x"}]), "model": "gpt-4o"})
    assert err.value.status_hint == 404


def test_no_user_message_is_a_400() -> None:
    with pytest.raises(LocalProtocolError) as err:
        convert(body([{"role": "assistant", "content": "only me"}]))
    assert err.value.param == "messages"


def test_empty_current_message_is_a_400() -> None:
    raw = body([{"role": "user", "content": [{"type": "server_tool_use", "id": "x", "name": "web_search", "input": {}}]}])
    with pytest.raises(LocalProtocolError) as err:
        convert(raw)
    assert err.value.param == "messages.0.content"


def test_model_overrides_from_config() -> None:
    config = ConversionConfig(model_overrides={"my-model": "claude-opus-4.6"})
    result = convert({**body([{"role": "user", "content": "x"}]), "model": "my-model"}, config=config)
    assert current(result)["modelId"] == "claude-opus-4.6"
    assert result.response_plan.context_window == 1_000_000
    assert result.response_plan.client_model == "my-model"


def test_images_are_not_in_reprs() -> None:
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 3000 + b"IEND\xaeB`\x82").decode()
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}}
    result = convert(body([{"role": "user", "content": [img]}]))
    assert big not in repr(result.response_plan)
    assert big not in repr(result) and len(repr(result)) < 2000


def test_client_supplied_thinking_tags_are_not_doubled() -> None:
    raw = body([{"role": "user", "content": "x"}], system="<thinking_mode>enabled</thinking_mode> be brief",
               thinking={"type": "enabled", "budget_tokens": 5000})
    result = convert(raw)
    assert result.body().decode().count("<thinking_mode>") == 1
    assert result.response_plan.thinking is True


def test_server_tools_are_reported_on_the_result() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}, {"name": "f", "description": "d", "input_schema": {}}]
    result = convert(body([{"role": "user", "content": "x"}], tools=tools))
    assert result.server_tools == ("web_search_20250305",)
    assert convert(body([{"role": "user", "content": "x"}])).server_tools == ()


def test_parallel_tool_use_can_be_disabled() -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {}}]
    raw = body([{"role": "user", "content": "x"}], tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert "Call at most one tool per reply." in history(convert(raw))[0]["userInputMessage"]["content"]
