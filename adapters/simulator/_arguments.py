"""Tool arguments a model could plausibly produce, generated from the tool's JSON schema.

Only what the schema requires is filled in (a model asked to "use the Bash tool" sends the
command, not every optional flag). Values follow the schema first (``const``, ``enum``,
``default``, types, bounds) and the property name second, so a ``command`` becomes a harmless
``echo``, a path points into /tmp and a URL at example.com. Pure and deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["example_arguments", "echo_command", "DEFAULT_ECHO"]

#: The command a Bash-like tool gets when the prompt names none.
DEFAULT_ECHO = "echo hello from the kiro2api simulator"
# How deep nested object/array schemas are followed (schemas can be recursive via $ref).
_MAX_DEPTH = 6
# An ``echo`` the prompt spells out: "run `echo hi`", "run echo 'hi'" (up to a backtick,
# double quote or the end of the line).
_ECHO_IN_PROMPT = re.compile(r"\becho\s+[^`\n\"]{1,200}")
# An absolute file path the user named ("write /home/me/notes.txt"): a path argument uses it.
_PATH_IN_PROMPT = re.compile(r"(?<![\w/])/(?:[\w.-]+/)*[\w-]+\.[A-Za-z0-9]{1,8}\b")


def echo_command(prompt: str, index: int = 0) -> str:
    """The shell command for a Bash-like tool: the ``echo ...`` the prompt asks for, else a default.

    Parallel calls (``index`` > 0) get a numbered variant so each call is distinguishable.
    """
    match = _ECHO_IN_PROMPT.search(prompt)
    command = match.group(0).strip() if match else DEFAULT_ECHO
    return command if index == 0 else f"{command} {index + 1}"


def _by_name(name: str, prompt: str, index: int) -> str:
    key = name.lower()
    if key in ("command", "cmd", "shell_command", "script"):
        return echo_command(prompt, index)
    if "path" in key or "file" in key or key in ("dir", "directory", "cwd"):
        named = _PATH_IN_PROMPT.search(prompt)
        if named and index == 0:
            return named.group(0)
        return "/tmp/kiro2api-simulator.txt" if index == 0 else f"/tmp/kiro2api-simulator-{index + 1}.txt"
    if "url" in key or "uri" in key:
        return "https://example.com/"
    if key in ("pattern", "glob", "regex"):
        return "*.py"
    if key in ("query", "search", "q", "prompt", "question", "search_term"):
        excerpt = " ".join(prompt.split())[:60]
        return excerpt or "kiro2api simulator"
    if key in ("location", "city", "place"):
        return "Tokyo"
    if key == "old_string":  # what a Write by the simulator put in the file
        return "Hello from"
    if key == "new_string":
        return "Hello again from"
    if key in ("content", "text", "body", "message", "contents"):
        return "Hello from the kiro2api simulator."
    if key in ("description", "summary", "title", "reason"):
        return "Simulated call from the kiro2api simulator"
    if key in ("activeform", "active_form"):
        return "Running the simulated task"
    if key in ("language", "lang"):
        return "python"
    return "example"


def _first_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        for item in kind:
            if isinstance(item, str) and item != "null":
                return item
    if isinstance(schema.get("properties"), Mapping):
        return "object"
    if "items" in schema:
        return "array"
    return None


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        value = max(value, low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0))
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
        value = high
    return int(value) if integer else float(value)


def _string(name: str, schema: Mapping[str, Any], prompt: str, index: int) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        text = "2026-01-01T00:00:00Z"
    elif fmt == "date":
        text = "2026-01-01"
    elif fmt in ("uri", "url"):
        text = "https://example.com/"
    elif fmt == "email":
        text = "simulator@example.com"
    else:
        text = _by_name(name, prompt, index)
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and len(text) < min_length:
        text += "x" * (min_length - len(text))
    if isinstance(max_length, int) and max_length >= 0 and len(text) > max_length:
        text = text[:max_length]
    return text


def _value(name: str, schema: object, prompt: str, index: int, depth: int) -> object:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return _by_name(name, prompt, index)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                if isinstance(branch, Mapping) and branch.get("type") != "null":
                    return _value(name, branch, prompt, index, depth + 1)
    kind = _first_type(schema)
    if kind == "object":
        return _object(schema, prompt, index, depth + 1)
    if kind == "array":
        min_items = schema.get("minItems")
        count = min_items if isinstance(min_items, int) and min_items > 0 else 1
        item = _value(name.rstrip("s") or name, schema.get("items"), prompt, index, depth + 1)
        return [item] * min(count, 8)
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(name, schema, prompt, index)


def _object(schema: Mapping[str, Any], prompt: str, index: int, depth: int) -> dict[str, object]:
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, Mapping):
        properties = {}
    names = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
    return {name: _value(name, properties.get(name), prompt, index, depth) for name in names}


def example_arguments(schema: object, *, prompt: str = "", index: int = 0) -> dict[str, object]:
    """Arguments for a tool with input schema ``schema`` (the ``inputSchema.json`` object).

    Args:
        schema: the tool's JSON schema; anything that is not an object schema gives ``{}``.
        prompt: the user's text, mined for an ``echo`` command or a search query.
        index: which of several parallel calls this is (0 for the first), to vary the values.
    """
    if not isinstance(schema, Mapping):
        return {}
    return _object(schema, prompt, index, 0)
