"""The Kiro body linter: one rule set, applied to bodies whoever built them."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol.requests._linter import RULES, Action, LintLimits, lint_kiro_body

CONV = Path(__file__).parent.parent / "fixtures" / "conversion"
DOCS = Path(__file__).parent.parent.parent / "docs" / "conversion.md"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 30).decode()


def user(content: str = "hi", **extra: Any) -> dict[str, Any]:
    msg = {"content": content, "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR", "userInputMessageContext": {}}
    msg.update(extra)
    return {"userInputMessage": msg}


def assistant(content: str = "ok", uses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"content": content}
    if uses is not None:
        msg["toolUses"] = uses
    return {"assistantResponseMessage": msg}


def spec(name: str = "f", description: str = "d", schema: Any = None) -> dict[str, Any]:
    return {
        "toolSpecification": {
            "name": name,
            "description": description,
            "inputSchema": {"json": {"type": "object", "properties": {}} if schema is None else schema},
        }
    }


def good_body() -> dict[str, Any]:
    """A valid body with a tool round trip in history and a result in the current message."""
    cur = user("", userInputMessageContext={
        "tools": [spec("f")],
        "toolResults": [{"toolUseId": "t2", "content": [{"text": "r2"}], "status": "success"}],
    })
    return {
        "conversationState": {
            "agentContinuationId": "c",
            "agentTaskType": "vibe",
            "chatTriggerType": "MANUAL",
            "conversationId": "x",
            "currentMessage": cur,
            "history": [
                user("go"),
                assistant(" ", [{"toolUseId": "t1", "name": "f", "input": {}}]),
                user("", userInputMessageContext={
                    "toolResults": [{"toolUseId": "t1", "content": [{"text": "r1"}], "status": "error"}]
                }),
                assistant("again", [{"toolUseId": "t2", "name": "f", "input": {"a": 1}}]),
            ],
        },
        "profileArn": "arn:aws:codewhisperer:us-east-1:1:profile/X",
    }


def rules_of(body: dict[str, Any], limits: LintLimits = LintLimits()) -> set[str]:
    return {v.rule for v in lint_kiro_body(body, limits=limits)}


def test_good_body_is_clean() -> None:
    assert lint_kiro_body(good_body()) == []


def test_rule_table_is_complete_and_documented() -> None:
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    docs = DOCS.read_text()
    for rule in RULES:
        assert rule.reason and rule.rule
        assert rule.action is Action.REJECT or rule.repair
        assert f"`{rule.code}`" in docs, f"docs/conversion.md does not list {rule.code}"


State = dict[str, Any]
MUTATIONS: list[tuple[str, Callable[[State], None], str]] = [
    ("trigger AUTO", lambda s: s.update(chatTriggerType="AUTO"), "body-shape"),
    ("task type", lambda s: s.update(agentTaskType="spec"), "body-shape"),
    ("empty conversation id", lambda s: s.update(conversationId=""), "body-shape"),
    ("history not list", lambda s: s.update(history={}), "body-shape"),
    ("two users in a row", lambda s: s["history"].insert(0, user("again")), "alternation"),
    ("history ends with user", lambda s: s["history"].append(user("x")), "alternation"),
    ("empty assistant", lambda s: s["history"][1]["assistantResponseMessage"].update(content=""), "assistant-content"),
    ("empty user", lambda s: s["history"][0]["userInputMessage"].update(content=""), "user-content"),
    ("unanswered use", lambda s: s["history"][2]["userInputMessage"]["userInputMessageContext"].pop("toolResults"),
     "tool-pairing"),
    ("unknown result", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
     .update(toolUseId="zzz"), "tool-pairing"),
    ("duplicate result", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
     .append({"toolUseId": "t2", "content": [{"text": "again"}], "status": "success"}), "tool-pairing"),
    ("no tools with tool history", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]
     .pop("tools"), "tool-specs"),
    ("undeclared tool", lambda s: s["history"][1]["assistantResponseMessage"]["toolUses"][0].update(name="g"),
     "tool-specs"),
    ("empty tools list", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]
     .update(tools=[]), "tool-specs"),
    ("tools in history", lambda s: s["history"][0]["userInputMessage"]["userInputMessageContext"]
     .update(tools=[spec()]), "body-shape"),
    ("long tool name", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("n" * 65)), "tool-name"),
    ("duplicate tool name", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("f")), "tool-name"),
    ("empty description", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("g", "")), "tool-description"),
    ("long description", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("g", "d" * 10_001)), "tool-description"),
    ("schema not object type", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("g", schema={"type": "string", "properties": {}})), "tool-schema"),
    ("null properties", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("g", schema={"type": "object", "properties": None})), "tool-schema"),
    ("null required", lambda s: s["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
     .append(spec("g", schema={"type": "object", "properties": {}, "required": None})), "tool-schema"),
    ("input not object", lambda s: s["history"][1]["assistantResponseMessage"]["toolUses"][0].update(input=[]),
     "tool-use-input"),
    ("empty toolUses", lambda s: s["history"][3]["assistantResponseMessage"].update(toolUses=[]), "tool-use-input"),
    ("anthropic-shaped result item", lambda s: s["history"][2]["userInputMessage"]["userInputMessageContext"]
     ["toolResults"][0].update(content=[{"type": "text", "text": "r1"}]), "tool-result-shape"),
    ("empty result text", lambda s: s["history"][2]["userInputMessage"]["userInputMessageContext"]
     ["toolResults"][0].update(content=[{"text": ""}]), "tool-result-shape"),
    ("bad status", lambda s: s["history"][2]["userInputMessage"]["userInputMessageContext"]
     ["toolResults"][0].update(status="failed"), "tool-result-shape"),
    ("thinking tags in a tool-result turn", lambda s: s["currentMessage"]["userInputMessage"]
     .update(content="<thinking_mode>enabled</thinking_mode>"), "thinking-placement"),
    ("bmp image", lambda s: s["history"][0]["userInputMessage"]
     .update(images=[{"format": "bmp", "source": {"bytes": PNG}}]), "image"),
    ("png declared jpeg", lambda s: s["history"][0]["userInputMessage"]
     .update(images=[{"format": "jpeg", "source": {"bytes": PNG}}]), "image"),
    ("empty image", lambda s: s["history"][0]["userInputMessage"]
     .update(images=[{"format": "png", "source": {"bytes": ""}}]), "image"),
    ("wrong origin", lambda s: s["history"][0]["userInputMessage"].update(origin="IDE"), "body-shape"),
    ("missing modelId", lambda s: s["history"][0]["userInputMessage"].pop("modelId"), "body-shape"),
]


@pytest.mark.parametrize(("case", "mutate", "rule"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_rule_is_detected(case: str, mutate: Callable[[State], None], rule: str) -> None:
    body = good_body()
    mutate(body["conversationState"])
    assert rule in rules_of(body)


def test_valid_images_pass() -> None:
    body = good_body()
    body["conversationState"]["history"][0]["userInputMessage"]["images"] = [
        {"format": "png", "source": {"bytes": PNG}},
        {"format": "jpeg", "source": {"bytes": JPEG}},
    ]
    assert lint_kiro_body(body) == []


def test_root_keys() -> None:
    body = good_body()
    body["extra"] = 1
    assert "body-shape" in rules_of(body)
    assert "body-shape" in rules_of({"conversationState": None})


def test_limits_are_configurable() -> None:
    body = good_body()
    assert "history-length" in rules_of(body, LintLimits(max_history_entries=3))
    assert rules_of(body, LintLimits(max_history_entries=4)) == set()
    size = len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    over = lint_kiro_body(body, limits=LintLimits(max_body_bytes=size - 10))
    assert [v.rule for v in over] == ["body-size"] and "10 bytes over" in over[0].message
    assert over[0].action is Action.REJECT
    assert rules_of(body, LintLimits(max_body_bytes=size)) == set()
    assert lint_kiro_body(body, limits=LintLimits(max_body_bytes=100), body_size=50) == []
    described = copy.deepcopy(body)
    described["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"][0][
        "toolSpecification"]["description"] = "d" * 200
    assert "tool-description" in rules_of(described, LintLimits(max_tool_description_length=100))


def test_judges_bodies_it_did_not_produce() -> None:
    """The Go reference's bodies break rules it does not know about; the Python reference's pass."""
    go_tool_round = json.loads((CONV / "conv03_tool_roundtrip.go.cw.json").read_text())
    assert rules_of(go_tool_round) == {"tool-result-shape"}  # Anthropic-shaped {"type","text"} items
    go_forced = json.loads((CONV / "conv07_web_search_filtered_and_error_result.go.cw.json").read_text())
    assert "body-shape" in rules_of(go_forced)  # chatTriggerType AUTO
    for path in sorted(CONV.glob("*.py.cw.json")):
        assert lint_kiro_body(json.loads(path.read_text())) == [], path.name


def test_violations_are_in_document_order_with_paths() -> None:
    body = good_body()
    body["conversationState"]["history"][1]["assistantResponseMessage"]["content"] = ""
    body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = ""
    found = lint_kiro_body(body)
    assert [v.path for v in found] == [
        "conversationState.history.1.assistantResponseMessage.content",
        "conversationState.currentMessage.userInputMessage.modelId",
    ]


def test_image_data_does_not_count_against_the_body_budget() -> None:
    body = good_body()
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30_000).decode()
    body["conversationState"]["history"][0]["userInputMessage"]["images"] = [{"format": "png", "source": {"bytes": big}}]
    size = len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    assert lint_kiro_body(body, limits=LintLimits(max_body_bytes=size - len(big))) == []
    assert "body-size" in rules_of(body, LintLimits(max_body_bytes=size - len(big) - 1))
