"""Responses API request parsing (``POST /v1/responses``): the mapping into the shared request
model, namespaces, web search, what is refused, the field-path errors, and conversion of the
result by the same converter as the other dialects."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.http._routing import Dialect, error_answer
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._model import (
    ImageBlock,
    Message,
    OutputFormat,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolKind,
    ToolResultBlock,
    ToolUseBlock,
)
from kiro_protocol.requests._openai import DEFAULT_MAX_TOKENS, parse_openai_request
from kiro_protocol.requests._responses import parse_responses_request
from kiro_protocol.requests._web_search import web_search_of

MODEL = "claude-sonnet-4-5"
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
CONFIG = ConversionConfig()
CODEX = Path(__file__).resolve().parents[1] / "fixtures" / "clients" / "codex-cli-0.169-responses-request.json"
FN: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
NAMESPACE: dict[str, Any] = {
    "type": "namespace",
    "name": "agents",
    "description": "Sub-agents.",
    "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}],
}


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": MODEL, "input": "Hi"}
    out.update(fields)
    return out


def refused(payload: dict[str, Any]) -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as info:
        parse_responses_request(payload)
    assert info.value.status_hint == 400 and info.value.kind is ErrorKind.INVALID_REQUEST
    return info.value


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": list(parts)}


def text(t: str) -> dict[str, Any]:
    return {"type": "input_text", "text": t}


# -- input ------------------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    parsed = parse_responses_request(json.dumps(body(input="Hello")).encode())
    request = parsed.request
    assert request.model == MODEL and request.system == ()
    assert request.messages == (Message(role="user", content=(TextBlock(text="Hello"),)),)
    assert request.max_tokens == DEFAULT_MAX_TOKENS and not request.stream and request.tools == ()


def test_instructions_and_leading_developer_messages_are_the_system_prompt() -> None:
    parsed = parse_responses_request(
        body(
            instructions="Be brief.",
            input=[
                {"type": "message", "role": "developer", "content": [text("Dev rules.")]},
                {"role": "system", "content": "Sys rules."},
                user(text("Question")),
                {"role": "developer", "content": "Later note."},
                {"role": "user", "content": "More"},
            ],
        )
    )
    request = parsed.request
    assert [b.text for b in request.system] == ["Be brief.", "Dev rules.", "Sys rules."]
    assert [m.role for m in request.messages] == ["user", "system", "user"]
    assert request.messages[1].content == (TextBlock(text="Later note."),)
    assert parsed.instructions == "Be brief."


def test_a_tool_round_trip_becomes_one_assistant_turn_and_one_user_turn() -> None:
    parsed = parse_responses_request(
        body(
            tools=[FN],
            input=[
                user(text("Weather in Paris and Rome?")),
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}], "encrypted_content": "opaque"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_p", "name": "get_weather", "arguments": '{"city":"Paris"}'},
                {"type": "function_call", "call_id": "call_r", "name": "get_weather", "arguments": ""},
                {"type": "function_call_output", "call_id": "call_p", "output": "18C"},
                {"type": "function_call_output", "call_id": "call_r", "output": [text("21C")]},
                {"role": "user", "content": "Thanks"},
            ],
        )
    )
    user_turn, assistant_turn, results = parsed.request.messages
    assert user_turn.role == "user"
    assert assistant_turn == Message(
        role="assistant",
        content=(
            ThinkingBlock(thinking="Two cities."),
            TextBlock(text="Checking."),
            ToolUseBlock(id="call_p", name="get_weather", input={"city": "Paris"}),
            ToolUseBlock(id="call_r", name="get_weather", input={}),
        ),
    )
    assert results.content == (
        ToolResultBlock(tool_use_id="call_p", content=(TextBlock(text="18C"),)),
        ToolResultBlock(tool_use_id="call_r", content=(TextBlock(text="21C"),)),
        TextBlock(text="Thanks"),
    )
    kiro = convert_request(parsed.request, config=CONFIG, continuation_id="c")
    assert lint_kiro_body(json.loads(kiro.body("arn:aws:codewhisperer:us-east-1:1:profile/x"))) == []


def test_the_same_conversation_converts_to_the_same_kiro_body_as_chat_completions() -> None:
    responses = parse_responses_request(
        body(
            tools=[FN],
            input=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            ],
        )
    ).request
    chat = parse_openai_request(
        {
            "model": MODEL,
            "tools": [{"type": "function", "function": {k: v for k, v in FN.items() if k != "type"}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            ],
        }
    )
    one = convert_request(responses, config=CONFIG, continuation_id="c")
    two = convert_request(chat, config=CONFIG, continuation_id="c")
    assert one.body("arn") == two.body("arn")


def test_reasoning_items_prefer_the_full_text_and_empty_ones_vanish() -> None:
    full = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "short"}], "content": [{"type": "reasoning_text", "text": "long thought"}]}
    empty: dict[str, Any] = {"type": "reasoning", "summary": [], "encrypted_content": None}
    request = parse_responses_request(body(input=[user(text("q")), full, empty, {"role": "assistant", "content": "a"}, user(text("r"))])).request
    assert request.messages[1].content == (ThinkingBlock(thinking="long thought"), TextBlock(text="a"))
    thinking_off = convert_request(request, config=CONFIG, continuation_id="c")
    assert "long thought" not in thinking_off.body().decode(), "a reasoning item is not sent when thinking is off"
    thinking_on = convert_request(
        parse_responses_request(body(reasoning={"effort": "low"}, input=[user(text("q")), full, {"role": "assistant", "content": "a"}, user(text("r"))])).request,
        config=CONFIG,
        continuation_id="c",
    )
    assert lint_kiro_body(json.loads(thinking_on.body("arn"))) == []


def test_images_in_user_messages_and_function_outputs() -> None:
    url = f"data:image/png;base64,{PNG}"
    request = parse_responses_request(
        body(
            input=[
                user(text("look"), {"type": "input_image", "image_url": url, "detail": "auto"}),
                {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_image", "image_url": url}]},
            ]
        )
    ).request
    image = request.messages[0].content[1]
    assert isinstance(image, ImageBlock) and image.format == "png"
    result = request.messages[2].content[0]
    assert isinstance(result, ToolResultBlock) and isinstance(result.content[0], ImageBlock)


@pytest.mark.parametrize(
    ("part", "param", "words"),
    [
        ({"type": "input_image", "image_url": "https://example.com/cat.png"}, "input.0.content.0.image_url", "remote https URL"),
        ({"type": "input_image", "file_id": "file_1"}, "input.0.content.0.file_id", "uploaded files"),
        ({"type": "input_image", "detail": "auto"}, "input.0.content.0.image_url", "field required"),
        ({"type": "input_file", "file_data": "x"}, "input.0.content.0.type", "input_file"),
        ({"type": "input_audio"}, "input.0.content.0.type", "got 'input_audio'"),
    ],
)
def test_refused_user_parts(part: dict[str, Any], param: str, words: str) -> None:
    error = refused(body(input=[user(part)]))
    assert error.param == param and words in error.message and error.message.startswith(f"{param}: ")


def test_assistant_parts_and_refusals() -> None:
    request = parse_responses_request(
        body(
            input=[
                user(text("q")),
                {"role": "assistant", "content": [{"type": "output_text", "text": "a"}, {"type": "refusal", "refusal": "no"}, text("b")]},
                user(text("r")),
            ]
        )
    ).request
    assert request.messages[1].content == (TextBlock(text="a"), TextBlock(text="no"), TextBlock(text="b"))
    assert refused(body(input=[{"role": "assistant", "content": [{"type": "input_image", "image_url": "x"}]}])).param == "input.0.content.0.type"
    assert refused(body(input=[{"role": "developer", "content": [{"type": "output_text", "text": "x"}]}])).param == "input.0.content.0.type"


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([], "input"),
        ("", "input"),
        ([{"role": "developer", "content": "only rules"}], "input"),
        ([{"type": "item_reference", "id": "msg_1"}], "input.0"),
        ([{"type": "computer_call_output", "call_id": "c"}], "input.0.type"),
        ([{"type": "custom_tool_call", "call_id": "c", "name": "n", "input": ""}], "input.0.type"),
        ([{"content": "no role or type"}], "input.0.type"),
        ([{"role": "tool", "content": "x"}], "input.0.role"),
        ([{"role": "user"}], "input.0.content"),
        ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}], "input.0.arguments"),
        ([{"type": "function_call", "call_id": "", "name": "f", "arguments": "{}"}], "input.0.call_id"),
        ([{"type": "function_call_output", "call_id": "c"}], "input.0.output"),
        ([{"type": "reasoning", "summary": [{"type": "reasoning_text", "text": "x"}]}], "input.0.summary.0.type"),
        ([{"type": "reasoning", "summary": [], "encrypted_content": 5}], "input.0.encrypted_content"),
        ("x" and 5, "input"),
    ],
)
def test_malformed_input_names_the_field(items: Any, param: str) -> None:
    assert refused(body(input=items)).param == param


def test_records_of_provider_run_tools_are_dropped() -> None:
    request = parse_responses_request(
        body(
            input=[
                user(text("news?")),
                {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "news"}},
                {"role": "assistant", "content": "Here is the news."},
                user(text("thanks")),
            ]
        )
    ).request
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]


# -- tools ----------------------------------------------------------------------------------------


def test_namespace_tools_are_flattened_and_mapped_back() -> None:
    parsed = parse_responses_request(
        body(
            tools=[FN, NAMESPACE],
            input=[
                user(text("go")),
                {"type": "function_call", "call_id": "c1", "name": "spawn", "namespace": "agents", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok", "name": "spawn", "namespace": "agents"},
            ],
        )
    )
    assert [t.name for t in parsed.request.tools] == ["get_weather", "agents__spawn"]
    assert dict(parsed.namespaces) == {"agents__spawn": ("agents", "spawn")}
    assert parsed.request.messages[1].content == (ToolUseBlock(id="c1", name="agents__spawn", input={}),)
    kiro = convert_request(parsed.request, config=CONFIG, continuation_id="c")
    assert lint_kiro_body(json.loads(kiro.body("arn"))) == []
    assert '"name":"agents__spawn"' in kiro.body().decode()


def test_a_long_namespaced_name_is_shortened_for_kiro_and_mapped_back() -> None:
    long_ns = {**NAMESPACE, "name": "n" * 40, "tools": [{"type": "function", "name": "t" * 40}]}
    parsed = parse_responses_request(body(tools=[long_ns]))
    flat = "n" * 40 + "__" + "t" * 40
    plan = convert_request(parsed.request, config=CONFIG, continuation_id="c").response_plan
    (upstream,) = plan.tool_names
    assert len(upstream) <= 64 and plan.client_tool_name(upstream) == flat
    assert parsed.namespaces[flat] == ("n" * 40, "t" * 40)


@pytest.mark.parametrize(
    ("tools", "param", "words"),
    [
        ([FN, FN], "tools.1.name", "duplicate"),
        ([{**FN, "name": "agents__spawn"}, NAMESPACE], "tools.1.tools.0.name", "duplicate"),
        ([{"type": "custom", "name": "apply_patch"}], "tools.0.type", "custom"),
        ([{"type": "file_search", "vector_store_ids": []}], "tools.0.type", "hosted tools"),
        ([{"type": "function", "name": " "}], "tools.0.name", "empty"),
        ([{**FN, "parameters": []}], "tools.0.parameters", "object"),
        ([{**NAMESPACE, "tools": [{"type": "custom", "name": "x"}]}], "tools.0.tools.0.type", "namespace"),
        ([{"type": "web_search", "filters": {"allowed_domains": [""]}}], "tools.0.filters.allowed_domains.0", "empty"),
        ({"type": "function"}, "tools", "array"),
    ],
)
def test_refused_tools(tools: Any, param: str, words: str) -> None:
    error = refused(body(tools=tools))
    assert error.param == param and words in error.message


def test_web_search_alone_or_forced_is_a_search_beside_functions_it_is_left_out() -> None:
    lone = parse_responses_request(body(input="latest kiro news", tools=[{"type": "web_search", "filters": {"allowed_domains": ["Example.com"]}}])).request
    search = web_search_of(lone)
    assert search is not None and search.query == "latest kiro news" and search.allowed_domains == ("example.com",)
    beside = parse_responses_request(body(tools=[FN, {"type": "web_search", "external_web_access": False}])).request
    assert web_search_of(beside) is None
    assert [t.kind for t in beside.tools] == [ToolKind.CUSTOM, ToolKind.SERVER]
    kiro = convert_request(beside, config=CONFIG, continuation_id="c")
    assert "web_search" not in kiro.body().decode() and kiro.server_tools == ("web_search",)
    forced = parse_responses_request(body(tools=[FN, {"type": "web_search_preview"}], tool_choice={"type": "web_search_preview"})).request
    assert web_search_of(forced) is not None
    assert refused(body(tools=[FN], tool_choice={"type": "web_search_preview"})).param == "tool_choice.type"


def test_tool_choice() -> None:
    def choice(value: Any, tools: list[Any] | None = None, **extra: Any) -> ToolChoice | None:
        return parse_responses_request(body(tools=[FN, NAMESPACE] if tools is None else tools, tool_choice=value, **extra)).request.tool_choice

    assert choice("auto") == ToolChoice(type="auto")
    assert choice("none") == ToolChoice(type="none")
    assert choice("required") == ToolChoice(type="any")
    assert choice({"type": "function", "name": "get_weather"}) == ToolChoice(type="tool", name="get_weather")
    assert choice({"type": "function", "name": "spawn"}) == ToolChoice(type="tool", name="agents__spawn")
    assert choice({"type": "function", "name": "agents__spawn"}) == ToolChoice(type="tool", name="agents__spawn")
    assert choice({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]}) == ToolChoice(type="any")
    assert choice("auto", tools=[]) is None
    assert choice(None, parallel_tool_calls=False) == ToolChoice(disable_parallel_tool_use=True)
    assert choice("required", parallel_tool_calls=False) == ToolChoice(type="any", disable_parallel_tool_use=True)
    twice = {**NAMESPACE, "name": "other"}
    for value, tools, param in (
        ("sometimes", None, "tool_choice"),
        ({"type": "function", "name": "nope"}, None, "tool_choice.name"),
        ({"type": "function", "name": "spawn"}, [NAMESPACE, twice], "tool_choice.name"),
        ({"type": "mcp", "server_label": "x"}, None, "tool_choice.type"),
        ("required", [], "tool_choice"),
        ({"type": "allowed_tools", "mode": "sometimes", "tools": []}, None, "tool_choice.mode"),
    ):
        assert refused(body(tools=[FN, NAMESPACE] if tools is None else tools, tool_choice=value)).param == param


# -- other fields -----------------------------------------------------------------------------------


def test_reasoning_effort_maps_to_adaptive_thinking() -> None:
    def parse(reasoning: Any) -> Any:
        return parse_responses_request(body(reasoning=reasoning))

    high = parse({"effort": "high", "summary": "detailed"})
    assert high.request.thinking == ThinkingConfig(type="adaptive") and high.request.effort == "high"
    assert (high.reasoning_effort, high.reasoning_summary) == ("high", "detailed")
    assert parse({"effort": "xhigh"}).request.effort == "max"
    assert parse({"effort": "minimal"}).request.effort == "low"
    for off in ({"effort": "none"}, {"summary": "auto"}, None, {"generate_summary": "concise"}):
        assert not parse(off).request.thinking.enabled, off
    assert parse({"generate_summary": "concise"}).reasoning_summary == "concise"
    assert refused(body(reasoning={"effort": "extreme"})).param == "reasoning.effort"
    assert refused(body(reasoning={"summary": "long"})).param == "reasoning.summary"
    assert refused(body(reasoning="high")).param == "reasoning"


def test_text_format_and_max_output_tokens() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    parsed = parse_responses_request(
        body(max_output_tokens=123, text={"format": {"type": "json_schema", "name": "answer", "description": "d", "schema": schema, "strict": True}, "verbosity": "low"})
    )
    assert parsed.request.max_tokens == 123 and parsed.max_output_tokens == 123
    assert parsed.request.output_format == OutputFormat(schema=schema)
    assert parsed.text_format["name"] == "answer" and parsed.text_verbosity == "low"
    assert parse_responses_request(body(text={"format": {"type": "json_object"}})).request.output_format == OutputFormat(schema={"type": "object"})
    assert parse_responses_request(body(text={"format": {"type": "text"}})).request.output_format is None
    assert parse_responses_request(body(text={})).request.output_format is None
    assert parse_responses_request(body(text={"verbosity": "high"})).text_verbosity == "high"
    assert refused(body(text={"format": {"type": "json_schema", "name": "a"}})).param == "text.format.schema"
    assert refused(body(text={"format": {"type": "yaml"}})).param == "text.format.type"
    assert refused(body(text={"verbosity": "loud"})).param == "text.verbosity"
    assert refused(body(max_output_tokens=0)).param == "max_output_tokens"


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"store": True}, "store", "keeps no responses"),
        ({"previous_response_id": "resp_1"}, "previous_response_id", "keeps no responses"),
        ({"conversation": "conv_1"}, "conversation", "keeps no responses"),
        ({"background": True}, "background", "keeps no responses"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "saved prompts"),
        ({"temperature": 3}, "temperature", "between"),
        ({"top_p": -0.1}, "top_p", "between"),
        ({"top_logprobs": 21}, "top_logprobs", "at most 20"),
        ({"truncation": "middle"}, "truncation", "expected one of"),
        ({"metadata": {"k": 1}}, "metadata.k", "string"),
        ({"include": ["x", 1]}, "include.1", "string"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "boolean"),
        ({"client_metadata": []}, "client_metadata", "object"),
        ({"model": ""}, "model", "empty"),
        ({"input": None}, "input", "field required"),
    ],
)
def test_refused_fields(fields: dict[str, Any], param: str, words: str) -> None:
    error = refused(body(**fields))
    assert error.param == param and words in error.message
    rendered = json.loads(error_answer(error, Dialect.RESPONSES).body)
    assert rendered == {"error": {"message": error.message, "type": "invalid_request_error", "param": param, "code": "invalid_request"}}


def test_accepted_and_echoed_fields() -> None:
    parsed = parse_responses_request(
        body(
            stream=True,
            store=False,
            temperature=0.5,
            top_p=1,
            metadata={"team": "a"},
            prompt_cache_key=" thread-1 ",
            user="u",
            safety_identifier="s",
            service_tier="auto",
            include=["reasoning.encrypted_content"],
            truncation="auto",
            top_logprobs=3,
            max_tool_calls=5,
            stream_options={"include_obfuscation": False},
            client_metadata={"x": "y"},
            some_future_field={"ignored": True},
        )
    )
    assert parsed.request.stream and parsed.request.temperature == 0.5 and parsed.request.top_p == 1
    assert parsed.request.session_id == "thread-1", "prompt_cache_key keeps one Kiro conversation id per thread"
    assert dict(parsed.metadata) == {"team": "a"} and parsed.include == ("reasoning.encrypted_content",)
    assert parsed.prompt_cache_key == " thread-1 " and parsed.truncation == "auto" and parsed.tool_choice == "auto"
    assert parse_responses_request(body()).parallel_tool_calls


def test_the_body_must_be_a_json_object() -> None:
    for raw in (b"{not json", b"[1]", "5"):
        with pytest.raises(LocalProtocolError):
            parse_responses_request(raw)
    with pytest.raises(LocalProtocolError):
        parse_responses_request(5)  # type: ignore[arg-type]
    assert refused({"input": "x"}).param == "model"


def test_the_captured_codex_request_converts() -> None:
    capture = json.loads(CODEX.read_text())["request"]["body"]
    parsed = parse_responses_request(json.dumps(capture).encode())
    request = parsed.request
    assert request.stream and request.session_id == capture["prompt_cache_key"]
    assert request.system and request.system[0].text.startswith("You are a coding agent")
    assert [m.role for m in request.messages] == ["user"] and request.messages[0].content[-1] == TextBlock(text="say hi")
    assert not request.thinking.enabled, "a summary alone does not turn thinking on"
    names = [t.name for t in request.tools if t.kind is ToolKind.CUSTOM]
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names
    assert parsed.namespaces["multi_agent_v1__spawn_agent"] == ("multi_agent_v1", "spawn_agent")
    assert web_search_of(request) is None, "Codex's web_search beside its functions is left out"
    kiro = convert_request(request, config=CONFIG, continuation_id="c")
    assert lint_kiro_body(json.loads(kiro.body("arn"))) == []
    assert kiro.server_tools == ("web_search",)
