"""The Kiro body linter (``kiro_protocol.requests.lint_kiro_body``) on malformed shapes: each
wrong type is reported once, with its rule, its JSON path and what is wrong, and the linter
goes on checking the rest of the body."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from kiro_protocol.requests import MAX_IMAGE_BYTES, Action, LintLimits, Violation, lint_kiro_body

CUR = "conversationState.currentMessage.userInputMessage"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(30)).decode()


def body() -> dict[str, Any]:
    """A valid body: one plain exchange in history, a current message that declares a tool."""
    return {
        "conversationState": {
            "agentContinuationId": "c",
            "agentTaskType": "vibe",
            "chatTriggerType": "MANUAL",
            "conversationId": "x",
            "history": [
                {"userInputMessage": {"content": "hi", "modelId": "m", "origin": "AI_EDITOR"}},
                {"assistantResponseMessage": {"content": "hello"}},
            ],
            "currentMessage": {
                "userInputMessage": {
                    "content": "go",
                    "modelId": "m",
                    "origin": "AI_EDITOR",
                    "userInputMessageContext": {
                        "tools": [
                            {
                                "toolSpecification": {
                                    "name": "f",
                                    "description": "d",
                                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                                }
                            }
                        ]
                    },
                }
            },
        }
    }


def current(b: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = b["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def triples(found: list[Violation]) -> list[tuple[str, str, str]]:
    return [(v.rule, v.path, v.message) for v in found]


def test_the_base_body_is_clean() -> None:
    assert lint_kiro_body(body()) == []


def set_images(value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        current(b)["images"] = value

    return mutate


def set_context(value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        current(b)["userInputMessageContext"] = value

    return mutate


def set_results(value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        current(b)["userInputMessageContext"]["toolResults"] = value

    return mutate


def set_tools(value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        current(b)["userInputMessageContext"]["tools"] = value

    return mutate


def set_history(value: list[object]) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        b["conversationState"]["history"] = value

    return mutate


def set_assistant(message: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        b["conversationState"]["history"][1] = {"assistantResponseMessage": message}

    return mutate


def set_user_content(value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(b: dict[str, Any]) -> None:
        current(b)["content"] = value

    return mutate


A1 = "conversationState.history.1.assistantResponseMessage"
TOOL0 = f"{CUR}.userInputMessageContext.tools.0.toolSpecification"
RESULTS = f"{CUR}.userInputMessageContext.toolResults"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (set_images("x"), [("image", f"{CUR}.images", "images must be an array")]),
        (set_images(["x"]), [("image", f"{CUR}.images.0", "image must be an object")]),
        (
            set_images([{"format": "png", "source": {"bytes": "AAAAA"}}]),  # 5 characters: no base64
            [("image", f"{CUR}.images.0.source.bytes", "image bytes are not png")],
        ),
        (
            set_images([{"format": "png", "source": {"bytes": PNG + "A" * (MAX_IMAGE_BYTES * 4 // 3 + 16)}}]),
            [("image", f"{CUR}.images.0.source.bytes", f"image larger than {MAX_IMAGE_BYTES} bytes")],
        ),
        (
            set_images([{"format": "png", "source": "inline"}]),
            [("image", f"{CUR}.images.0.source.bytes", "image bytes missing")],
        ),
        (set_context([]), [("body-shape", f"{CUR}.userInputMessageContext", "must be an object")]),
        (
            set_results({}),
            [
                ("tool-result-shape", RESULTS, "toolResults must be an array"),
            ],
        ),
        (set_results([7]), [("tool-result-shape", f"{RESULTS}.0", "tool result must be an object")]),
        (
            set_results([{"toolUseId": "", "status": "done", "content": []}]),
            [
                ("tool-result-shape", f"{RESULTS}.0.toolUseId", "toolUseId must be a non-empty string"),
                ("tool-result-shape", f"{RESULTS}.0.status", 'status must be "success" or "error"'),
                ("tool-result-shape", f"{RESULTS}.0.content", "content must be a non-empty array"),
            ],
        ),
        (
            set_user_content(None),
            [
                ("body-shape", f"{CUR}.content", "content must be a string"),
                ("user-content", f"{CUR}.content", "user message has no content, tool results or images"),
            ],
        ),
        (
            set_assistant({"content": "ok", "toolUses": []}),
            [("tool-use-input", f"{A1}.toolUses", "toolUses must be a non-empty array when present")],
        ),
        (
            set_assistant({"content": "ok", "toolUses": ["f"]}),
            [("tool-use-input", f"{A1}.toolUses.0", "tool use must be an object")],
        ),
        (
            set_assistant({"content": "ok", "toolUses": [{"toolUseId": "t", "name": "", "input": {}}]}),
            [("tool-use-input", f"{A1}.toolUses.0", "toolUseId and name must be non-empty strings")],
        ),
        (
            set_tools("f"),
            [
                ("tool-specs", f"{CUR}.userInputMessageContext.tools", "tools must be an array"),
                ("tool-specs", f"{CUR}.userInputMessageContext.tools", "tools must not be empty when present"),
            ],
        ),
        (
            set_tools([{"name": "f"}]),
            [
                (
                    "tool-specs",
                    TOOL0,
                    "each tool must hold a toolSpecification object",
                ),
                ("tool-specs", f"{CUR}.userInputMessageContext.tools", "tools must not be empty when present"),
            ],
        ),
        (
            set_tools([{"toolSpecification": {"name": None, "description": "d", "inputSchema": {"json": "{}"}}}]),
            [
                ("tool-name", f"{TOOL0}.name", "tool name must be a non-empty string"),
                ("tool-schema", f"{TOOL0}.inputSchema.json", "schema must be an object"),
                ("tool-specs", f"{CUR}.userInputMessageContext.tools", "tools must not be empty when present"),
            ],
        ),
        (
            set_history([["not", "an", "entry"]]),
            [("body-shape", "conversationState.history.0", "history entry must hold exactly one message")],
        ),
        (
            set_history([{"systemMessage": {"content": "x"}}]),
            [("body-shape", "conversationState.history.0.systemMessage", "unknown history entry")],
        ),
        (
            set_history([{"userInputMessage": "hi"}]),
            [("body-shape", "conversationState.history.0.userInputMessage", "unknown history entry")],
        ),
    ],
    ids=[
        "images-not-array", "image-not-object", "image-bad-base64", "image-too-large", "image-no-bytes",
        "context-not-object", "results-not-array", "result-not-object", "result-fields", "content-not-string",
        "tool-uses-empty", "tool-use-not-object", "tool-use-no-name", "tools-not-array", "tool-no-spec",
        "tool-spec-fields", "entry-not-one-message", "entry-unknown-kind", "entry-not-object",
    ],
)
def test_malformed_parts_are_reported_where_they_are(
    mutate: Callable[[dict[str, Any]], None], expected: list[tuple[str, str, str]]
) -> None:
    b = body()
    mutate(b)
    assert triples(lint_kiro_body(b)) == expected


def test_unexpected_root_keys_are_named_sorted() -> None:
    b = body()
    b["zeta"] = 1
    b["alpha"] = 2
    assert triples(lint_kiro_body(b)) == [("body-shape", "", "unexpected root keys ['alpha', 'zeta']")]


def test_a_current_message_that_is_not_an_object_stops_the_check_there() -> None:
    b = body()
    b["conversationState"]["currentMessage"] = {"userInputMessage": ["go"]}
    found = lint_kiro_body(b)
    assert triples(found) == [("body-shape", CUR, "currentMessage.userInputMessage must be an object")]
    assert found[0].action is Action.REPAIR


def test_without_a_body_budget_a_huge_body_is_not_measured() -> None:
    b = body()
    current(b)["content"] = "x" * 50
    tight = LintLimits(max_body_bytes=10)
    assert [v.rule for v in lint_kiro_body(b, limits=tight)] == ["body-size"]
    assert lint_kiro_body(b, limits=LintLimits(max_body_bytes=None)) == []


def test_a_known_body_size_is_used_instead_of_serialising() -> None:
    b = body()
    size = len(json.dumps(b, separators=(",", ":")).encode())
    limits = LintLimits(max_body_bytes=size)
    assert lint_kiro_body(b, limits=limits) == []
    (over,) = lint_kiro_body(b, limits=limits, body_size=size + 5)
    assert (over.rule, over.action) == ("body-size", Action.REJECT)
    assert over.message == (
        f"the request is {size + 5} bytes once converted (images excepted), 5 bytes over the {size}-byte limit"
    )


def test_a_profile_arn_must_be_a_string() -> None:
    b = body()
    b["profileArn"] = 7
    assert triples(lint_kiro_body(b)) == [("body-shape", "profileArn", "profileArn must be a string")]


def test_a_history_tool_use_with_a_long_name_and_no_object_input() -> None:
    name = "n" * 65
    b = body()
    b["conversationState"]["history"][1] = {
        "assistantResponseMessage": {"content": " ", "toolUses": [{"toolUseId": "t", "name": name, "input": []}]}
    }
    found = triples(lint_kiro_body(b))
    assert found[:2] == [
        ("tool-name", f"{A1}.toolUses.0.name", "tool name longer than 64 characters"),
        ("tool-use-input", f"{A1}.toolUses.0.input", "input must be an object"),
    ]
    # The use is still counted: unanswered by the current message and undeclared.
    assert ("tool-pairing", CUR, "tool uses without a result: ['t']") in found
    assert ("tool-specs", f"{CUR}.userInputMessageContext.tools", f"undeclared tools used in history: ['{name}']") in found
