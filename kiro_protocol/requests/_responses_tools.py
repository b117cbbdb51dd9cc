"""The Responses API's ``tools`` and ``tool_choice`` -> ``Tool`` values and the ``ToolChoice``.

``function`` tools become tools as on the chat side. A ``namespace`` groups functions: each
becomes one tool named ``<namespace>__<name>`` (Kiro has no namespaces), and the map from that
flat name back to the pair lets the answer's ``function_call`` carry the client's ``name`` and
``namespace`` again. A ``web_search`` tool becomes a web-search server tool, as on
/v1/messages: alone or forced, the request is searched through Kiro's MCP endpoint; beside other
tools it is left out and the model answers (docs/web-search.md). Every other hosted tool is a 400,
since the model would be told about a tool nobody runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ._json import as_array, as_bool, as_object, as_string, check_depth, fail
from ._model import Tool, ToolChoice, ToolKind
from ._openai_messages import nonempty, one_of, shown
from ._responses_input import qualified_name

__all__ = ["ResponsesTools", "parse_tools", "parse_tool_choice", "WEB_SEARCH_TYPES"]

#: The web-search tool types (also ``tool_choice`` types that force one). A tuple: a client's
#: ``type`` may be any JSON value, and ``in`` on a set would raise for a list.
WEB_SEARCH_TYPES = ("web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11")

_CHOICES: dict[str, Literal["none", "auto", "any"]] = {"none": "none", "auto": "auto", "required": "any"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsesTools:
    """The parsed ``tools``."""

    tools: tuple[Tool, ...] = ()
    #: Flat tool name -> (namespace, name), for the functions of ``namespace`` tools.
    namespaces: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))


def _function(obj: Mapping[str, object], path: str, name: str) -> Tool:
    raw_description = obj.get("description")
    description = "" if raw_description is None else as_string(raw_description, f"{path}.description")
    for key in ("strict", "defer_loading"):
        if obj.get(key) is not None:
            as_bool(obj[key], f"{path}.{key}")  # accepted: the schema is a request to the model
    params = obj.get("parameters")
    schema: Mapping[str, object]
    if params is None:
        schema = {"type": "object", "properties": {}}
    else:
        schema = as_object(params, f"{path}.parameters")
        check_depth(schema, f"{path}.parameters")
    return Tool(name=name, description=description, input_schema=schema)


def _namespace(obj: Mapping[str, object], path: str) -> list[tuple[str, Tool, tuple[str, str]]]:
    namespace = nonempty(obj.get("name"), f"{path}.name")
    if obj.get("description") is not None:
        as_string(obj["description"], f"{path}.description")
    out = []
    for i, item in enumerate(as_array(obj.get("tools"), f"{path}.tools")):
        ipath = f"{path}.tools.{i}"
        member = as_object(item, ipath)
        if member.get("type") != "function":
            fail(f"{ipath}.type", f'only "function" tools are supported in a namespace, got {shown(member.get("type"))}')
        name = nonempty(member.get("name"), f"{ipath}.name")
        flat = qualified_name(namespace, name)
        out.append((f"{ipath}.name", _function(member, ipath, flat), (namespace, name)))
    return out


def parse_tools(value: object) -> ResponsesTools:
    """``tools``: functions and namespaces of functions; web search dropped; the rest a 400."""
    if value is None:
        return ResponsesTools()
    parsed: list[tuple[str, Tool]] = []
    namespaces: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(as_array(value, "tools")):
        path = f"tools.{i}"
        obj = as_object(item, path)
        kind = obj.get("type")
        if kind == "function":
            name = nonempty(obj.get("name"), f"{path}.name")
            parsed.append((f"{path}.name", _function(obj, path, name)))
        elif kind == "namespace":
            for name_path, tool, pair in _namespace(obj, path):
                parsed.append((name_path, tool))
                namespaces[tool.name] = pair
        elif kind in WEB_SEARCH_TYPES:
            parsed.append((f"{path}.type", _web_search(obj, path, str(kind))))
        elif kind == "custom":
            fail(f"{path}.type", "custom (free-form) tools are not supported; declare a function tool with a JSON schema")
        else:
            fail(f"{path}.type", f'expected "function" or "namespace" (hosted tools do not run through Kiro), got {shown(kind)}')
    seen: dict[str, str] = {}
    for name_path, tool in parsed:
        if tool.name in seen:
            fail(name_path, f"duplicate function name {tool.name!r} (also {seen[tool.name]})")
        seen[tool.name] = name_path
    return ResponsesTools(tools=tuple(tool for _, tool in parsed), namespaces=MappingProxyType(namespaces))


def _web_search(obj: Mapping[str, object], path: str, kind: str) -> Tool:
    """A web-search server tool named after its type; ``filters.allowed_domains`` kept."""
    allowed: tuple[str, ...] = ()
    filters = obj.get("filters")
    if filters is not None:
        domains = as_object(filters, f"{path}.filters").get("allowed_domains")
        if domains is not None:
            dpath = f"{path}.filters.allowed_domains"
            allowed = tuple(nonempty(d, f"{dpath}.{i}").strip().lower() for i, d in enumerate(as_array(domains, dpath)))
    return Tool(name=kind, kind=ToolKind.SERVER, type=kind, allowed_domains=allowed)


def _named(name: str, tools: ResponsesTools) -> str:
    """The flat name a forced function means: its own, or a namespaced function's short name."""
    if any(t.name == name and t.kind is not ToolKind.SERVER for t in tools.tools):
        return name
    matches = [flat for flat, (_, short) in tools.namespaces.items() if short == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail("tool_choice.name", f"{name!r} is in several namespaces; name it as <namespace>__{name}")
    fail("tool_choice.name", f"names the function {name!r}, which is not in tools")


def parse_tool_choice(value: object, parallel: object, tools: ResponsesTools) -> ToolChoice | None:
    """``tool_choice`` and ``parallel_tool_calls`` as one ``ToolChoice`` (None: the default)."""
    choice: ToolChoice | None = None
    if isinstance(value, str):
        choice = ToolChoice(type=_CHOICES[one_of(value, "tool_choice", tuple(_CHOICES))])
    elif value is not None:
        spec = as_object(value, "tool_choice")
        kind = spec.get("type")
        if kind == "function":
            choice = ToolChoice(type="tool", name=_named(nonempty(spec.get("name"), "tool_choice.name"), tools))
        elif kind == "allowed_tools":
            mode = one_of(spec.get("mode"), "tool_choice.mode", ("auto", "required"))
            as_array(spec.get("tools"), "tool_choice.tools")  # the subset is not enforced
            choice = ToolChoice(type="any" if mode == "required" else "auto")
        elif kind in WEB_SEARCH_TYPES:
            searches = [t.name for t in tools.tools if t.kind is ToolKind.SERVER]
            if not searches:
                fail("tool_choice.type", f"forces {kind}, but tools declares no web_search tool")
            choice = ToolChoice(type="tool", name=searches[0])
        else:
            fail("tool_choice.type", f'expected "function" or "allowed_tools", got {shown(kind)}')
    if choice is not None and choice.type in ("any", "tool") and not tools.tools:
        fail("tool_choice", "requires tools")
    if choice is not None and choice.type == "auto" and not tools.tools:
        choice = None  # nothing to choose from: the plain default
    if parallel is not None and not as_bool(parallel, "parallel_tool_calls"):
        base = choice if choice is not None else ToolChoice()
        choice = ToolChoice(type=base.type, name=base.name, disable_parallel_tool_use=True)
    return choice
