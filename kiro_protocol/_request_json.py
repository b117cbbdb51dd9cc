"""JSON helpers shared by the request parsers: decoding a body, path-named failures, and a
nesting bound for the values that are forwarded unchanged (tool inputs, schemas)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import NoReturn

from ._errors import LocalProtocolError

__all__ = ["fail", "type_name", "parse_json_body", "check_depth", "MAX_FORWARDED_DEPTH"]

#: Deepest nesting accepted in a forwarded JSON value. Real schemas and tool inputs nest a few
#: levels; the bound keeps serialising them far from the interpreter's recursion limit.
MAX_FORWARDED_DEPTH = 64


def fail(path: str, problem: str) -> NoReturn:
    """Raise the 400 for ``path`` (the message starts with the path; ``param`` is the path)."""
    raise LocalProtocolError(f"{path}: {problem}", param=path)


def type_name(value: object) -> str:
    """The JSON type name of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which cannot be sent back out
        raise ValueError(f"number {text} is out of range")
    return value


def parse_json_body(body: bytes | bytearray | str) -> Mapping[str, object]:
    """Decode a request body that must be a JSON object (400 otherwise).

    ``NaN``/``Infinity`` and numbers too large for a float are refused (they are not JSON, or
    could not be re-serialised as JSON), and so is nesting deep enough to exhaust the parser.
    """
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise LocalProtocolError("request body: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LocalProtocolError(f"request body: invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise LocalProtocolError(f"request body: expected a JSON object, got {type_name(value)}")
    return value


def check_depth(value: object, path: str, limit: int = MAX_FORWARDED_DEPTH) -> None:
    """400 when ``value`` nests arrays/objects deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            fail(path, f"nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children)
