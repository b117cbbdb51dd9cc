"""OpenAI Chat Completions request body -> the internal ``Request``.

The same model the Anthropic parser produces, so conversion, the linter and every upstream
limit apply once, whatever dialect the client speaks (docs/openai.md lists the mapping).

Every problem is a ``LocalProtocolError`` (400 ``invalid_request_error``) whose message starts
with the JSON path of the offending field (``messages.2.tool_calls.0.function.arguments``) and
whose ``param`` is that path; the adapter renders it with ``openai_error_body``. Unknown
top-level fields are ignored (the API grows new ones often); unknown *content part* and tool
types are refused, because silently dropping part of what the user sent changes the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from ._anthropic_request import _bool, _int, _list, _number, _obj, _str
from ._errors import LocalProtocolError
from ._images import check_image
from ._request_json import check_depth, fail, parse_json_body, type_name
from ._request_model import (
    ContentBlock,
    ImageBlock,
    Message,
    OutputFormat,
    Request,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["parse_openai_request", "DEFAULT_MAX_TOKENS", "REASONING_EFFORTS"]

#: ``max_tokens`` when the client sets neither ``max_tokens`` nor ``max_completion_tokens``.
#: OpenAI's default is "as much as the model can write"; a small default would report complete
#: long answers as ``finish_reason: "length"`` (the client's limit is only used to label the stop).
DEFAULT_MAX_TOKENS = 64_000

#: ``reasoning_effort`` -> the adaptive thinking effort (``None``: thinking off).
REASONING_EFFORTS: dict[str, str | None] = {
    "none": None,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
}

#: The most ``stop`` sequences OpenAI accepts.
MAX_STOP_SEQUENCES = 4

# ``tool_choice`` strings -> the model's choice types.
_CHOICE_TYPES: dict[str, Literal["none", "auto", "any"]] = {"none": "none", "auto": "auto", "required": "any"}

# Sampling knobs: validated (a typo still fails loudly) and never forwarded (Kiro has none).
_SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}


def _one_of(value: object, path: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        expected = ", ".join(f'"{a}"' for a in allowed)
        fail(path, f"expected one of {expected}, got {_shown(value)}")
    return str(value)


def _shown(value: object) -> str:
    """A short rendering of a client value for an error message."""
    if isinstance(value, str):
        return repr(value[:60])
    return type_name(value)


def _nonempty(value: object, path: str) -> str:
    text = _str(value, path)
    if not text.strip():
        fail(path, "must not be empty")
    return text


# -- content --------------------------------------------------------------------------------------


def _image_url(part: Mapping[str, object], path: str) -> ImageBlock:
    """An ``image_url`` part holding a base64 ``data:`` URI (the gateway fetches nothing)."""
    raw = part.get("image_url")
    # The oldest clients send the URL directly as a string.
    spec = {"url": raw} if isinstance(raw, str) else _obj(raw, f"{path}.image_url")
    url_path = f"{path}.image_url.url"
    url = _str(spec.get("url"), url_path)
    detail = spec.get("detail")
    if detail is not None:
        _str(detail, f"{path}.image_url.detail")  # a resolution hint: Kiro has none to give
    if not url[:5].lower() == "data:":
        scheme = url.split(":", 1)[0][:10] if ":" in url else ""
        what = f"a remote {scheme} URL" if scheme else "not a data: URI"
        fail(
            url_path,
            f"{what}; image URLs are not fetched by the gateway, send the image inline as "
            "data:image/<png|jpeg|gif|webp>;base64,<data>",
        )
    header, sep, data = url[5:].partition(",")
    if not sep:
        fail(url_path, "malformed data: URI (no comma before the data)")
    params = [p.strip().lower() for p in header.split(";")]
    media_type = params[0] or "text/plain"
    if "base64" not in params[1:]:
        fail(url_path, "only base64 data: URIs are supported (data:<media type>;base64,<data>)")
    try:
        return check_image(media_type, data, path=path)
    except LocalProtocolError as exc:
        # check_image speaks in Anthropic field paths; name the OpenAI field instead.
        detail_text = exc.message.split(": ", 1)[-1]
        raise LocalProtocolError(f"{url_path}: {detail_text}", param=url_path) from None


def _text_parts(value: object, path: str, *, allow: tuple[str, ...] = ("text",)) -> tuple[TextBlock, ...]:
    """A string, or an array of text parts (also ``refusal`` parts for the assistant)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks = []
    for i, item in enumerate(_list(value, path)):
        part = _obj(item, f"{path}.{i}")
        kind = part.get("type")
        if kind not in allow:
            fail(f"{path}.{i}.type", f"expected {' or '.join(repr(a) for a in allow)} here, got {_shown(kind)}")
        key = "refusal" if kind == "refusal" else "text"
        text = _str(part.get(key), f"{path}.{i}.{key}")
        if text:
            blocks.append(TextBlock(text=text))
    return tuple(blocks)


def _user_content(value: object, path: str) -> tuple[ContentBlock, ...]:
    if value is None:
        fail(path, "field required")
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks: list[ContentBlock] = []
    for i, item in enumerate(_list(value, path)):
        ipath = f"{path}.{i}"
        part = _obj(item, ipath)
        kind = part.get("type")
        if kind == "text":
            text = _str(part.get("text"), f"{ipath}.text")
            if text:
                blocks.append(TextBlock(text=text))
        elif kind == "image_url":
            blocks.append(_image_url(part, ipath))
        elif kind in ("input_audio", "file"):
            fail(f"{ipath}.type", f"{kind} content parts are not supported (Kiro accepts text and images)")
        else:
            fail(f"{ipath}.type", f'expected "text" or "image_url", got {_shown(kind)}')
    return tuple(blocks)


def _arguments(value: object, path: str) -> Mapping[str, object]:
    """``function.arguments``: a string holding a JSON object (empty means no arguments)."""
    if isinstance(value, Mapping):  # some clients send the object itself
        check_depth(value, path)
        return dict(value)
    text = _str(value, path)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
        json.dumps(parsed, allow_nan=False)  # NaN/Infinity parse, but could not be forwarded
    except (ValueError, RecursionError):
        fail(path, "not valid JSON; expected a JSON object encoded as a string")
    if not isinstance(parsed, dict):
        fail(path, f"expected a JSON object encoded as a string, got a JSON {type_name(parsed)}")
    check_depth(parsed, path)
    return parsed


def _tool_calls(value: object, path: str) -> list[ToolUseBlock]:
    uses = []
    for i, item in enumerate(_list(value, path)):
        ipath = f"{path}.{i}"
        call = _obj(item, ipath)
        kind = call.get("type", "function")
        if kind != "function":
            fail(f"{ipath}.type", f'only "function" tool calls are supported, got {_shown(kind)}')
        call_id = _nonempty(call.get("id"), f"{ipath}.id")
        function = _obj(call.get("function"), f"{ipath}.function")
        name = _nonempty(function.get("name"), f"{ipath}.function.name")
        uses.append(ToolUseBlock(id=call_id, name=name, input=_arguments(function.get("arguments"), f"{ipath}.function.arguments")))
    return uses


class _LegacyCalls:
    """Ids for the legacy ``function_call`` / ``function`` role pair, which carry none.

    A ``function`` message answers the latest unanswered ``function_call`` of the same name;
    ids are derived from message positions, so they are stable for a given conversation.
    """

    def __init__(self) -> None:
        self._open: list[tuple[str, str]] = []  # (name, id), oldest first

    def call(self, name: str, index: int) -> str:
        call_id = f"call_legacy_{index}"
        self._open.append((name, call_id))
        return call_id

    def answer(self, name: str, index: int) -> str:
        for pos in range(len(self._open) - 1, -1, -1):
            if self._open[pos][0] == name:
                return self._open.pop(pos)[1]
        # Nothing to answer: the converter keeps it as text (tool-pairing repair).
        return f"call_legacy_result_{index}"


def _assistant(obj: Mapping[str, object], path: str, index: int, legacy: _LegacyCalls) -> Message:
    blocks: list[ContentBlock] = []
    reasoning = obj.get("reasoning_content")
    if reasoning is not None:
        # What our own responses carried as reasoning_content, sent back by the client.
        thought = _str(reasoning, f"{path}.reasoning_content")
        if thought:
            blocks.append(ThinkingBlock(thinking=thought))
    blocks.extend(_text_parts(obj.get("content"), f"{path}.content", allow=("text", "refusal")))
    refusal = obj.get("refusal")
    if refusal is not None:
        refusal_text = _str(refusal, f"{path}.refusal")
        if refusal_text:
            blocks.append(TextBlock(text=refusal_text))
    calls = obj.get("tool_calls")
    if calls is not None:
        blocks.extend(_tool_calls(calls, f"{path}.tool_calls"))
    function_call = obj.get("function_call")
    if function_call is not None:
        fpath = f"{path}.function_call"
        fc = _obj(function_call, fpath)
        name = _nonempty(fc.get("name"), f"{fpath}.name")
        args = _arguments(fc.get("arguments"), f"{fpath}.arguments")
        blocks.append(ToolUseBlock(id=legacy.call(name, index), name=name, input=args))
    return Message(role="assistant", content=tuple(blocks))


def _messages(value: object) -> tuple[tuple[TextBlock, ...], tuple[Message, ...]]:
    """The leading system/developer messages (the system prompt) and the conversation."""
    raw = _list(value, "messages")
    if not raw:
        fail("messages", "must contain at least one message")
    system: list[TextBlock] = []
    messages: list[Message] = []
    legacy = _LegacyCalls()
    for i, item in enumerate(raw):
        path = f"messages.{i}"
        obj = _obj(item, path)
        role = obj.get("role")
        name = obj.get("name")
        if name is not None and role != "function":
            _str(name, f"{path}.name")  # a participant name: accepted, not forwarded
        if role in ("system", "developer"):
            if "content" not in obj:
                fail(f"{path}.content", "field required")
            texts = _text_parts(obj["content"], f"{path}.content")
            if not messages:
                system.extend(texts)  # folded like the Anthropic system prompt
            elif texts:
                messages.append(Message(role="system", content=texts))
        elif role == "user":
            messages.append(Message(role="user", content=_user_content(obj.get("content"), f"{path}.content")))
        elif role == "assistant":
            messages.append(_assistant(obj, path, i, legacy))
        elif role == "tool":
            call_id = _nonempty(obj.get("tool_call_id"), f"{path}.tool_call_id")
            content = _text_parts(obj.get("content"), f"{path}.content")
            messages.append(Message(role="user", content=(ToolResultBlock(tool_use_id=call_id, content=content),)))
        elif role == "function":
            fname = _nonempty(name, f"{path}.name")
            content = _text_parts(obj.get("content"), f"{path}.content")
            result = ToolResultBlock(tool_use_id=legacy.answer(fname, i), content=content)
            messages.append(Message(role="user", content=(result,)))
        else:
            fail(
                f"{path}.role",
                'expected "system", "developer", "user", "assistant", "tool" or "function", '
                f"got {_shown(role)}",
            )
    if not messages:
        fail("messages", "must contain a user message (only system messages were sent)")
    return tuple(system), tuple(messages)


# -- tools ----------------------------------------------------------------------------------------


def _function(fn: Mapping[str, object], path: str) -> Tool:
    name = _nonempty(fn.get("name"), f"{path}.name")
    raw_description = fn.get("description")
    description = "" if raw_description is None else _str(raw_description, f"{path}.description")
    strict = fn.get("strict")
    if strict is not None:
        _bool(strict, f"{path}.strict")  # accepted; arguments are checked by the client
    params = fn.get("parameters")
    schema: Mapping[str, object]
    if params is None:
        # OpenAI: "omitting parameters defines a function with an empty parameter list".
        schema = {"type": "object", "properties": {}}
    else:
        schema = _obj(params, f"{path}.parameters")
        check_depth(schema, f"{path}.parameters")
    return Tool(name=name, description=description, input_schema=schema)


def _tools(tools: object, functions: object) -> tuple[Tool, ...]:
    if tools is not None and functions is not None:
        fail("functions", "send either tools or the legacy functions, not both")
    parsed: list[tuple[str, Tool]] = []
    if tools is not None:
        for i, item in enumerate(_list(tools, "tools")):
            path = f"tools.{i}"
            obj = _obj(item, path)
            kind = obj.get("type")
            if kind != "function":
                fail(f"{path}.type", f'only "function" tools are supported, got {_shown(kind)}')
            parsed.append((f"{path}.function.name", _function(_obj(obj.get("function"), f"{path}.function"), f"{path}.function")))
    if functions is not None:
        for i, item in enumerate(_list(functions, "functions")):
            path = f"functions.{i}"
            parsed.append((f"{path}.name", _function(_obj(item, path), path)))
    seen: dict[str, str] = {}
    for name_path, tool in parsed:
        if tool.name in seen:
            fail(name_path, f"duplicate function name {tool.name!r} (also {seen[tool.name]})")
        seen[tool.name] = name_path
    return tuple(tool for _, tool in parsed)


def _named_choice(name: str, path: str, tools: tuple[Tool, ...]) -> ToolChoice:
    if not any(t.name == name for t in tools):
        fail(path, f"names the function {name!r}, which is not in tools")
    return ToolChoice(type="tool", name=name)


def _tool_choice(obj: Mapping[str, object], tools: tuple[Tool, ...]) -> ToolChoice | None:
    choice: ToolChoice | None = None
    value = obj.get("tool_choice")
    legacy = obj.get("function_call")
    if value is not None:
        if isinstance(value, str):
            choice = ToolChoice(type=_CHOICE_TYPES[_one_of(value, "tool_choice", tuple(_CHOICE_TYPES))])
        else:
            spec = _obj(value, "tool_choice")
            kind = spec.get("type")
            if kind == "function":
                fn = _obj(spec.get("function"), "tool_choice.function")
                choice = _named_choice(_nonempty(fn.get("name"), "tool_choice.function.name"), "tool_choice.function.name", tools)
            elif kind == "allowed_tools":
                allowed = _obj(spec.get("allowed_tools"), "tool_choice.allowed_tools")
                mode = _one_of(allowed.get("mode"), "tool_choice.allowed_tools.mode", ("auto", "required"))
                choice = ToolChoice(type="any" if mode == "required" else "auto")
            else:
                fail("tool_choice.type", f'expected "function" or "allowed_tools", got {_shown(kind)}')
    elif legacy is not None:
        if isinstance(legacy, str):
            kind = _one_of(legacy, "function_call", ("none", "auto"))
            choice = ToolChoice(type="none" if kind == "none" else "auto")
        else:
            spec = _obj(legacy, "function_call")
            choice = _named_choice(_nonempty(spec.get("name"), "function_call.name"), "function_call.name", tools)
    if choice is not None and choice.type != "none" and not tools:
        fail("tool_choice" if value is not None else "function_call", "requires tools")
    parallel = obj.get("parallel_tool_calls")
    if parallel is not None and not _bool(parallel, "parallel_tool_calls"):
        base = choice if choice is not None else ToolChoice()
        choice = ToolChoice(type=base.type, name=base.name, disable_parallel_tool_use=True)
    return choice


# -- everything else ------------------------------------------------------------------------------


def _max_tokens(obj: Mapping[str, object]) -> int:
    completion = obj.get("max_completion_tokens")
    if completion is not None:
        return _int(completion, "max_completion_tokens", minimum=1)
    legacy = obj.get("max_tokens")
    if legacy is not None:
        return _int(legacy, "max_tokens", minimum=1)
    return DEFAULT_MAX_TOKENS


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    items = _list(value, "stop")
    if len(items) > MAX_STOP_SEQUENCES:
        fail("stop", f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(items)}")
    out = []
    for i, item in enumerate(items):
        # Whitespace is a real stop sequence ("\n" is a common one); only "" is meaningless.
        if not _str(item, f"stop.{i}"):
            fail(f"stop.{i}", "must not be empty")
        out.append(str(item))
    return tuple(out)


def _thinking(value: object) -> tuple[ThinkingConfig, str]:
    if value is None:
        return ThinkingConfig(), ""
    key = _str(value, "reasoning_effort").strip().lower()
    if key not in REASONING_EFFORTS:
        _one_of(value, "reasoning_effort", tuple(REASONING_EFFORTS))
    effort = REASONING_EFFORTS[key]
    if effort is None:
        return ThinkingConfig(), ""
    return ThinkingConfig(type="adaptive"), effort


def _response_format(value: object) -> OutputFormat | None:
    if value is None:
        return None
    spec = _obj(value, "response_format")
    kind = _one_of(spec.get("type"), "response_format.type", ("text", "json_object", "json_schema"))
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat(schema={"type": "object"})
    wrapper = _obj(spec.get("json_schema"), "response_format.json_schema")
    _nonempty(wrapper.get("name"), "response_format.json_schema.name")
    raw = wrapper.get("schema")
    schema = {} if raw is None else _obj(raw, "response_format.json_schema.schema")
    check_depth(schema, "response_format.json_schema.schema")
    return OutputFormat(schema=schema)


def _sampling(obj: Mapping[str, object]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, (low, high) in _SAMPLING_RANGES.items():
        raw = obj.get(key)
        if raw is None:
            out[key] = None
            continue
        number = _number(raw, key)
        if not low <= number <= high:
            fail(key, f"must be between {low:g} and {high:g}, got {number:g}")
        out[key] = number
    return out


def _unsupported(obj: Mapping[str, object]) -> None:
    """Refuse what cannot be honoured, rather than answer something else than was asked."""
    n = obj.get("n")
    if n is not None and _int(n, "n", minimum=1) > 1:
        fail("n", f"only one choice per request is supported, got n={n}")
    modalities = obj.get("modalities")
    if modalities is not None:
        for i, m in enumerate(_list(modalities, "modalities")):
            if m != "text":
                fail(f"modalities.{i}", f'only "text" output is supported, got {_shown(m)}')
    if obj.get("audio") is not None:
        fail("audio", "audio output is not supported")
    for key in ("logprobs",):
        if obj.get(key) is not None:
            _bool(obj[key], key)  # accepted; answered with logprobs: null
    top_logprobs = obj.get("top_logprobs")
    if top_logprobs is not None:
        _int(top_logprobs, "top_logprobs", minimum=0)
    seed = obj.get("seed")
    if seed is not None:
        _int(seed, "seed")
    for key in ("user", "safety_identifier", "prompt_cache_key", "service_tier"):
        if obj.get(key) is not None:
            _str(obj[key], key)
    for key in ("metadata", "logit_bias"):
        if obj.get(key) is not None:
            _obj(obj[key], key)


def parse_openai_request(body: bytes | str | Mapping[str, object]) -> Request:
    """Parse and validate an OpenAI Chat Completions request body into the internal ``Request``.

    ``body`` is the raw request body or an already-decoded JSON object. The result goes through
    ``convert_request`` exactly like an Anthropic request. OpenAI-only outputs travel on the
    request: ``include_usage`` (``stream_options.include_usage``).
    Raises ``LocalProtocolError`` (400) naming the offending field path.
    """
    if isinstance(body, Mapping):
        obj = body
    elif isinstance(body, (bytes, bytearray, str)):
        obj = parse_json_body(body)
    else:  # an already-decoded JSON value that is not an object
        raise LocalProtocolError(f"request body: expected a JSON object, got {type_name(body)}")
    if "model" not in obj:
        fail("model", "field required")
    model = _nonempty(obj["model"], "model").strip()
    if "messages" not in obj:
        fail("messages", "field required")
    system, messages = _messages(obj["messages"])
    _unsupported(obj)
    stream = _bool(obj.get("stream"), "stream")
    include_usage = False
    options = obj.get("stream_options")
    if options is not None:
        # OpenAI refuses stream_options without stream; ignoring it is kinder and harmless.
        include_usage = _bool(_obj(options, "stream_options").get("include_usage"), "stream_options.include_usage")
    tools = _tools(obj.get("tools"), obj.get("functions"))
    thinking, effort = _thinking(obj.get("reasoning_effort"))
    sampling = _sampling(obj)
    return Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=_max_tokens(obj),
        stream=stream,
        tools=tools,
        tool_choice=_tool_choice(obj, tools),
        thinking=thinking,
        effort=effort,
        output_format=_response_format(obj.get("response_format")),
        stop_sequences=_stop(obj.get("stop")),
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        include_usage=include_usage and stream,
    )
