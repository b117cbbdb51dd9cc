"""The official ``openai`` SDK against the OpenAI front end, end to end over loopback HTTP.

The test server does what the gateway does for ``POST /v1/chat/completions``, minus accounts
and the network: ``parse_openai_request`` -> ``convert_request`` -> a ``ResponseTranslator``
with the OpenAI encoder, fed a scripted upstream EventStream body (built with
``encode_upstream_event``). So the SDK's own requests (multi-turn tool conversations, images)
go through the parser and converter, and its own stream accumulators read our chunks. Every
served stream is also run through the strict checker, since the SDK is lenient.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.http._error_bodies import error_body_for
from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._openai import parse_openai_request
from kiro_protocol.responses._openai import openai_encoder
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import (
    AssistantResponse,
    ContextUsage,
    Metering,
    ToolUse,
    UpstreamEvent,
    UpstreamException,
)
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from tests.loopback_http import LoopbackRequest, LoopbackResponse, LoopbackServer
from tests.openai_checker import check_openai_stream

MODEL = "claude-sonnet-4-5"
MESSAGE_ID = "msg_01AbCdEfGhIjKlMnOpQrStUv"
COMPLETION_ID = "chatcmpl-0123456789abcdefghijklmn"
CREATED = 1_764_000_000
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()

TEXT: list[UpstreamEvent] = [
    AssistantResponse(content="Hello"),
    AssistantResponse(content=" world"),
    ContextUsage(percentage=1.5),
    Metering(usage=0.01, unit="credit"),
]
TWO_TOOLS: list[UpstreamEvent] = [
    AssistantResponse(content="Checking both cities."),
    ToolUse(tool_use_id="tooluse_paris", name="get_weather", input="", stop=False),
    ToolUse(tool_use_id="tooluse_paris", name="get_weather", input='{"city": "Par', stop=False),
    ToolUse(tool_use_id="tooluse_paris", name="get_weather", input='is", "unit": "C"}', stop=True),
    ToolUse(tool_use_id="tooluse_tokyo", name="get_weather", input='{"city": "Tokyo"', stop=False),
    ToolUse(tool_use_id="tooluse_tokyo", name="get_weather", input=', "unit": "C"}', stop=True),
]
FAILING: list[UpstreamEvent] = [
    AssistantResponse(content="partial"),
    UpstreamException(exception_type="InternalServerException", message="boom"),
]
THINKING: list[UpstreamEvent] = [AssistantResponse(content="<thinking>Short question.</thinking>\n\nHi!")]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}


@dataclass
class Gateway:
    """What the test server answers with, and what it saw."""

    upstream: Sequence[UpstreamEvent] = ()
    kiro_bodies: list[dict[str, Any]] = field(default_factory=list)
    served: list[bytes] = field(default_factory=list)

    def __call__(self, request: LoopbackRequest) -> LoopbackResponse:
        assert request.path == "/v1/chat/completions" and request.method == "POST"
        try:
            parsed = parse_openai_request(request.body)
            kiro = convert_request(parsed, config=ConversionConfig(), continuation_id="cont")
        except LocalProtocolError as exc:
            return LoopbackResponse(status=exc.status_hint, body=error_body_for(exc, dialect="openai"))
        self.kiro_bodies.append(json.loads(kiro.body()))
        plan = kiro.response_plan
        encoder = openai_encoder(plan, completion_id=COMPLETION_ID, created=CREATED, include_usage=parsed.include_usage)
        t = ResponseTranslator(plan, message_id=MESSAGE_ID, now=0.0, encoder=encoder)
        out = bytearray(t.data_to_send())
        data = b"".join(encode_upstream_event(e) for e in self.upstream)
        for i in range(0, len(data), 50):
            t.receive_data(data[i : i + 50])
            out += t.data_to_send()
        t.receive_data(b"")
        out += t.data_to_send()
        self.served.append(bytes(out))
        if t.streaming:
            return LoopbackResponse(status=200, body=bytes(out), content_type=t.media_type)
        final = t.final_response()
        assert final is not None
        return LoopbackResponse(status=final.status, body=final.body, content_type=dict(final.headers)["content-type"])


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Gateway, LoopbackServer]]:
    gw = Gateway()
    with LoopbackServer(gw) as server:
        yield gw, server
        assert not server.errors, server.errors


@pytest.fixture
def gw(gateway: tuple[Gateway, LoopbackServer]) -> Gateway:
    g = gateway[0]
    g.upstream, g.kiro_bodies, g.served = (), [], []
    return g


@pytest.fixture
def client(gateway: tuple[Gateway, LoopbackServer]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="test-key", base_url=gateway[1].url + "/v1", max_retries=0, timeout=10) as c:
        yield c


HI: Any = [{"role": "user", "content": "Hi"}]


def test_create_without_stream(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = TEXT
    completion = client.chat.completions.create(model=MODEL, messages=HI)
    assert completion.id == COMPLETION_ID and completion.model == MODEL and completion.created == CREATED
    choice = completion.choices[0]
    assert choice.message.content == "Hello world" and choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 3000
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_create_with_stream_accumulates(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = TEXT
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion()
    assert final.choices[0].message.content == "Hello world" and final.choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    check_openai_stream(gw.served[-1])


def test_stream_helper_with_two_parallel_tool_calls(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = TWO_TOOLS
    with client.chat.completions.stream(model=MODEL, messages=HI, tools=[WEATHER_TOOL]) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking both cities."
    calls = message.tool_calls or []
    assert [c.id for c in calls] == ["tooluse_paris", "tooluse_tokyo"]
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    args = [json.loads(c.function.arguments) for c in calls]
    assert args == [{"city": "Paris", "unit": "C"}, {"city": "Tokyo", "unit": "C"}]
    # The SDK closes each call when the next one starts, and the last one at finish_reason.
    assert events.count("tool_calls.function.arguments.done") == 2
    check_openai_stream(gw.served[-1])


def test_parallel_tool_calls_without_stream(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = TWO_TOOLS
    completion = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER_TOOL], tool_choice="required")
    calls = completion.choices[0].message.tool_calls or []
    assert all(c.type == "function" for c in calls) and len(calls) == 2
    assert [json.loads(c.function.arguments)["city"] for c in calls if c.type == "function"] == ["Paris", "Tokyo"]
    lead = gw.kiro_bodies[-1]["conversationState"]["history"][0]["userInputMessage"]["content"]
    assert "You must call at least one" in lead


def test_usage_with_include_usage(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = TEXT
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True})
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == 3000 and last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    with client.chat.completions.stream(model=MODEL, messages=HI, stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.usage is not None and final.usage.total_tokens == last.usage.total_tokens


def test_multi_turn_conversation_with_tool_results(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = [AssistantResponse(content="Paris 18C, Tokyo 25C.")]
    messages: Any = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": "Checking both cities.",
            "tool_calls": [
                {"id": "tooluse_paris", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "tooluse_tokyo", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "tooluse_paris", "content": "18C"},
        {"role": "tool", "tool_call_id": "tooluse_tokyo", "content": "25C"},
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.content == "Paris 18C, Tokyo 25C."
    state = gw.kiro_bodies[-1]["conversationState"]
    context = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]
    assert [(r["toolUseId"], r["content"]) for r in context["toolResults"]] == [
        ("tooluse_paris", [{"text": "18C"}]),
        ("tooluse_tokyo", [{"text": "25C"}]),
    ]
    assert "You are a weather bot." in state["history"][0]["userInputMessage"]["content"]
    assert [u["toolUseId"] for u in state["history"][-1]["assistantResponseMessage"]["toolUses"]] == [
        "tooluse_paris",
        "tooluse_tokyo",
    ]


def test_an_image_reaches_kiro(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = [AssistantResponse(content="A single pixel.")]
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        }
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == "A single pixel."
    current = gw.kiro_bodies[-1]["conversationState"]["currentMessage"]["userInputMessage"]
    assert current["images"] == [{"format": "png", "source": {"bytes": PNG}}]


def test_reasoning_content_with_reasoning_effort(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = THINKING
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True, reasoning_effort="low"))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == "Short question." and content == "Hi!"
    completion = client.chat.completions.create(model=MODEL, messages=HI, reasoning_effort="low")
    assert (completion.choices[0].message.model_extra or {}).get("reasoning_content") == "Short question."


def test_a_mid_stream_error_chunk_raises(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = FAILING
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model=MODEL, messages=HI, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
    assert seen == ["partial"] and "boom" in info.value.message
    with pytest.raises(openai.APIError):
        with client.chat.completions.stream(model=MODEL, messages=HI) as stream:
            stream.get_final_completion()


def test_a_failed_non_streaming_answer_is_an_error_status(gw: Gateway, client: openai.OpenAI) -> None:
    gw.upstream = FAILING
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.status_code == 500 and "boom" in info.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
            "messages.0.content.0.image_url.url",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
    ],
)
def test_bad_requests_are_400_in_the_openai_shape(
    gw: Gateway, client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "messages": HI, **extra}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**kwargs)
    assert info.value.status_code == 400 and info.value.param == param and info.value.code == "invalid_request"
    assert gw.kiro_bodies == []


def test_unknown_model_is_a_404(gw: Gateway, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=HI)
    assert "gpt-4o" in info.value.message
