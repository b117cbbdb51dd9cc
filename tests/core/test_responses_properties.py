"""Hypothesis: any valid Responses API request converts (or is a web search), or is a 400 in the
OpenAI shape; never another exception.

The generator builds requests the Responses API itself accepts: a string input or items of every
kind the gateway reads (messages of each role with their parts, data-URL images, reasoning items
with summaries and encrypted content, parallel function calls and their outputs, records of web
searches), function, namespace and web_search tools, every tool_choice form, reasoning, text
formats, sampling and bookkeeping fields. Features the gateway deliberately refuses (remote image
URLs, ``store: true``, ``previous_response_id``, custom tools, file parts) are marked, so the
property can require that those, and only those, fail at parse time.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.http._routing import Dialect, error_answer
from kiro_protocol.requests._conversion import ConversionConfig, convert_request
from kiro_protocol.requests._linter import lint_kiro_body
from kiro_protocol.requests._model import ToolKind
from kiro_protocol.requests._responses import parse_responses_request
from kiro_protocol.requests._web_search import web_search_of
from tests.openai_checker import check_openai_error

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()
MODELS = ["claude-sonnet-4-5", "claude-opus-4-5-20251101", "claude-haiku-4-5", "claude-sonnet-4-6"]
FUNCTIONS = ["exec_command", "get_weather", "read_file"]
NAMESPACED = [("agents", "spawn"), ("agents", "wait"), ("fs", "read_file")]
CALL_IDS = ["call_a", "call_b", "call_c", "tooluse_x"]
CONFIG = ConversionConfig()
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}

texts = st.text(max_size=30)
user_texts = st.text(min_size=1, max_size=30) | st.just("")
json_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
arguments = st.dictionaries(st.text(min_size=1, max_size=8), json_scalars, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))


@st.composite
def user_content(draw: st.DrawFn, flags: dict[str, bool]) -> object:
    if draw(st.booleans()):
        return draw(user_texts)
    parts: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["text", "text", "image", "remote", "file"]))
        if kind == "text":
            parts.append({"type": "input_text", "text": draw(user_texts)})
        elif kind == "image":
            parts.append({"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": draw(st.sampled_from(["auto", "low", "high"]))})
        elif kind == "remote":
            flags["refused"] = True
            parts.append({"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"})
        else:
            flags["refused"] = True
            parts.append({"type": "input_file", "file_data": "aGk=", "filename": "a.txt"})
    return parts


def called_names() -> st.SearchStrategy[tuple[str, str | None]]:
    plain = st.sampled_from(FUNCTIONS).map(lambda n: (n, None))
    spaced = st.sampled_from(NAMESPACED).map(lambda p: (p[1], p[0]))
    return plain | spaced


@st.composite
def item(draw: st.DrawFn, flags: dict[str, bool]) -> dict[str, Any]:
    kind = draw(st.sampled_from(["user", "user", "assistant", "developer", "call", "output", "reasoning", "search"]))
    if kind == "user":
        return {"type": "message", "role": "user", "content": draw(user_content(flags))}
    if kind == "developer":
        return {"role": draw(st.sampled_from(["developer", "system"])), "content": draw(texts)}
    if kind == "assistant":
        content = draw(texts | st.lists(st.builds(lambda t: {"type": "output_text", "text": t, "annotations": []}, texts), max_size=2))
        return {"type": "message", "role": "assistant", "status": "completed", "content": content}
    if kind == "call":
        name, namespace = draw(called_names())
        call: dict[str, Any] = {"type": "function_call", "id": "fc_1", "call_id": draw(st.sampled_from(CALL_IDS)), "name": name, "arguments": draw(arguments)}
        if namespace is not None:
            call["namespace"] = namespace
        return call
    if kind == "output":
        output = draw(texts | st.lists(st.builds(lambda t: {"type": "input_text", "text": t}, texts), min_size=1, max_size=2))
        return {"type": "function_call_output", "call_id": draw(st.sampled_from(CALL_IDS)), "output": output}
    if kind == "reasoning":
        summary = draw(st.lists(st.builds(lambda t: {"type": "summary_text", "text": t}, texts), max_size=2))
        return {"type": "reasoning", "id": "rs_1", "summary": summary, "encrypted_content": draw(st.none() | st.just("gAAAA-opaque"))}
    return {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": draw(texts)}}


@st.composite
def tools(draw: st.DrawFn, body: dict[str, Any], flags: dict[str, bool]) -> None:
    declared: list[dict[str, Any]] = []
    names = draw(st.lists(st.sampled_from(FUNCTIONS), max_size=3, unique=True))
    declared += [{"type": "function", "name": n, "description": draw(texts), "parameters": SCHEMA, "strict": draw(st.booleans())} for n in names]
    if draw(st.booleans()):
        declared.append({"type": "namespace", "name": "agents", "description": "sub-agents", "tools": [{"type": "function", "name": "spawn"}, {"type": "function", "name": "wait", "parameters": SCHEMA}]})
    search = draw(st.booleans())
    if search:
        declared.append({"type": draw(st.sampled_from(["web_search", "web_search_preview"])), "external_web_access": draw(st.booleans())})
    if draw(st.integers(0, 9)) == 0:
        flags["refused"] = True
        declared.append({"type": "custom", "name": "apply_patch"})
    if not declared:
        return
    body["tools"] = draw(st.permutations(declared))
    callable_names = names + (["spawn", "wait"] if any(t["type"] == "namespace" for t in declared) else [])
    choices: list[Any] = ["auto", "none", "required"] + [{"type": "function", "name": n} for n in callable_names]
    choices.append({"type": "allowed_tools", "mode": "auto", "tools": []})
    if search:
        choices.append({"type": "web_search_preview"})
    choice = draw(st.none() | st.sampled_from(choices))
    if choice is not None:
        body["tool_choice"] = choice
    if draw(st.booleans()):
        body["parallel_tool_calls"] = draw(st.booleans())


@st.composite
def responses_requests(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A request and whether it uses a feature the gateway refuses."""
    flags = {"refused": False}
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS))}
    if draw(st.integers(0, 4)) == 0:
        body["input"] = draw(st.text(min_size=1, max_size=30))
    else:
        items = [{"role": "user", "content": draw(user_content(flags))}]
        items += draw(st.lists(item(flags), max_size=6))
        if draw(st.booleans()):
            items.insert(0, {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": draw(texts)}]})
        body["input"] = items
    draw(tools(body, flags))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "instructions": texts,
        "stream": st.booleans(),
        "max_output_tokens": st.integers(1, 100_000),
        "reasoning": st.fixed_dictionaries(
            {}, optional={"effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"]), "summary": st.sampled_from(["auto", "concise", "detailed"])}
        ),
        "text": st.sampled_from(
            [{"format": {"type": "text"}}, {"format": {"type": "json_object"}}, {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": True}}, {"verbosity": "low"}]
        ),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "metadata": st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
        "include": st.just(["reasoning.encrypted_content"]),
        "prompt_cache_key": texts,
        "store": st.booleans(),
        "previous_response_id": st.just("resp_0123"),
        "truncation": st.sampled_from(["auto", "disabled"]),
        "user": texts,
        "client_metadata": st.just({"thread_id": "t"}),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=6)):
        body[key] = draw(optional[key])
    if body.get("store") is True or "previous_response_id" in body:
        flags["refused"] = True
    return body, flags["refused"]


def _check_error(exc: LocalProtocolError) -> None:
    assert exc.status_hint == 400, exc
    reply = error_answer(exc, Dialect.RESPONSES)
    error = check_openai_error(json.loads(reply.body))
    assert reply.status == 400 and error["message"] == exc.message and error["param"] == exc.param
    if exc.param is not None:
        assert exc.message.startswith(f"{exc.param}: ") or exc.param == "messages"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses_requests(), st.booleans())
def test_valid_requests_convert_or_are_a_400_in_the_openai_shape(case: tuple[dict[str, Any], bool], as_bytes: bool) -> None:
    body, refused = case
    try:
        parsed = parse_responses_request(json.dumps(body).encode() if as_bytes else body)
    except LocalProtocolError as exc:
        assert refused, f"a valid request was refused: {exc.message}"
        _check_error(exc)
        return
    assert not refused, "a request using a refused feature was accepted"
    request = parsed.request
    assert request.model == body["model"] and request.stream is bool(body.get("stream"))
    assert set(parsed.namespaces) <= {t.name for t in request.tools}
    try:
        result = convert_request(request, config=CONFIG, continuation_id="cont")
        web_search_of(request)
    except LocalProtocolError as exc:
        # Only a conversation with nothing left to send (or a search without a query) is refused.
        _check_error(exc)
        assert exc.param is not None and exc.param.startswith("messages")
        return
    assert lint_kiro_body(json.loads(result.body("arn:aws:codewhisperer:us-east-1:1:profile/x"))) == []
    plan = result.response_plan
    assert plan.client_model == body["model"] and plan.stream is request.stream
    # Every declared function reaches Kiro, and its (perhaps shortened) name maps back to it.
    sent = {plan.client_tool_name(t["name"]) for t in _kiro_tools(result.body())}
    assert {t.name for t in request.tools if t.kind is ToolKind.CUSTOM} <= sent


def _kiro_tools(raw: bytes) -> list[dict[str, Any]]:
    state = json.loads(raw)["conversationState"]
    context = state["currentMessage"]["userInputMessage"].get("userInputMessageContext", {})
    return [t["toolSpecification"] for t in context.get("tools", [])]
