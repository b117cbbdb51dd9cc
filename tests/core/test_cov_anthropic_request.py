"""The Anthropic request parser (``kiro_protocol.parse_anthropic_request``) on the block types
Claude clients send beyond text: documents, search results, tool references; and the 400s for
the shapes it refuses, each naming the offending field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kiro_protocol import LocalProtocolError, parse_anthropic_request
from kiro_protocol.requests import Request, TextBlock, ToolResultBlock, ToolUseBlock

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(30)).decode()


def request(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": list(messages), **extra}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def parse(body: dict[str, Any]) -> Request:
    return parse_anthropic_request(json.dumps(body).encode())


def refused(body: object) -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as caught:
        parse_anthropic_request(body)  # type: ignore[arg-type]
    assert caught.value.status_hint == 400
    return caught.value


def test_a_text_document_becomes_text_headed_by_its_title() -> None:
    doc = {"type": "document", "title": "  Notes ", "source": {"type": "text", "data": "line"}}
    assert parse(request(user(doc))).messages[0].content == (TextBlock(text="Notes\nline"),)


def test_a_content_document_joins_its_text_blocks_and_a_blank_title_is_dropped() -> None:
    doc = {
        "type": "document",
        "title": "   ",
        "source": {"type": "content", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    }
    assert parse(request(user(doc))).messages[0].content == (TextBlock(text="a\nb"),)


def test_a_content_document_may_hold_a_plain_string() -> None:
    doc = {"type": "document", "source": {"type": "content", "content": "plain"}}
    assert parse(request(user(doc))).messages[0].content == (TextBlock(text="plain"),)


def test_a_search_result_is_headed_by_its_title_and_source() -> None:
    block = {"type": "search_result", "title": "T", "source": "https://x.test/", "content": [{"type": "text", "text": "body"}]}
    untitled = {"type": "search_result", "content": [{"type": "text", "text": "only"}]}
    content = parse(request(user(block, untitled))).messages[0].content
    assert content == (TextBlock(text="T https://x.test/\nbody"), TextBlock(text="only"))


def test_tool_result_content_may_hold_documents_search_results_and_tool_references() -> None:
    assistant = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": None}]}
    result = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [
            {"type": "document", "source": {"type": "text", "data": "doc"}},
            {"type": "search_result", "title": "S", "content": [{"type": "text", "text": "hit"}]},
            {"type": "tool_reference", "tool_name": "grep"},
        ],
    }
    parsed = parse(request(user({"type": "text", "text": "go"}), assistant, user(result)))
    assert parsed.messages[1].content == (ToolUseBlock(id="t1", name="f", input={}),)
    assert parsed.messages[2].content == (
        ToolResultBlock(
            tool_use_id="t1",
            content=(TextBlock(text="doc"), TextBlock(text="S\nhit"), TextBlock(text="Tool loaded: grep")),
        ),
    )


def test_metadata_without_a_user_id_gives_no_session() -> None:
    assert parse(request(user({"type": "text", "text": "hi"}), metadata={})).session_id == ""


@pytest.mark.parametrize(
    ("block", "param", "problem"),
    [
        (
            {"type": "image", "source": {"type": "file", "file_id": "f"}},
            "messages.0.content.0.source.type",
            "unsupported image source type 'file'; use \"base64\"",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "x"}},
            "messages.0.content.0.source.type",
            "document source 'base64' is not supported; only plain-text documents (\"text\" or \"content\") can be sent",
        ),
        (
            {"type": "document", "source": {"type": "content", "content": [{"type": "image"}]}},
            "messages.0.content.0.source.content.0.type",
            "expected a text block",
        ),
        ({"type": 3}, "messages.0.content.0.type", "expected a string, got number"),
        (
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "audio"}]},
            "messages.0.content.0.content.0.type",
            "unsupported tool_result content type 'audio'",
        ),
    ],
    ids=["image-file-source", "pdf-document", "document-image-block", "type-not-string", "tool-result-audio"],
)
def test_refused_user_blocks(block: dict[str, Any], param: str, problem: str) -> None:
    error = refused(request(user(block)))
    assert (error.param, error.message) == (param, f"{param}: {problem}")


def test_a_tool_use_needs_a_name() -> None:
    assistant = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": ""}]}
    error = refused(request(user({"type": "text", "text": "go"}), assistant))
    assert error.message == "messages.1.content.0.name: must not be empty"


def test_a_tool_result_needs_its_tool_use_id() -> None:
    error = refused(request(user({"type": "tool_result", "tool_use_id": ""})))
    assert error.message == "messages.0.content.0.tool_use_id: must not be empty"


def test_a_named_tool_choice_needs_a_name() -> None:
    body = request(user({"type": "text", "text": "hi"}), tool_choice={"type": "tool", "name": ""})
    assert refused(body).message == "tool_choice.name: must not be empty"


def test_a_decoded_body_that_is_not_an_object_is_refused() -> None:
    error = refused([1, 2])
    assert error.message == "request body: expected a JSON object, got array"
    assert error.param is None


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"name": 5, "input_schema": {"type": "object"}}, "tools.0.name: expected a string"),
        ({"input_schema": {"type": "object"}}, "tools.0.name: field required"),
        ({"name": " ", "input_schema": {"type": "object"}}, "tools.0.name: must not be empty"),
        ({"name": "f", "description": 1, "input_schema": {"type": "object"}}, "tools.0.description: expected a string"),
        ({"name": "f", "type": ["custom"], "input_schema": {"type": "object"}}, "tools.0.type: expected a string"),
    ],
    ids=["name-not-string", "name-missing", "name-blank", "description-not-string", "type-not-string"],
)
def test_refused_tool_definitions(tool: dict[str, Any], message: str) -> None:
    error = refused(request(user({"type": "text", "text": "hi"}), tools=[tool]))
    assert error.message == message
    assert error.param == message.split(":")[0]
