"""Hypothesis: any valid Chat Completions request converts, or is a 400 in the OpenAI shape;
never another exception.

The generator builds requests the OpenAI API itself would accept (every role, content parts,
data-URI images, parallel tool calls and their results, legacy functions, tool_choice, stop,
reasoning_effort, sampling knobs), with a few features the gateway deliberately refuses (``n``
above 1, remote image URLs) marked so the property can require that those, and only those,
fail at parse time.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.http._error_bodies import error_body_for
from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._openai import parse_openai_request
from tests.openai_checker import check_openai_error

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
MODELS = ["claude-sonnet-4-5", "claude-opus-4-5-20251101", "claude-haiku-4-5", "claude-sonnet-4-6"]
TOOL_NAMES = ["get_weather", "search", "run_command", "read_file"]
CALL_IDS = ["call_a", "call_b", "call_c", "tooluse_x"]
CONFIG = ConversionConfig()

texts = st.text(max_size=40)
# Mostly something to say: an empty last message is a (correct) 400 that teaches little.
user_texts = st.text(min_size=1, max_size=40) | st.just("")
json_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
arguments = st.dictionaries(st.text(min_size=1, max_size=8), json_scalars, max_size=3).map(
    lambda d: json.dumps(d, ensure_ascii=False)
)


@st.composite
def user_content(draw: st.DrawFn, flags: dict[str, bool]) -> object:
    if draw(st.booleans()):
        return draw(user_texts)
    parts: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["text", "text", "image", "remote"]))
        if kind == "text":
            parts.append({"type": "text", "text": draw(user_texts)})
        elif kind == "image":
            image: dict[str, Any] = {"url": f"data:image/png;base64,{PNG}"}
            if draw(st.booleans()):
                image["detail"] = draw(st.sampled_from(["auto", "low", "high"]))
            parts.append({"type": "image_url", "image_url": image})
        else:
            flags["refused"] = True
            parts.append({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}})
    return parts


@st.composite
def assistant(draw: st.DrawFn) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant"}
    calls = draw(st.lists(st.sampled_from(CALL_IDS), max_size=3, unique=True))
    content = draw(st.none() | texts | st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), max_size=2))
    if content is None and not calls:
        content = ""
    msg["content"] = content
    if calls:
        msg["tool_calls"] = [
            {"id": c, "type": "function", "function": {"name": draw(st.sampled_from(TOOL_NAMES)), "arguments": draw(arguments)}}
            for c in calls
        ]
    return msg


@st.composite
def message(draw: st.DrawFn, flags: dict[str, bool]) -> dict[str, Any]:
    role = draw(st.sampled_from(["user", "user", "assistant", "tool", "system", "developer", "function"]))
    if role == "user":
        return {"role": "user", "content": draw(user_content(flags))}
    if role == "assistant":
        return draw(assistant())
    if role == "tool":
        content = draw(texts | st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), min_size=1, max_size=2))
        return {"role": "tool", "tool_call_id": draw(st.sampled_from(CALL_IDS)), "content": content}
    if role == "function":
        return {"role": "function", "name": draw(st.sampled_from(TOOL_NAMES)), "content": draw(texts)}
    return {"role": role, "content": draw(texts)}


@st.composite
def chat_requests(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A request and whether it uses a feature the gateway refuses."""
    flags = {"refused": False}
    messages = [{"role": "user", "content": draw(user_content(flags))}]
    messages += draw(st.lists(message(flags), max_size=6))
    if draw(st.booleans()):
        messages.insert(0, {"role": draw(st.sampled_from(["system", "developer"])), "content": draw(texts)})
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS)), "messages": messages}
    names = draw(st.lists(st.sampled_from(TOOL_NAMES), max_size=3, unique=True))
    if names:
        schema = {"type": "object", "properties": {"q": {"type": "string"}}}
        body["tools"] = [{"type": "function", "function": {"name": n, "description": draw(texts), "parameters": schema}} for n in names]
        choice = draw(st.none() | st.sampled_from(["auto", "none", "required"]) | st.sampled_from(names))
        if choice in names:
            body["tool_choice"] = {"type": "function", "function": {"name": choice}}
        elif choice is not None:
            body["tool_choice"] = choice
        if draw(st.booleans()):
            body["parallel_tool_calls"] = draw(st.booleans())
    optional: dict[str, st.SearchStrategy[Any]] = {
        "stream": st.booleans(),
        "stream_options": st.builds(lambda b: {"include_usage": b}, st.booleans()),
        "max_tokens": st.integers(1, 100_000),
        "max_completion_tokens": st.integers(1, 100_000),
        "stop": st.text(min_size=1, max_size=5) | st.lists(st.text(min_size=1, max_size=5), max_size=4),
        "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high"]),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "seed": st.integers(-(2**31), 2**31),
        "user": texts,
        "n": st.integers(1, 3),
        "logprobs": st.booleans(),
        "response_format": st.sampled_from(
            [{"type": "text"}, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}]
        ),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=6)):
        body[key] = draw(optional[key])
    if body.get("n", 1) > 1:
        flags["refused"] = True
    return body, flags["refused"]


def _check_error(exc: LocalProtocolError, statuses: tuple[int, ...]) -> None:
    assert exc.status_hint in statuses, exc
    error = check_openai_error(json.loads(error_body_for(exc, dialect="openai")))
    assert error["message"] == exc.message and error["param"] == exc.param
    if exc.param is not None:
        assert exc.message.startswith(f"{exc.param}: ") or exc.param == "messages"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_requests(), st.booleans())
def test_valid_requests_convert_or_are_a_400_in_the_openai_shape(case: tuple[dict[str, Any], bool], as_bytes: bool) -> None:
    body, refused = case
    try:
        request = parse_openai_request(json.dumps(body).encode() if as_bytes else body)
    except LocalProtocolError as exc:
        assert refused, f"a valid request was refused: {exc.message}"
        _check_error(exc, (400,))
        return
    assert not refused, "a request using a refused feature was accepted"
    assert request.model == body["model"]
    assert request.stream is bool(body.get("stream")) and (not request.include_usage or request.stream)
    try:
        result = convert_request(request, config=CONFIG, continuation_id="cont")
    except LocalProtocolError as exc:
        # Only a conversation with nothing left to send is refused at this point.
        _check_error(exc, (400,))
        assert exc.param is not None and exc.param.startswith("messages")
        return
    assert lint_kiro_body(json.loads(result.body("arn:aws:codewhisperer:us-east-1:1:profile/x"))) == []
    assert result.response_plan.client_model == body["model"]
    assert result.response_plan.stream is request.stream
