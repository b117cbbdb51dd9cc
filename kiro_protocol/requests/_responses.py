"""OpenAI Responses API request body (``POST /v1/responses``) -> the internal ``Request``.

The same model the other two dialects parse into, so conversion, the linter and every upstream
limit apply once (docs/responses.md lists the mapping). Besides the ``Request``, the parse keeps
what the ``response`` object echoes back and the map from flattened namespace tool names to the
client's pair (``ResponsesRequest``).

Every problem is a ``LocalProtocolError`` (400 ``invalid_request_error``) whose message starts
with the JSON path of the field and whose ``param`` is that path, rendered in the OpenAI error
shape. Unknown top-level fields are ignored, as on the chat side (the API grows new ones often);
unknown item, part and tool types are refused. The gateway keeps no responses, so what needs a
stored one (``store: true``, ``previous_response_id``, ``conversation``, ``background``, saved
``prompt``\\ s, ``item_reference``) is a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._errors import LocalProtocolError
from ._json import (
    as_array,
    as_bool,
    as_int,
    as_object,
    as_string,
    bounded_numbers,
    check_depth,
    fail,
    parse_json_body,
    type_name,
)
from ._model import OutputFormat, Request, ThinkingConfig
from ._openai import DEFAULT_MAX_TOKENS, REASONING_EFFORTS
from ._openai_messages import nonempty, one_of
from ._responses_input import parse_input
from ._responses_tools import parse_tool_choice, parse_tools

__all__ = ["ResponsesRequest", "parse_responses_request"]

_STATELESS = "the gateway keeps no responses"
_SUMMARIES = ("auto", "concise", "detailed")
_SAMPLING = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsesRequest:
    """A parsed Responses request: the ``Request``, and what the answer needs besides it."""

    request: Request
    #: Flat tool name -> (namespace, name) of functions declared in ``namespace`` tools.
    namespaces: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    # What the ``response`` object echoes, as the client sent it (None: not sent).
    instructions: str | None = None
    tools: tuple[Mapping[str, object], ...] = ()
    tool_choice: object = "auto"
    parallel_tool_calls: bool = True
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    #: ``text.format`` (``{"type": "text"}`` when not sent).
    text_format: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({"type": "text"}))
    text_verbosity: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    truncation: str = "disabled"
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    #: ``include`` values (``reasoning.encrypted_content``...).
    include: tuple[str, ...] = ()


def _refuse_state(obj: Mapping[str, object]) -> None:
    """What would need a stored response (docs/responses.md, Not supported)."""
    if obj.get("store") is not None and as_bool(obj["store"], "store"):
        fail("store", f"true is not supported: {_STATELESS}; send store: false (or leave it out)")
    for key in ("previous_response_id", "conversation"):
        if obj.get(key) is not None:
            fail(key, f"not supported: {_STATELESS}; send the whole conversation in input")
    if obj.get("background") is not None and as_bool(obj["background"], "background"):
        fail("background", f"background responses are not supported: {_STATELESS}")
    if obj.get("prompt") is not None:
        fail("prompt", "saved prompts are not supported; send the instructions and input themselves")


def _reasoning(value: object) -> tuple[ThinkingConfig, str, str | None, str | None]:
    """(thinking, the adaptive effort, the effort and summary as sent)."""
    if value is None:
        return ThinkingConfig(), "", None, None
    spec = as_object(value, "reasoning")
    summary = spec.get("summary", spec.get("generate_summary"))
    if summary is not None:
        summary = one_of(summary, "reasoning.summary", _SUMMARIES)
    raw = spec.get("effort")
    if raw is None:
        # A summary alone asks for summaries of reasoning the model does; it turns none on.
        return ThinkingConfig(), "", None, summary
    sent = one_of(raw, "reasoning.effort", tuple(REASONING_EFFORTS))
    effort = REASONING_EFFORTS[sent]
    if effort is None:
        return ThinkingConfig(), "", sent, summary
    return ThinkingConfig(type="adaptive"), effort, sent, summary


def _text(value: object) -> tuple[OutputFormat | None, Mapping[str, object], str | None]:
    """``text``: the output format (and it as sent) and the verbosity."""
    if value is None:
        return None, {"type": "text"}, None
    spec = as_object(value, "text")
    verbosity = spec.get("verbosity")
    if verbosity is not None:
        verbosity = one_of(verbosity, "text.verbosity", ("low", "medium", "high"))
    raw = spec.get("format")
    if raw is None:
        return None, {"type": "text"}, verbosity
    fmt = as_object(raw, "text.format")
    kind = one_of(fmt.get("type"), "text.format.type", ("text", "json_object", "json_schema"))
    if kind == "text":
        return None, fmt, verbosity
    if kind == "json_object":
        return OutputFormat(schema={"type": "object"}), fmt, verbosity
    nonempty(fmt.get("name"), "text.format.name")
    if fmt.get("description") is not None:
        as_string(fmt["description"], "text.format.description")
    if fmt.get("strict") is not None:
        as_bool(fmt["strict"], "text.format.strict")
    schema = as_object(fmt.get("schema"), "text.format.schema")
    check_depth(schema, "text.format.schema")
    return OutputFormat(schema=schema), fmt, verbosity


def _sampling(obj: Mapping[str, object]) -> dict[str, float | None]:
    return bounded_numbers(obj, _SAMPLING)


def _optional_string(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else as_string(value, key)


def _metadata(value: object) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    spec = as_object(value, "metadata")
    for key, item in spec.items():
        as_string(item, f"metadata.{key}")
    return MappingProxyType(dict(spec))  # type: ignore[arg-type]  # every value checked above


def _accepted(obj: Mapping[str, object]) -> None:
    """Fields that change nothing here: type-checked so that a typo still fails loudly."""
    top_logprobs = obj.get("top_logprobs")
    if top_logprobs is not None and as_int(top_logprobs, "top_logprobs", minimum=0) > 20:
        fail("top_logprobs", f"must be at most 20, got {top_logprobs}")
    if obj.get("max_tool_calls") is not None:
        as_int(obj["max_tool_calls"], "max_tool_calls", minimum=1)
    for key in ("stream_options", "client_metadata"):
        if obj.get(key) is not None:
            as_object(obj[key], key)


def parse_responses_request(body: bytes | str | Mapping[str, object]) -> ResponsesRequest:
    """Parse and validate a Responses API request body.

    ``body`` is the raw request body or an already-decoded JSON object. The ``request`` goes
    through ``convert_request`` like every other dialect's.
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
    _refuse_state(obj)
    if obj.get("input") is None:
        fail("input", "field required")
    instructions = _optional_string(obj, "instructions")
    system, messages = parse_input(obj["input"], instructions or "")
    tools = parse_tools(obj.get("tools"))
    parallel = obj.get("parallel_tool_calls")
    tool_choice = parse_tool_choice(obj.get("tool_choice"), parallel, tools)
    thinking, effort, effort_sent, summary = _reasoning(obj.get("reasoning"))
    output_format, text_format, verbosity = _text(obj.get("text"))
    raw_max = obj.get("max_output_tokens")
    max_output = None if raw_max is None else as_int(raw_max, "max_output_tokens", minimum=1)
    stream = as_bool(obj.get("stream"), "stream")
    sampling = _sampling(obj)
    truncation = obj.get("truncation")
    if truncation is not None:
        one_of(truncation, "truncation", ("auto", "disabled"))
    include = tuple(as_string(v, f"include.{i}") for i, v in enumerate(as_array(obj.get("include") or [], "include")))
    _accepted(obj)
    cache_key = _optional_string(obj, "prompt_cache_key")
    request = Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=max_output or DEFAULT_MAX_TOKENS,
        stream=stream,
        tools=tools.tools,
        tool_choice=tool_choice,
        thinking=thinking,
        effort=effort,
        output_format=output_format,
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        # Codex keeps one key per thread: one Kiro conversation id per Codex session.
        session_id=(cache_key or "").strip(),
    )
    raw_tools = obj.get("tools")
    return ResponsesRequest(
        request=request,
        namespaces=tools.namespaces,
        instructions=instructions,
        tools=tuple(t for t in raw_tools if isinstance(t, Mapping)) if isinstance(raw_tools, list) else (),
        tool_choice="auto" if obj.get("tool_choice") is None else obj["tool_choice"],
        parallel_tool_calls=True if parallel is None else bool(parallel),
        metadata=_metadata(obj.get("metadata")),
        reasoning_effort=effort_sent,
        reasoning_summary=summary,
        text_format=text_format,
        text_verbosity=verbosity,
        max_output_tokens=max_output,
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        truncation=str(truncation or "disabled"),
        user=_optional_string(obj, "user"),
        safety_identifier=_optional_string(obj, "safety_identifier"),
        prompt_cache_key=cache_key,
        service_tier=_optional_string(obj, "service_tier"),
        include=include,
    )
