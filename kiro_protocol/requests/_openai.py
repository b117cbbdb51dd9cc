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

from collections.abc import Mapping
from typing import Literal

from .._errors import LocalProtocolError
from ._json import (
    bounded_numbers,
    as_array,
    as_bool,
    as_int,
    as_number,
    as_object,
    as_string,
    check_depth,
    fail,
    parse_json_body,
    type_name,
)
from ._model import OutputFormat, Request, ThinkingConfig, Tool, ToolChoice
from ._openai_messages import nonempty, one_of, parse_messages, shown

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


# -- tools ----------------------------------------------------------------------------------------


def _function(fn: Mapping[str, object], path: str) -> Tool:
    name = nonempty(fn.get("name"), f"{path}.name")
    raw_description = fn.get("description")
    description = "" if raw_description is None else as_string(raw_description, f"{path}.description")
    strict = fn.get("strict")
    if strict is not None:
        as_bool(strict, f"{path}.strict")  # accepted; arguments are checked by the client
    params = fn.get("parameters")
    schema: Mapping[str, object]
    if params is None:
        # OpenAI: "omitting parameters defines a function with an empty parameter list".
        schema = {"type": "object", "properties": {}}
    else:
        schema = as_object(params, f"{path}.parameters")
        check_depth(schema, f"{path}.parameters")
    return Tool(name=name, description=description, input_schema=schema)


def _tools(tools: object, functions: object) -> tuple[Tool, ...]:
    if tools is not None and functions is not None:
        fail("functions", "send either tools or the legacy functions, not both")
    parsed: list[tuple[str, Tool]] = []
    if tools is not None:
        for i, item in enumerate(as_array(tools, "tools")):
            path = f"tools.{i}"
            obj = as_object(item, path)
            kind = obj.get("type")
            if kind != "function":
                fail(f"{path}.type", f'only "function" tools are supported, got {shown(kind)}')
            fn = as_object(obj.get("function"), f"{path}.function")
            parsed.append((f"{path}.function.name", _function(fn, f"{path}.function")))
    if functions is not None:
        for i, item in enumerate(as_array(functions, "functions")):
            path = f"functions.{i}"
            parsed.append((f"{path}.name", _function(as_object(item, path), path)))
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
            choice = ToolChoice(type=_CHOICE_TYPES[one_of(value, "tool_choice", tuple(_CHOICE_TYPES))])
        else:
            spec = as_object(value, "tool_choice")
            kind = spec.get("type")
            if kind == "function":
                fn = as_object(spec.get("function"), "tool_choice.function")
                name_path = "tool_choice.function.name"
                choice = _named_choice(nonempty(fn.get("name"), name_path), name_path, tools)
            elif kind == "allowed_tools":
                allowed = as_object(spec.get("allowed_tools"), "tool_choice.allowed_tools")
                mode = one_of(allowed.get("mode"), "tool_choice.allowed_tools.mode", ("auto", "required"))
                choice = ToolChoice(type="any" if mode == "required" else "auto")
            else:
                fail("tool_choice.type", f'expected "function" or "allowed_tools", got {shown(kind)}')
    elif legacy is not None:
        if isinstance(legacy, str):
            kind = one_of(legacy, "function_call", ("none", "auto"))
            choice = ToolChoice(type="none" if kind == "none" else "auto")
        else:
            spec = as_object(legacy, "function_call")
            choice = _named_choice(nonempty(spec.get("name"), "function_call.name"), "function_call.name", tools)
    if choice is not None and choice.type != "none" and not tools:
        fail("tool_choice" if value is not None else "function_call", "requires tools")
    parallel = obj.get("parallel_tool_calls")
    if parallel is not None and not as_bool(parallel, "parallel_tool_calls"):
        base = choice if choice is not None else ToolChoice()
        choice = ToolChoice(type=base.type, name=base.name, disable_parallel_tool_use=True)
    return choice


# -- everything else ------------------------------------------------------------------------------


def _max_tokens(obj: Mapping[str, object]) -> int:
    completion = obj.get("max_completion_tokens")
    if completion is not None:
        return as_int(completion, "max_completion_tokens", minimum=1)
    legacy = obj.get("max_tokens")
    if legacy is not None:
        return as_int(legacy, "max_tokens", minimum=1)
    return DEFAULT_MAX_TOKENS


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    items = as_array(value, "stop")
    if len(items) > MAX_STOP_SEQUENCES:
        fail("stop", f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(items)}")
    out = []
    for i, item in enumerate(items):
        # Whitespace is a real stop sequence ("\n" is a common one); only "" is meaningless.
        if not as_string(item, f"stop.{i}"):
            fail(f"stop.{i}", "must not be empty")
        out.append(str(item))
    return tuple(out)


def _thinking(value: object) -> tuple[ThinkingConfig, str]:
    if value is None:
        return ThinkingConfig(), ""
    key = as_string(value, "reasoning_effort").strip().lower()
    if key not in REASONING_EFFORTS:
        one_of(value, "reasoning_effort", tuple(REASONING_EFFORTS))
    effort = REASONING_EFFORTS[key]
    if effort is None:
        return ThinkingConfig(), ""
    return ThinkingConfig(type="adaptive"), effort


def _response_format(value: object) -> OutputFormat | None:
    if value is None:
        return None
    spec = as_object(value, "response_format")
    kind = one_of(spec.get("type"), "response_format.type", ("text", "json_object", "json_schema"))
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat(schema={"type": "object"})
    wrapper = as_object(spec.get("json_schema"), "response_format.json_schema")
    nonempty(wrapper.get("name"), "response_format.json_schema.name")
    raw = wrapper.get("schema")
    schema = {} if raw is None else as_object(raw, "response_format.json_schema.schema")
    check_depth(schema, "response_format.json_schema.schema")
    return OutputFormat(schema=schema)


def _sampling(obj: Mapping[str, object]) -> dict[str, float | None]:
    return bounded_numbers(obj, _SAMPLING_RANGES)


def _unsupported(obj: Mapping[str, object]) -> None:
    """Refuse what cannot be honoured, rather than answer something else than was asked."""
    n = obj.get("n")
    if n is not None and as_int(n, "n", minimum=1) > 1:
        fail("n", f"only one choice per request is supported, got n={n}")
    modalities = obj.get("modalities")
    if modalities is not None:
        for i, m in enumerate(as_array(modalities, "modalities")):
            if m != "text":
                fail(f"modalities.{i}", f'only "text" output is supported, got {shown(m)}')
    if obj.get("audio") is not None:
        fail("audio", "audio output is not supported")
    for key in ("logprobs",):
        if obj.get(key) is not None:
            as_bool(obj[key], key)  # accepted; answered with logprobs: null
    top_logprobs = obj.get("top_logprobs")
    if top_logprobs is not None:
        as_int(top_logprobs, "top_logprobs", minimum=0)
    seed = obj.get("seed")
    if seed is not None:
        as_int(seed, "seed")
    for key in ("user", "safety_identifier", "prompt_cache_key", "service_tier"):
        if obj.get(key) is not None:
            as_string(obj[key], key)
    for key in ("metadata", "logit_bias"):
        if obj.get(key) is not None:
            as_object(obj[key], key)


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
    model = nonempty(obj["model"], "model").strip()
    if "messages" not in obj:
        fail("messages", "field required")
    system, messages = parse_messages(obj["messages"])
    _unsupported(obj)
    stream = as_bool(obj.get("stream"), "stream")
    include_usage = False
    options = obj.get("stream_options")
    if options is not None:
        # OpenAI refuses stream_options without stream; ignoring it is kinder and harmless.
        include_usage = as_bool(as_object(options, "stream_options").get("include_usage"), "stream_options.include_usage")
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
