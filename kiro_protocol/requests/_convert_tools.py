"""Tool definitions -> Kiro ``toolSpecification`` objects, with the linter's tool repairs.

Repairs (rule codes of ``_linter.RULES``): ``tool-name`` (shorten reversibly, drop
duplicates), ``tool-description`` (fill empty, cut long), ``tool-schema`` (normalise),
``tool-specs`` (placeholders for tools used in history but no longer offered).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._linter import HARD_MAX_TOOL_DESCRIPTION_LENGTH, MAX_TOOL_NAME_LENGTH
from ._model import Tool, ToolKind
from ._schema_cache import SchemaCache

__all__ = ["ToolNames", "build_tool_specs", "normalise_schema", "PLACEHOLDER_DESCRIPTION"]

PLACEHOLDER_DESCRIPTION = "Tool used in conversation history"
_PLACEHOLDER_SCHEMA: dict[str, object] = {"type": "object", "properties": {}, "additionalProperties": True}
# Nested schemas deeper than this are forwarded without normalisation (no recursion bombs).
_MAX_SCHEMA_DEPTH = 32


@dataclass(slots=True)
class ToolNames:
    """Client tool name <-> upstream tool name, for names longer than Kiro allows."""

    to_upstream: dict[str, str] = field(default_factory=dict)
    to_client: dict[str, str] = field(default_factory=dict)

    def upstream(self, name: str) -> str:
        """The upstream name for ``name``, shortening it (stably) when it is too long."""
        if len(name) <= MAX_TOOL_NAME_LENGTH:
            return name
        short = self.to_upstream.get(name)
        if short is None:
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
            # 64 = 54 kept characters + "_" + 9 hex digits; a hash suffix keeps distinct
            # names distinct even when they share a long prefix.
            short = f"{name[:54]}_{digest[:9]}"
            self.to_upstream[name] = short
            self.to_client[short] = name
        return short


def normalise_schema(schema: Mapping[str, object] | None) -> dict[str, object]:
    """A copy of ``schema`` that Kiro accepts: an ``object`` schema whose ``properties`` is an
    object and whose ``required`` (if any) is a non-empty string array. ``null`` values of
    ``properties``/``required``/``items``/``type``/``additionalProperties`` are removed at
    every level."""
    if schema is None:
        return dict(_PLACEHOLDER_SCHEMA)
    out = _clean(schema, 0)
    out["type"] = "object"
    if not isinstance(out.get("properties"), dict):
        out["properties"] = {}
    return out


def _clean(schema: Mapping[str, object], depth: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in schema.items():
        if value is None and key in ("properties", "required", "additionalProperties", "type", "items"):
            continue
        if key == "required":
            if isinstance(value, list):
                names = [v for v in value if isinstance(v, str)]
                if names:
                    out[key] = names
            continue
        if key == "additionalProperties" and not isinstance(value, (bool, Mapping)):
            continue
        if key == "properties":
            if isinstance(value, Mapping) and depth < _MAX_SCHEMA_DEPTH:
                out[key] = {
                    str(k): _clean(v, depth + 1) if isinstance(v, Mapping) else v for k, v in value.items()
                }
            elif isinstance(value, Mapping):
                out[key] = dict(value)
            continue
        if key == "items" and isinstance(value, Mapping) and depth < _MAX_SCHEMA_DEPTH:
            out[key] = _clean(value, depth + 1)
            continue
        out[key] = value
    return out


def _description(tool: Tool, limit: int) -> str:
    text = tool.description
    if not text.strip():
        text = f"The {tool.name} tool."
    if len(text) > limit:
        text = text[:limit]
    return text


def build_tool_specs(
    tools: Iterable[Tool],
    history_tool_names: Iterable[str],
    *,
    names: ToolNames,
    max_description_length: int,
    repairs: list[str],
    schema_cache: SchemaCache | None = None,
    keys: Sequence[bytes | None] = (),
) -> list[dict[str, object]]:
    """The ``tools`` list of the current message.

    Server tools are skipped. ``history_tool_names`` are the *client* names of tools used in
    history; any of them not offered now gets a placeholder spec. Each repair applied is
    appended to ``repairs`` as ``"<rule code>: <what>"``. With ``schema_cache`` and ``keys``
    (``schema_key`` of each tool's schema, in order), a schema normalised before is not
    normalised again.
    """
    limit = max(1, min(max_description_length, HARD_MAX_TOOL_DESCRIPTION_LENGTH))
    specs: list[dict[str, object]] = []
    declared: set[str] = set()
    tools = list(tools)
    cached = schema_cache is not None and len(keys) == len(tools)
    for index, tool in enumerate(tools):
        if tool.kind is ToolKind.SERVER:
            repairs.append(f"server-tool: {tool.name} ({tool.type}) not forwarded")
            continue
        upstream = names.upstream(tool.name)
        if upstream != tool.name:
            repairs.append(f"tool-name: {tool.name!r} sent as {upstream!r}")
        if upstream in declared:
            repairs.append(f"tool-name: duplicate {tool.name!r} dropped")
            continue
        declared.add(upstream)
        description = _description(tool, limit)
        if description != tool.description:
            what = "filled" if not tool.description.strip() else f"cut to {limit} characters"
            repairs.append(f"tool-description: {tool.name} {what}")
        key = keys[index] if cached else None
        schema = schema_cache.get(key) if key is not None and schema_cache is not None else None
        if schema is None:
            schema = normalise_schema(tool.input_schema)
            if key is not None and schema_cache is not None:
                schema_cache.put(key, schema)
        specs.append(
            {
                "toolSpecification": {
                    "name": upstream,
                    "description": description,
                    "inputSchema": {"json": schema},
                }
            }
        )
    for client_name in history_tool_names:
        upstream = names.upstream(client_name)
        if upstream in declared:
            continue
        declared.add(upstream)
        repairs.append(f"tool-specs: placeholder spec for {client_name!r}")
        specs.append(
            {
                "toolSpecification": {
                    "name": upstream,
                    "description": PLACEHOLDER_DESCRIPTION,
                    "inputSchema": {"json": dict(_PLACEHOLDER_SCHEMA)},
                }
            }
        )
    return specs
