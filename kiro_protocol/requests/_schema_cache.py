"""Keys for the tool schemas a coding agent repeats on every turn, and the bounded cache of
their normalised forms.

Claude Code sends the same 24 tool schemas with every turn. Two things were recomputed from
them each time: the input-token estimate's cache key (a ``json.dumps`` of every schema, with
spaces, only to be hashed) and the normalised copy Kiro gets (``normalise_schema``). Both now
use one key per schema, its compact JSON text, computed once per request: by the installed
JSON codec when there is one (orjson writes it in a few microseconds), else by ``json``.

A schema's key is its JSON text, so a changed schema changes the key, and two schemas share one
only when ``json`` writes them the same (same keys in the same order, same values; ``{1: x}`` and
``{"1": x}`` share, and so do their normalised forms' JSON texts). A schema holding anything
``json`` cannot write (not a JSON value) gets no key and is never cached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from .._bounded_cache import BoundedCache
from .._json_codec import codec_dumps
from ._model import Tool

__all__ = ["SchemaCache", "schema_key", "schema_keys"]

# No circular check (a parsed JSON value has no cycles; one built by hand raises ValueError
# either way: "Circular reference detected" or a RecursionError's) and no spaces.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _stdlib_key(schema: object) -> bytes:
    return _ENCODER.encode(schema).encode("utf-8", "surrogatepass")


def schema_key(schema: Mapping[str, object] | None) -> bytes | None:
    """The key of ``schema`` (its compact JSON text), or None when it has none (absent, or not
    a JSON value)."""
    if schema is None:
        return None
    try:
        return codec_dumps(schema, _stdlib_key)
    except (TypeError, ValueError, RecursionError):
        return None


def schema_keys(tools: Sequence[Tool]) -> tuple[bytes | None, ...]:
    """``schema_key`` of each tool's input schema, in order."""
    return tuple(schema_key(tool.input_schema) for tool in tools)


class SchemaCache(BoundedCache[dict[str, object]]):
    """Normalised tool schemas by ``schema_key``: pure memoisation (a hit is the dict
    ``normalise_schema`` made for an equal schema), bounded to ``max_entries`` (the oldest
    goes first), safe to share between threads (at worst an entry is computed twice).

    A hit is the *same* dict for every request that has the schema: the Kiro body it goes into
    is read, serialised and never changed (``KiroRequest.conversation_state`` is read-only).
    """

    __slots__ = ()

    def __init__(self, max_entries: int = 512) -> None:
        super().__init__(max_entries)
