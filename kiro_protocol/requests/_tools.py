"""Anthropic tool definitions -> ``Tool`` values.

Three kinds (``ToolKind``):

* custom tools (``name``, ``description``, ``input_schema``);
* provider-executed *server* tools (``web_search_*``, ``web_fetch_*``, ``code_execution_*``,
  ``tool_search_tool_*``, ``mcp_toolset``): kept in the model so the converter can report
  them, never forwarded;
* deferred tools (``defer_loading: true``), whose schema may be absent.

Anthropic-defined tools that the *client* executes (``bash_*``, ``text_editor_*``,
``memory_*``, ``computer_*``) have no schema on the wire; they become custom tools with the
schema their documentation describes, so the model can still call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from ._json import check_depth, fail
from ._model import Tool, ToolKind

__all__ = ["parse_tool", "SERVER_TOOL_PREFIXES"]

#: ``type`` prefixes of tools the provider (not the client) executes.
SERVER_TOOL_PREFIXES = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_", "mcp_toolset")

_STR: dict[str, object] = {"type": "string"}
_INT_ARRAY: dict[str, object] = {"type": "array", "items": {"type": "integer"}}

# Client-executed Anthropic-defined tools: (description, schema) by ``type`` prefix.
_DEFINED_TOOLS: dict[str, tuple[str, dict[str, object]]] = {
    "bash_": (
        "Run a command in a persistent bash shell. Set restart to true to restart the shell.",
        {"type": "object", "properties": {"command": _STR, "restart": {"type": "boolean"}}},
    ),
    "text_editor_": (
        "View, create and edit files. Commands: view, create, str_replace, insert, undo_edit.",
        {
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "enum": ["view", "create", "str_replace", "insert", "undo_edit"],
                },
                "path": _STR,
                "file_text": _STR,
                "old_str": _STR,
                "new_str": _STR,
                "insert_line": {"type": "integer"},
                "view_range": _INT_ARRAY,
            },
            "required": ["command", "path"],
        },
    ),
    "memory_": (
        "Read and write files in the /memories directory. Commands: view, create, str_replace, "
        "insert, delete, rename.",
        {
            "type": "object",
            "properties": {
                "command": _STR,
                "path": _STR,
                "file_text": _STR,
                "old_str": _STR,
                "new_str": _STR,
                "insert_line": {"type": "integer"},
                "insert_text": _STR,
                "old_path": _STR,
                "new_path": _STR,
                "view_range": _INT_ARRAY,
            },
            "required": ["command"],
        },
    ),
    "computer_": (
        "Control the computer's screen, mouse and keyboard. Actions include screenshot, "
        "left_click, type, key, mouse_move, scroll.",
        {
            "type": "object",
            "properties": {
                "action": _STR,
                "coordinate": _INT_ARRAY,
                "text": _STR,
                "scroll_direction": _STR,
                "scroll_amount": {"type": "integer"},
            },
            "required": ["action"],
        },
    ),
}


def _domains(obj: Mapping[str, object], path: str) -> tuple[str, ...]:
    value = obj.get(path.rsplit(".", 1)[1])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) and d.strip() for d in value):
        fail(path, "expected an array of domain names")
    return tuple(d.strip().lower() for d in value)


def parse_tool(obj: Mapping[str, object], path: str) -> Tool:
    """Parse one entry of ``tools`` (``path`` is its location, ``tools.3``)."""
    name = obj.get("name")
    if not isinstance(name, str):
        fail(f"{path}.name", "expected a string" if "name" in obj else "field required")
    if not name.strip():
        fail(f"{path}.name", "must not be empty")
    description = obj.get("description")
    if description is not None and not isinstance(description, str):
        fail(f"{path}.description", "expected a string")
    description = description or ""
    kind = obj.get("type")
    if kind is not None and not isinstance(kind, str):
        fail(f"{path}.type", "expected a string")
    if kind and kind != "custom":
        if kind.startswith(SERVER_TOOL_PREFIXES):
            allowed, blocked = _domains(obj, f"{path}.allowed_domains"), _domains(obj, f"{path}.blocked_domains")
            if allowed and blocked:
                fail(path, "allowed_domains and blocked_domains cannot both be set")
            return Tool(
                name=name,
                description=description,
                kind=ToolKind.SERVER,
                type=kind,
                allowed_domains=allowed,
                blocked_domains=blocked,
            )
        for prefix, (default_description, defined_schema) in _DEFINED_TOOLS.items():
            if kind.startswith(prefix):
                return Tool(
                    name=name,
                    description=description or default_description,
                    input_schema=defined_schema,
                    type=kind,
                )
        fail(f"{path}.type", f"unsupported tool type {kind!r}")
    schema = obj.get("input_schema")
    deferred = obj.get("defer_loading") is True
    if schema is None:
        if not deferred:
            fail(f"{path}.input_schema", "field required")
        return Tool(name=name, description=description, kind=ToolKind.DEFERRED)
    if not isinstance(schema, Mapping):
        fail(f"{path}.input_schema", "expected an object")
    check_depth(schema, f"{path}.input_schema")
    return Tool(
        name=name,
        description=description,
        input_schema=cast("Mapping[str, object]", schema),
        kind=ToolKind.DEFERRED if deferred else ToolKind.CUSTOM,
    )
