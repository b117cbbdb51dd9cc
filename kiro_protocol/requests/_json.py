"""JSON helpers shared by the request parsers: decoding a body, path-named failures, and a
nesting bound for the values that are forwarded unchanged (tool inputs, schemas)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import NoReturn, cast

from .._errors import LocalProtocolError
from .._json_codec import codec_loads

__all__ = [
    "bounded_numbers",
    "fail",
    "type_name",
    "parse_json_body",
    "check_depth",
    "MAX_FORWARDED_DEPTH",
    "as_object",
    "as_array",
    "as_string",
    "as_int",
    "as_number",
    "as_bool",
]

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


def as_object(value: object, path: str) -> Mapping[str, object]:
    """``value`` as a JSON object, else the 400 for ``path``."""
    if not isinstance(value, Mapping):
        fail(path, f"expected an object, got {type_name(value)}")
    return cast("Mapping[str, object]", value)


def as_array(value: object, path: str) -> list[object]:
    """``value`` as a JSON array, else the 400 for ``path``."""
    if not isinstance(value, list):
        fail(path, f"expected an array, got {type_name(value)}")
    return value


def as_string(value: object, path: str) -> str:
    """``value`` as a string, else the 400 for ``path``."""
    if not isinstance(value, str):
        fail(path, f"expected a string, got {type_name(value)}")
    return value


def as_int(value: object, path: str, *, minimum: int | None = None) -> int:
    """``value`` as an integer (not a boolean) of at least ``minimum``, else the 400."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {type_name(value)}")
    if minimum is not None and value < minimum:
        fail(path, f"must be at least {minimum}, got {value}")
    return value


def as_number(value: object, path: str) -> float:
    """``value`` as a finite float (integers accepted), else the 400."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(path, f"expected a number, got {type_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        fail(path, "number out of range")
    if not math.isfinite(number):
        fail(path, "number out of range")
    return number


def bounded_numbers(obj: Mapping[str, object], ranges: Mapping[str, tuple[float, float]]) -> dict[str, float | None]:
    """Each field of ``ranges`` read from ``obj`` as a number within its (low, high) bounds; None
    when absent (sampling fields: checked, though Kiro takes none of them)."""
    out: dict[str, float | None] = {}
    for key, (low, high) in ranges.items():
        raw = obj.get(key)
        if raw is None:
            out[key] = None
            continue
        number = as_number(raw, key)
        if not low <= number <= high:
            fail(key, f"must be between {low:g} and {high:g}, got {number:g}")
        out[key] = number
    return out


def as_bool(value: object, path: str) -> bool:
    """``value`` as a boolean (``null`` is false), else the 400."""
    if value is None:
        return False
    if not isinstance(value, bool):
        fail(path, f"expected a boolean, got {type_name(value)}")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which cannot be sent back out
        raise ValueError(f"number {text} is out of range")
    return value


def _stdlib_loads(body: bytes | bytearray | str) -> object:
    return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json_body(body: bytes | bytearray | str) -> Mapping[str, object]:
    """Decode a request body that must be a JSON object (400 otherwise).

    ``NaN``/``Infinity`` and numbers too large for a float are refused (they are not JSON, or
    could not be re-serialised as JSON), and so is nesting deep enough to exhaust the parser.
    """
    try:
        # The installed codec (orjson) when there is one; json itself otherwise, and for every
        # text the codec refuses, so an error reads the same with either.
        value = codec_loads(body, _stdlib_loads)
    except RecursionError:
        raise LocalProtocolError("request body: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LocalProtocolError(f"request body: invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise LocalProtocolError(f"request body: expected a JSON object, got {type_name(value)}")
    return value


# Leaves of a parsed JSON value, told apart by their exact type before the slower ABC check.
_LEAF_TYPES = frozenset((str, int, float, bool, type(None)))


def check_depth(value: object, path: str, limit: int = MAX_FORWARDED_DEPTH) -> None:
    """400 when ``value`` nests arrays/objects deeper than ``limit`` (iterative: no recursion).

    Walked a level at a time with exact-type tests first: it runs over every tool's schema on
    every request, and a node tuple plus two ABC checks per leaf were most of its cost.
    """
    level: list[object] = [value]
    depth = 1
    while level:
        below: list[object] = []
        for node in level:
            kind = type(node)
            if kind is dict:
                below.extend(node.values())  # type: ignore[attr-defined]
            elif kind is list:
                below.extend(node)  # type: ignore[arg-type]
            elif kind in _LEAF_TYPES:
                continue
            elif isinstance(node, Mapping):
                below.extend(node.values())
            elif isinstance(node, list):
                below.extend(node)
            else:
                continue
            if depth > limit:
                fail(path, f"nested more than {limit} levels deep")
        level = below
        depth += 1
