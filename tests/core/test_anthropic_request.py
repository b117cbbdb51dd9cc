"""Anthropic Messages request parsing: typed values out, precise 400s (with field paths) in."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol.requests._anthropic import parse_anthropic_request, session_id_from_user_id
from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.requests._model import (
    ImageBlock,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolKind,
    ToolResultBlock,
    ToolUseBlock,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG_HEAD = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 20 + b"\xff\xd9").decode()


def body(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    out.update(overrides)
    return out


def image(media_type: str = "image/png", data: str = PNG_1PX) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def claude_code_bodies() -> list[tuple[str, dict[str, Any]]]:
    samples = json.loads((FIXTURES / "clients" / "claude-code-requests.json").read_text())["samples"]
    return [(s["kind"], s["body"]) for s in samples if s["body"]]


@pytest.mark.parametrize(("kind", "raw"), claude_code_bodies(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_claude_code_body_parses(kind: str, raw: dict[str, Any]) -> None:
    request = parse_anthropic_request(json.dumps(raw).encode())
    assert request.model == raw["model"]
    assert len(request.system) == 3
    assert request.session_id == json.loads(raw["metadata"]["user_id"])["session_id"]
    assert request.max_tokens == raw["max_tokens"]
    assert request.stream is bool(raw.get("stream"))


def test_claude_code_details() -> None:
    bodies = dict(claude_code_bodies())
    main = parse_anthropic_request(bodies["main_turn_stream"])
    assert main.thinking.type == "adaptive" and main.effort == "high"
    assert [m.role for m in main.messages] == ["user", "system"]
    assert len(main.tools) == 24 and all(t.kind is ToolKind.CUSTOM for t in main.tools)
    latest = parse_anthropic_request(bodies["main_turn_stream_latest"])
    assert ToolKind.DEFERRED in {t.kind for t in latest.tools}
    haiku = parse_anthropic_request(bodies["main_turn_haiku_model"])
    assert haiku.thinking.type == "enabled" and haiku.thinking.budget_tokens == 31999
    title = parse_anthropic_request(bodies["title_generation_nonessential"])
    assert title.thinking.enabled is False
    assert title.output_format is not None and title.output_format.schema["required"] == ["title"]
    followup = parse_anthropic_request(bodies["followup_with_thinking_block"])
    assistant = followup.messages[2]
    assert isinstance(assistant.content[0], ThinkingBlock) and assistant.content[0].signature
    assert isinstance(assistant.content[1], ToolUseBlock)
    result = followup.messages[3].content[0]
    assert isinstance(result, ToolResultBlock)


def test_blocks_are_typed() -> None:
    request = parse_anthropic_request(
        body(
            system="be brief",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "look"}, image()]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "is_error": True,
                            "content": [{"type": "text", "text": "boom"}, image()],
                        },
                        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                    ],
                },
            ],
        )
    )
    assert request.system == (TextBlock(text="be brief"),)
    user, assistant, results = request.messages
    assert isinstance(user.content[1], ImageBlock) and user.content[1].format == "png"
    assert user.content[1].width == 1 and user.content[1].height == 1
    assert assistant.content[0] == ThinkingBlock(thinking="hmm", signature="sig")
    assert assistant.content[1] == RedactedThinkingBlock(data="opaque")
    assert assistant.content[2] == ToolUseBlock(id="t1", name="f", input={"a": 1})
    tool_result = results.content[0]
    assert isinstance(tool_result, ToolResultBlock) and tool_result.is_error
    assert tool_result.content[0] == TextBlock(text="boom")
    assert isinstance(tool_result.content[1], ImageBlock)
    assert results.content[1] == TextBlock(text="doc")


def test_sampling_and_misc_fields() -> None:
    request = parse_anthropic_request(
        body(
            temperature=0.5,
            top_p=1,
            top_k=5,
            stop_sequences=["END"],
            stream=True,
            tool_choice={"type": "tool", "name": "f"},
            context_management={"edits": []},
            some_future_field={"x": 1},
        )
    )
    assert (request.temperature, request.top_p, request.top_k) == (0.5, 1.0, 5)
    assert request.stop_sequences == ("END",)
    assert request.stream is True
    assert request.tool_choice is not None and request.tool_choice.name == "f"


def test_server_and_defined_tools() -> None:
    request = parse_anthropic_request(
        body(
            tools=[
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
                {"type": "bash_20250124", "name": "bash"},
                {"name": "later", "defer_loading": True},
                {"name": "f", "description": "d", "input_schema": {"type": "object"}},
            ]
        )
    )
    server, bash, later, custom = request.tools
    assert server.kind is ToolKind.SERVER and server.type == "web_search_20250305"
    assert bash.kind is ToolKind.CUSTOM and bash.input_schema is not None and bash.description
    assert later.kind is ToolKind.DEFERRED and later.input_schema is None
    assert custom.kind is ToolKind.CUSTOM and custom.input_schema == {"type": "object"}


def test_system_role_message_is_accepted_as_string_or_blocks() -> None:
    request = parse_anthropic_request(
        body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "note"},
                {"role": "system", "content": [{"type": "text", "text": "note 2"}]},
            ]
        )
    )
    assert [m.role for m in request.messages] == ["user", "system", "system"]


def test_empty_final_assistant_message_is_no_prefill() -> None:
    request = parse_anthropic_request(
        body(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}])
    )
    assert [m.role for m in request.messages] == ["user"]


def test_count_tokens_mode_needs_no_max_tokens_and_does_not_decode_images() -> None:
    raw = body(messages=[{"role": "user", "content": [image("image/jpeg", PNG_1PX)]}])
    del raw["max_tokens"]
    request = parse_anthropic_request(raw, count_tokens=True)
    assert request.max_tokens > 0
    with pytest.raises(LocalProtocolError) as err:
        parse_anthropic_request(raw)
    assert err.value.param == "messages.0.content.0.source.media_type"
    raw["messages"] = [{"role": "user", "content": "hi"}]
    with pytest.raises(LocalProtocolError) as err:
        parse_anthropic_request(raw)
    assert err.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ('{"device_id": "d", "account_uuid": "", "session_id": "9a186c88-c5ce-47da-9bc0-9e9ada9c22db"}',
         "9a186c88-c5ce-47da-9bc0-9e9ada9c22db"),
        ("user_abc_account__session_0e030eca-3f75-482c-a6f0-68e77c1fba51", "0e030eca-3f75-482c-a6f0-68e77c1fba51"),
        ("plain-user", ""),
        ("{not json", ""),
        ('{"session_id": 5}', ""),
    ],
)
def test_session_id_extraction(user_id: str, expected: str) -> None:
    assert session_id_from_user_id(user_id) == expected


BAD_CASES: list[tuple[str, Any, str]] = [
    ("not json", b"{", "request body"),
    ("not an object", b"[1]", "request body"),
    ("nan", b'{"model":"m","max_tokens":NaN,"messages":[]}', "request body"),
    ("bad utf-8", b'{"model":"\xff"}', "request body"),
    ("missing model", {"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ("model not string", body(model=5), "model"),
    ("empty model", body(model=" "), "model"),
    ("missing messages", {"model": "m", "max_tokens": 1}, "messages"),
    ("empty messages", body(messages=[]), "messages"),
    ("messages not a list", body(messages={}), "messages"),
    ("missing max_tokens", {"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ("max_tokens bool", body(max_tokens=True), "max_tokens"),
    ("max_tokens zero", body(max_tokens=0), "max_tokens"),
    ("bad role", body(messages=[{"role": "tool", "content": "x"}]), "messages.0.role"),
    ("missing content", body(messages=[{"role": "user"}]), "messages.0.content"),
    ("null content", body(messages=[{"role": "user", "content": None}]), "messages.0.content"),
    ("empty user content", body(messages=[{"role": "user", "content": ""}]), "messages.0.content"),
    ("block not object", body(messages=[{"role": "user", "content": ["x"]}]), "messages.0.content.0"),
    ("unknown block", body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages.0.content.0.type"),
    ("text not string", body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
     "messages.0.content.0.text"),
    ("url image", body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "http://x"}}]}]), "messages.0.content.0.source.type"),
    ("bmp image", body(messages=[{"role": "user", "content": [image("image/bmp")]}]),
     "messages.0.content.0.source.media_type"),
    ("mismatched image", body(messages=[{"role": "user", "content": [image("image/jpeg")]}]),
     "messages.0.content.0.source.media_type"),
    ("bad base64", body(messages=[{"role": "user", "content": [image(data="!!!")]}]),
     "messages.0.content.0.source.data"),
    ("empty image", body(messages=[{"role": "user", "content": [image(data="")]}]),
     "messages.0.content.0.source.data"),
    ("pdf document", body(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]),
     "messages.0.content.0.source.type"),
    ("tool_use in user", body(messages=[{"role": "user", "content": [
        {"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]), "messages.0.content.0.type"),
    ("tool_result in assistant", body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "tool_result", "tool_use_id": "a"}]}]), "messages.1.content.0.type"),
    ("thinking in user", body(messages=[{"role": "user", "content": [
        {"type": "thinking", "thinking": "x"}]}]), "messages.0.content.0.type"),
    ("tool_use input not object", body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "a", "name": "b", "input": [1]}]}]), "messages.1.content.0.input"),
    ("tool_use empty id", body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "", "name": "b", "input": {}}]}]), "messages.1.content.0.id"),
    ("tool_result bad item", body(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "audio"}]}]}]),
     "messages.0.content.0.content.0.type"),
    ("is_error not bool", body(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "a", "is_error": "yes"}]}]), "messages.0.content.0.is_error"),
    ("system role with image", body(messages=[{"role": "system", "content": [image()]}]),
     "messages.0.content.0.type"),
    ("system not text", body(system=[{"type": "image"}]), "system.0.type"),
    ("system wrong type", body(system=5), "system"),
    ("tools not list", body(tools={}), "tools"),
    ("tool without name", body(tools=[{"input_schema": {}}]), "tools.0.name"),
    ("tool without schema", body(tools=[{"name": "f"}]), "tools.0.input_schema"),
    ("tool schema not object", body(tools=[{"name": "f", "input_schema": []}]), "tools.0.input_schema"),
    ("duplicate tool", body(tools=[{"name": "f", "input_schema": {}}, {"name": "f", "input_schema": {}}]),
     "tools.1.name"),
    ("unknown tool type", body(tools=[{"type": "teleport_2030", "name": "t"}]), "tools.0.type"),
    ("tool_choice type", body(tool_choice={"type": "maybe"}), "tool_choice.type"),
    ("tool_choice tool name", body(tool_choice={"type": "tool"}), "tool_choice.name"),
    ("thinking type", body(thinking={"type": "deep"}), "thinking.type"),
    ("thinking budget", body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    ("effort type", body(output_config={"effort": 3}), "output_config.effort"),
    ("format type", body(output_config={"format": {"type": "xml"}}), "output_config.format.type"),
    ("metadata user_id", body(metadata={"user_id": 5}), "metadata.user_id"),
    ("stop_sequences item", body(stop_sequences=["a", 1]), "stop_sequences.1"),
    ("temperature", body(temperature="hot"), "temperature"),
    ("stream", body(stream="yes"), "stream"),
    ("deep json", b'{"model":' + b"[" * 100000 + b"]" * 100000 + b"}", "request body"),
    ("huge float", b'{"model":"m","max_tokens":1,"temperature":1e999,"messages":[]}', "request body"),
    ("deep tool input", body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "a", "name": "b", "input": {"x": nested(70)}}]}]), "messages.1.content.0.input"),
    ("deep schema", body(tools=[{"name": "f", "input_schema": {"a": nested(70)}}]), "tools.0.input_schema"),
]


@pytest.mark.parametrize(("case", "raw", "param"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_requests_name_the_field(case: str, raw: Any, param: str) -> None:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(LocalProtocolError) as err:
        parse_anthropic_request(data)
    exc = err.value
    assert exc.kind is ErrorKind.INVALID_REQUEST and exc.status_hint == 400
    assert exc.message.startswith(param)
    if param != "request body":
        assert exc.param == param


def test_image_over_five_megabytes_is_marked_for_a_refit() -> None:
    # The converter refits it, or refuses it without an image transform (tests/core/test_image_fit.py).
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024) + b"IEND\xaeB`\x82").decode()
    request = parse_anthropic_request(body(messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, image(data=big)]}]))
    block = request.messages[0].content[1]
    assert isinstance(block, ImageBlock) and block.refit is not None
    assert block.refit.required and block.refit.path == "messages.0.content.1"
    assert block.refit.reasons == (f"{5 * 1024 * 1024 + 16} bytes, over the {5 * 1024 * 1024}-byte limit",)


def test_jpeg_dimensions_and_declared_type() -> None:
    request = parse_anthropic_request(body(messages=[{"role": "user", "content": [image("image/jpeg", JPEG_HEAD)]}]))
    block = request.messages[0].content[0]
    assert isinstance(block, ImageBlock) and block.format == "jpeg"
    assert "data" not in repr(block)  # megabytes of base64 never end up in a log line


@pytest.mark.parametrize(
    ("media_type", "raw", "size"),
    [
        ("image/gif", b"GIF89a" + (300).to_bytes(2, "little") + (200).to_bytes(2, "little") + b"\x00" * 10, (300, 200)),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + (639).to_bytes(3, "little")
         + (479).to_bytes(3, "little") + b"\x00" * 4, (640, 480)),
        ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x04\x00\x00\xff\xc0\x00\x11\x08" + (100).to_bytes(2, "big")
         + (250).to_bytes(2, "big") + b"\x00" * 12 + b"\xff\xd9", (250, 100)),
        ("image/png", base64.b64decode(PNG_1PX), (1, 1)),
    ],
)
def test_image_formats_and_dimensions(media_type: str, raw: bytes, size: tuple[int, int]) -> None:
    data = base64.b64encode(raw).decode()
    request = parse_anthropic_request(body(messages=[{"role": "user", "content": [image(media_type, data)]}]))
    block = request.messages[0].content[0]
    assert isinstance(block, ImageBlock)
    assert block.format == media_type.split("/")[1]
    assert (block.width, block.height) == size
    assert block.decoded_size == len(raw)


def test_huge_integers_where_numbers_are_expected_are_a_400() -> None:
    with pytest.raises(LocalProtocolError) as err:
        parse_anthropic_request(json.dumps(body(temperature=10**400)).encode())
    assert err.value.param == "temperature"
