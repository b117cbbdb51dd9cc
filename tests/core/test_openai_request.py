"""OpenAI Chat Completions request parsing: the mapping into the shared request model, the
field-path errors, and conversion of the result by the same converter as the Anthropic side."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kiro_protocol.requests._anthropic import parse_anthropic_request
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.http._error_bodies import error_body_for
from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.requests._openai import DEFAULT_MAX_TOKENS, parse_openai_request
from kiro_protocol.requests._model import (
    ImageBlock,
    Message,
    OutputFormat,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

MODEL = "claude-sonnet-4-5"
# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
CONFIG = ConversionConfig()


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    out.update(fields)
    return out


def with_image(url: str) -> dict[str, Any]:
    """A request whose only message is one image part with ``url``."""
    return body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def with_call(call: dict[str, Any]) -> dict[str, Any]:
    """A request whose assistant message makes the tool call ``call``."""
    return body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}])


def fn_call(arguments: str) -> dict[str, Any]:
    return {"id": "a", "type": "function", "function": {"name": "f", "arguments": arguments}}


def fn_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def convert(obj: dict[str, Any]) -> dict[str, Any]:
    """Parse and convert; the Kiro body as JSON."""
    result = convert_request(parse_openai_request(obj), config=CONFIG, continuation_id="cont")
    state: dict[str, Any] = json.loads(result.body())["conversationState"]
    return state


def fails(obj: object, param: str | None, *, contains: str = "") -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as info:
        parse_openai_request(obj)  # type: ignore[arg-type]
    err = info.value
    assert err.param == param, err.message
    assert err.status_hint == 400 and err.kind is ErrorKind.INVALID_REQUEST
    if param is not None:
        assert err.message.startswith(f"{param}: ")
    assert contains in err.message
    return err


# -- the mapping --------------------------------------------------------------------------------


def test_minimal_request() -> None:
    r = parse_openai_request(json.dumps(body()).encode())
    assert r.model == MODEL and r.messages == (Message(role="user", content=(TextBlock(text="Hi"),)),)
    assert r.stream is False and r.include_usage is False and r.max_tokens == DEFAULT_MAX_TOKENS
    assert r.system == () and r.tools == () and r.tool_choice is None and not r.thinking.enabled


def test_leading_system_and_developer_messages_form_the_system_prompt() -> None:
    r = parse_openai_request(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use English."}]},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "Later note."},
                {"role": "user", "content": "Again"},
            ]
        )
    )
    assert r.system == (TextBlock(text="Be brief."), TextBlock(text="Use English."))
    # A system message mid-conversation stays in place (the converter folds it as user-side text).
    assert [m.role for m in r.messages] == ["user", "system", "user"]
    state = convert(
        body(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    )
    first = state["history"][0]["userInputMessage"]["content"]
    assert "Be brief." in first and state["currentMessage"]["userInputMessage"]["content"] == "Hi"


def test_user_content_parts_with_a_data_uri_image() -> None:
    r = parse_openai_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                    ],
                }
            ]
        )
    )
    text, image = r.messages[0].content
    assert text == TextBlock(text="What is this?")
    assert isinstance(image, ImageBlock) and image.format == "png" and image.width == 1 and image.data == PNG
    state = convert(with_image(f"data:image/png;base64,{PNG}"))
    assert state["currentMessage"]["userInputMessage"]["images"] == [{"format": "png", "source": {"bytes": PNG}}]


def test_assistant_tool_calls_and_tool_results_round_trip_to_kiro() -> None:
    obj = body(
        messages=[
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                    {"id": "call_2", "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                },
            }
        ],
    )
    r = parse_openai_request(obj)
    assert r.messages[1].content == (
        ToolUseBlock(id="call_1", name="get_weather", input={"city": "Paris"}),
        ToolUseBlock(id="call_2", name="get_weather", input={"city": "Tokyo"}),
    )
    assert r.messages[2].content == (ToolResultBlock(tool_use_id="call_1", content=(TextBlock(text="18C"),)),)
    assert r.tools == (
        Tool(
            name="get_weather",
            description="Weather by city",
            input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        ),
    )
    state = convert(obj)
    current = state["currentMessage"]["userInputMessage"]
    results = current["userInputMessageContext"]["toolResults"]
    assert [(x["toolUseId"], x["content"][0]["text"]) for x in results] == [("call_1", "18C"), ("call_2", "25C")]
    assert current["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"] == "get_weather"
    uses = state["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert [(u["toolUseId"], u["input"]) for u in uses] == [
        ("call_1", {"city": "Paris"}),
        ("call_2", {"city": "Tokyo"}),
    ]


def test_legacy_functions_function_call_and_function_role_pair_up() -> None:
    obj = body(
        messages=[
            {"role": "user", "content": "Time?"},
            {"role": "assistant", "content": None, "function_call": {"name": "now", "arguments": "{}"}},
            {"role": "function", "name": "now", "content": "12:00"},
        ],
        functions=[{"name": "now", "parameters": {"type": "object", "properties": {}}}],
        function_call="auto",
    )
    r = parse_openai_request(obj)
    (use,) = r.messages[1].content
    (result,) = r.messages[2].content
    assert isinstance(use, ToolUseBlock) and isinstance(result, ToolResultBlock)
    assert use.name == "now" and result.tool_use_id == use.id
    assert r.tools[0].name == "now" and r.tool_choice == ToolChoice(type="auto")
    results = convert(obj)["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == use.id and results[0]["content"] == [{"text": "12:00"}]


def test_an_unanswered_function_result_is_kept_as_text() -> None:
    obj = body(messages=[{"role": "user", "content": "x"}, {"role": "function", "name": "ghost", "content": "boo"}])
    current = convert(obj)["currentMessage"]["userInputMessage"]
    assert "boo" in current["content"] and "toolResults" not in current["userInputMessageContext"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", ToolChoice(type="auto")),
        ("none", ToolChoice(type="none")),
        ("required", ToolChoice(type="any")),
        ({"type": "function", "function": {"name": "f"}}, ToolChoice(type="tool", name="f")),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, ToolChoice(type="any")),
    ],
)
def test_tool_choice(choice: object, expected: ToolChoice) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert parse_openai_request(body(tools=tools, tool_choice=choice)).tool_choice == expected


def test_parallel_tool_calls_false_is_kept() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    r = parse_openai_request(body(tools=tools, parallel_tool_calls=False))
    assert r.tool_choice == ToolChoice(type="auto", disable_parallel_tool_use=True)


def test_a_function_without_parameters_takes_no_arguments() -> None:
    r = parse_openai_request(body(tools=[{"type": "function", "function": {"name": "ping"}}]))
    assert r.tools[0].input_schema == {"type": "object", "properties": {}}


def test_forced_tool_reaches_kiro_as_an_instruction() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    state = convert(body(tools=tools, tool_choice={"type": "function", "function": {"name": "lookup"}}))
    assert "You must call the tool lookup" in state["history"][0]["userInputMessage"]["content"]


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50}, 50),
        ({"max_tokens": 100, "max_completion_tokens": 50}, 50),
    ],
)
def test_max_tokens(fields: dict[str, Any], max_tokens: int) -> None:
    r = parse_openai_request(body(**fields))
    assert r.max_tokens == max_tokens
    assert convert(body(**fields)) is not None


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ("END",)), (["a", "b"], ("a", "b")), (None, ()), ("", ()), (["\n", " "], ("\n", " "))],
)
def test_stop(stop: object, expected: tuple[str, ...]) -> None:
    r = parse_openai_request(body(stop=stop))
    assert r.stop_sequences == expected
    plan = convert_request(r, config=CONFIG, continuation_id="c").response_plan
    assert plan.stop_sequences == expected


@pytest.mark.parametrize(
    ("effort", "thinking", "kiro_effort"),
    [
        ("none", False, ""),
        ("minimal", True, "low"),
        ("low", True, "low"),
        ("medium", True, "medium"),
        ("HIGH", True, "high"),
        ("xhigh", True, "max"),
    ],
)
def test_reasoning_effort_maps_to_adaptive_thinking(effort: str, thinking: bool, kiro_effort: str) -> None:
    r = parse_openai_request(body(reasoning_effort=effort))
    assert r.thinking.enabled is thinking and r.effort == kiro_effort
    result = convert_request(r, config=CONFIG, continuation_id="c")
    assert result.response_plan.thinking is thinking
    lead = json.loads(result.body())["conversationState"].get("history", [{}])[0]
    if thinking:
        assert f"<thinking_effort>{kiro_effort}</thinking_effort>" in lead["userInputMessage"]["content"]
    else:
        assert r.thinking == ThinkingConfig() and lead == {}


def test_stream_and_include_usage() -> None:
    r = parse_openai_request(body(stream=True, stream_options={"include_usage": True}))
    assert r.stream and r.include_usage
    assert convert_request(r, config=CONFIG, continuation_id="c").response_plan.stream
    # Usage chunks only exist in streams: without stream, include_usage is moot.
    assert not parse_openai_request(body(stream_options={"include_usage": True})).include_usage


def test_sampling_parameters_are_validated_and_not_forwarded() -> None:
    obj = body(temperature=0.2, top_p=0.9, presence_penalty=1, frequency_penalty=-1, seed=7, user="u1",
               logit_bias={"50256": -100}, logprobs=False, n=1, metadata={"k": "v"}, store=False)
    r = parse_openai_request(obj)
    assert r.temperature == 0.2 and r.top_p == 0.9
    assert convert(obj) == convert(body())


def test_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    r = parse_openai_request(body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert r.output_format == OutputFormat(schema=schema)
    json_object = parse_openai_request(body(response_format={"type": "json_object"}))
    assert json_object.output_format == OutputFormat(schema={"type": "object"})
    assert parse_openai_request(body(response_format={"type": "text"})).output_format is None


def test_reasoning_content_sent_back_becomes_thinking_history() -> None:
    r = parse_openai_request(
        body(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "reasoning_content": "because"},
                {"role": "user", "content": "c"},
            ]
        )
    )
    assert r.messages[1].content == (ThinkingBlock(thinking="because"), TextBlock(text="b"))


def test_assistant_refusal_and_content_parts_are_text() -> None:
    r = parse_openai_request(
        body(messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}]},
            {"role": "user", "content": "c"},
        ])
    )
    assert r.messages[1].content == (TextBlock(text="x"), TextBlock(text="no"))


def test_the_same_conversation_converts_alike_in_both_dialects() -> None:
    """One core, two dialects: equal conversations give equal Kiro bodies."""
    openai = body(
        messages=[
            {"role": "system", "content": "Sys"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": '{"a":1}'}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "R"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        max_tokens=100,
    )
    anthropic = {
        "model": MODEL,
        "max_tokens": 100,
        "system": "Sys",
        "messages": [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "R"}]},
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
    }
    a = convert_request(parse_anthropic_request(anthropic), config=CONFIG, continuation_id="c")
    o = convert_request(parse_openai_request(openai), config=CONFIG, continuation_id="c")
    assert o.body() == a.body()


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "param", "contains"),
    [
        (b"{not json", None, "invalid JSON"),
        (b"[1]", None, "expected a JSON object"),
        ({"messages": []}, "model", "field required"),
        (body(model=" "), "model", "must not be empty"),
        ({"model": MODEL}, "messages", "field required"),
        (body(messages=[]), "messages", "at least one"),
        (body(messages=[{"role": "system", "content": "only"}]), "messages", "user message"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages.0.role", "robot"),
        (body(messages=[{"role": "user"}]), "messages.0.content", "field required"),
        (body(messages=[{"role": "user", "content": 5}]), "messages.0.content", "expected an array"),
        (body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages.0.content.0.type", "video"),
        (
            body(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            "messages.0.content.0.type",
            "not supported",
        ),
        (
            with_image("https://example.com/cat.png"),
            "messages.0.content.0.image_url.url",
            "remote https URL",
        ),
        (
            with_image("data:image/png,abc"),
            "messages.0.content.0.image_url.url",
            "base64",
        ),
        (
            with_image(f"data:image/jpeg;base64,{PNG}"),
            "messages.0.content.0.image_url.url",
            "PNG data",
        ),
        (
            with_image("data:image/svg+xml;base64,AAAA"),
            "messages.0.content.0.image_url.url",
            "unsupported image type",
        ),
        (
            with_image("data:image/png;base64,%%%"),
            "messages.0.content.0.image_url.url",
            "base64",
        ),
        (
            body(messages=[{"role": "system", "content": [{"type": "image_url"}]}, {"role": "user", "content": "x"}]),
            "messages.0.content.0.type",
            "text",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages.0.tool_call_id", "expected a string"),
        (body(messages=[{"role": "tool", "tool_call_id": "", "content": "x"}]), "messages.0.tool_call_id", "empty"),
        (body(messages=[{"role": "function", "content": "x"}]), "messages.0.name", "expected a string"),
        (
            with_call(fn_call("{bad")),
            "messages.1.tool_calls.0.function.arguments",
            "not valid JSON",
        ),
        (
            with_call(fn_call("[1]")),
            "messages.1.tool_calls.0.function.arguments",
            "JSON array",
        ),
        (
            with_call(fn_call('{"a": NaN}')),
            "messages.1.tool_calls.0.function.arguments",
            "not valid JSON",
        ),
        (
            with_call({"id": "a", "type": "custom", "custom": {}}),
            "messages.1.tool_calls.0.type",
            "function",
        ),
        (
            with_call({"type": "function", "function": {"name": "f"}}),
            "messages.1.tool_calls.0.id",
            "expected a string",
        ),
        (body(tools=[{"type": "web_search"}]), "tools.0.type", "function"),
        (body(tools=[{"type": "function", "function": {"name": ""}}]), "tools.0.function.name", "empty"),
        (
            body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools.0.function.parameters",
            "object",
        ),
        (
            body(tools=[fn_tool("f"), fn_tool("f")]),
            "tools.1.function.name",
            "duplicate",
        ),
        (body(tools=[fn_tool("f")], functions=[{"name": "g"}]), "functions", "not both"),
        (body(tool_choice="any"), "tool_choice", '"required"'),
        (body(tool_choice="required"), "tool_choice", "requires tools"),
        (
            body(tools=[fn_tool("f")], tool_choice={"type": "function", "function": {"name": "g"}}),
            "tool_choice.function.name",
            "not in tools",
        ),
        (body(tool_choice={"type": "mcp"}), "tool_choice.type", "mcp"),
        (body(function_call={"name": "g"}), "function_call.name", "not in tools"),
        (body(n=2), "n", "only one choice"),
        (body(n=0), "n", "at least 1"),
        (body(max_tokens=0), "max_tokens", "at least 1"),
        (body(max_completion_tokens="9"), "max_completion_tokens", "integer"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
        (body(stop=["a", ""]), "stop.1", "empty"),
        (body(stop=5), "stop", "expected an array"),
        (body(temperature=3), "temperature", "between 0 and 2"),
        (body(top_p="high"), "top_p", "number"),
        (body(reasoning_effort="extreme"), "reasoning_effort", "extreme"),
        (body(stream="yes"), "stream", "boolean"),
        (body(stream_options={"include_usage": 1}), "stream_options.include_usage", "boolean"),
        (body(modalities=["text", "audio"]), "modalities.1", "audio"),
        (body(audio={"voice": "alloy"}), "audio", "not supported"),
        (body(response_format={"type": "xml"}), "response_format.type", "xml"),
        (
            body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
            "expected a string",
        ),
    ],
)
def test_errors_name_the_field(obj: object, param: str | None, contains: str) -> None:
    err = fails(obj, param, contains=contains)
    rendered = json.loads(error_body_for(err, dialect="openai"))
    assert rendered == {
        "error": {"message": err.message, "type": "invalid_request_error", "param": param, "code": "invalid_request"}
    }


def test_deeply_nested_arguments_are_refused_without_recursion_trouble() -> None:
    deep = "[" * 200 + "]" * 200
    fails(
        with_call(fn_call('{"a":' + deep + "}")),
        "messages.1.tool_calls.0.function.arguments",
        contains="nested",
    )


def test_unknown_models_are_a_404_from_the_converter() -> None:
    with pytest.raises(LocalProtocolError) as info:
        convert(body(model="gpt-4o"))
    assert info.value.status_hint == 404
    assert json.loads(error_body_for(info.value, dialect="openai"))["error"]["type"] == "not_found_error"


def test_the_remote_url_message_tells_how_to_fix_it() -> None:
    err = fails(
        body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]),
        "messages.0.content.0.image_url.url",
    )
    assert "not fetched" in err.message and "data:image/" in err.message


def test_legacy_function_results_answer_the_latest_unanswered_call_of_their_name() -> None:
    r = parse_openai_request(
        body(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "function_call": {"name": "a", "arguments": "{}"}},
                {"role": "assistant", "function_call": {"name": "b", "arguments": "{}"}},
                {"role": "function", "name": "a", "content": "ra"},
                {"role": "function", "name": "b", "content": "rb"},
                {"role": "function", "name": "a", "content": "again"},
            ],
            functions=[{"name": "a"}, {"name": "b"}],
        )
    )
    calls = [b for m in r.messages for b in m.content if isinstance(b, ToolUseBlock)]
    results = [b for m in r.messages for b in m.content if isinstance(b, ToolResultBlock)]
    assert [c.name for c in calls] == ["a", "b"] and len({c.id for c in calls}) == 2
    assert [x.tool_use_id for x in results[:2]] == [calls[0].id, calls[1].id]
    assert results[2].tool_use_id not in {c.id for c in calls}  # nothing left to answer


def test_image_detail_is_a_hint_of_any_value() -> None:
    obj = body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "original"}}]}])
    assert isinstance(parse_openai_request(obj).messages[0].content[0], ImageBlock)
    fails(
        body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x", "detail": 3}}]}]),
        "messages.0.content.0.image_url.detail",
    )


def test_a_bare_string_image_url_is_accepted() -> None:
    obj = body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": f"data:image/png;base64,{PNG}"}]}])
    assert isinstance(parse_openai_request(obj).messages[0].content[0], ImageBlock)
