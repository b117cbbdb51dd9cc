"""The optional JSON accelerator (orjson) gives exactly the standard library's results: for the
client body (values and error messages), the Kiro body, and the upstream event payloads.

Each test runs both codecs itself, whatever ``KIRO_JSON_CODEC`` the tier runs with."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.runtime.json_codec import OrjsonCodec, install_json_codec
from kiro_protocol import LocalProtocolError, json_codec_name, use_json_codec
from kiro_protocol.requests._conversion import _serialise
from kiro_protocol.requests._json import parse_json_body
from kiro_protocol.responses._upstream_parse import UpstreamPayloadError, _json_object

pytest.importorskip("orjson")

_T = TypeVar("_T")


def _outcome(call: Callable[[], _T]) -> tuple[str, object]:
    """What ``call`` gave: ("value", it) or ("error", its type and message)."""
    try:
        return ("value", call())
    except Exception as exc:  # noqa: BLE001 - the outcome itself is compared
        return ("error", (type(exc).__name__, str(exc)))


def _both(call: Callable[[], _T]) -> tuple[tuple[str, object], tuple[str, object]]:
    """``call``'s outcome with the standard library, then with orjson installed."""
    previous = json_codec_name()
    try:
        use_json_codec(None)
        plain = _outcome(call)
        use_json_codec(OrjsonCodec())
        fast = _outcome(call)
    finally:
        install_json_codec(previous)
    return plain, fast


def _same(a: object, b: object) -> bool:
    """Equal JSON values, types included (1 is not 1.0 nor True; -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        assert isinstance(b, float)
        return repr(a) == repr(b)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def _same_outcome(plain: tuple[str, object], fast: tuple[str, object]) -> bool:
    if plain[0] != fast[0]:
        return False
    return plain[1] == fast[1] if plain[0] == "error" else _same(plain[1], fast[1])


# Every code point, lone surrogates included (json writes and reads them as \u escapes).
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(_TEXT, _JSON, max_size=5), st.sampled_from([True, False]), st.sampled_from([None, 1]))
def test_the_client_body_decodes_the_same(value: dict[str, object], ascii_only: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    body = text.encode("utf-8", "surrogatepass")
    plain, fast = _both(lambda: parse_json_body(body))
    assert plain[0] == "value"
    assert _same_outcome(plain, fast)


@given(_JSON)
def test_the_kiro_body_encodes_to_the_same_value(value: object) -> None:
    plain, fast = _both(lambda: _serialise({"conversationState": value}))
    assert plain[0] == fast[0] == "value"
    assert isinstance(plain[1], bytes) and isinstance(fast[1], bytes)
    # Byte for byte but for the spelling of floats ("1e-07" and "1e-7" are one number).
    assert _same(json.loads(plain[1]), json.loads(fast[1]))


@given(st.binary(max_size=40) | _JSON.map(lambda v: json.dumps({"k": v}).encode()[: -1]))
def test_bad_bodies_get_the_same_error(body: bytes) -> None:
    plain, fast = _both(lambda: parse_json_body(body))
    assert _same_outcome(plain, fast)


@given(st.dictionaries(_TEXT, _JSON, max_size=4) | st.binary(max_size=30))
def test_upstream_payloads_decode_the_same(value: dict[str, object] | bytes) -> None:
    payload = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    plain, fast = _both(lambda: _json_object("assistantResponseEvent", payload))
    assert _same_outcome(plain, fast)


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 123456789012345678901234567890}',  # orjson would read a float
        b'{"n": -18446744073709551616}',
        b'{"n": 18446744073709551615, "m": -9223372036854775808}',
        b'{"n": -9223372036854775809, "m": 18446744073709551616}',  # just beyond 64 bits
        b'{"n": [999999999999999999, -999999999999999999, 0.1234567890123456789]}',
        b'{"s": "\\ud800"}',  # a lone surrogate
        b'{"s": "\xed\xa0\x80"}',  # an encoded surrogate (json reads it, surrogatepass)
        b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
        '{"a": "\u00e9"}'.encode("utf-16"),
        b'{"n": NaN}',
        b'{"n": Infinity}',
        b'{"n": 1e999}',
        b'{"n": -1e400}',
        b'{"n": 1.7976931348623157e308, "z": -0.0, "e": 5e-324}',
        b'{"n": 01}',
        b'{"a": [1, 2,]}',
        b'{"s": "tab\there"}',  # a raw control character
        b' \t\r\n{"a": {}} \n',
        b'\x0c{"a": 1}',  # a form feed is not JSON whitespace
        b'{"a": 1}\x00',
        b'{"a": -0, "b": 1e-400, "c": 1E+2, "d": "\\ud83d\\ude00", "e": "\\/"}',
        b"[1, 2]",
        b'"text"',
        b"",
        b"\xff",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ],
)
def test_edge_cases_of_the_client_body(body: bytes) -> None:
    plain, fast = _both(lambda: parse_json_body(body))
    assert _same_outcome(plain, fast), (plain, fast)


@dataclass
class _Point:
    x: int


class _Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"n": math.nan},
        {"n": [1.0, -math.inf]},
        {"n": 2**64, "m": -(2**63) - 1},
        {"s": "\ud800 lone", "t": "\udfff"},
        {1: "a", "b": 2},
        {"p": _Point(1)},
        {"t": _Text("subclass")},
        {"t": ("tuple", 1)},
        {"f": [1e16, 1.5e-07, 0.1, -0.0, 5e-324, 1.7976931348623157e308]},
        {"c": "\x00\x1f\x7f\u2028\u2029</script>\"\\"},
        {"d": None},
        {"d": [None, math.nan], "e": {"f": math.inf}},
        {"text": "null, [null, :null and nan"},
        [math.nan],
        math.nan,
    ],
)
def test_edge_cases_of_the_kiro_body(value: object) -> None:
    plain, fast = _both(lambda: _serialise(value))
    assert plain[0] == fast[0], (plain, fast)
    if plain[0] == "error":
        assert plain == fast
    else:
        assert isinstance(plain[1], bytes) and isinstance(fast[1], bytes)
        assert _same(json.loads(plain[1]), json.loads(fast[1]))


def test_a_bad_body_reads_the_same_with_orjson() -> None:
    plain, fast = _both(lambda: parse_json_body(b'{"model": "x", "messages": [}'))
    assert plain == fast
    assert plain[0] == "error" and "request body: invalid JSON (Expecting value" in str(plain[1])


def test_a_bad_upstream_payload_reads_the_same() -> None:
    plain, fast = _both(lambda: _json_object("assistantResponseEvent", b'{"content": NaN}'))
    assert plain == fast == ("error", ("UpstreamPayloadError", str(UpstreamPayloadError("assistantResponseEvent", "not valid JSON"))))


def test_choosing_a_codec() -> None:
    previous = json_codec_name()
    try:
        assert install_json_codec("stdlib") == "stdlib" == json_codec_name()
        assert install_json_codec("orjson") == "orjson" == json_codec_name()
        assert install_json_codec("auto") == "orjson"
        with pytest.raises(ValueError, match="unknown JSON codec"):
            install_json_codec("simdjson")
    finally:
        install_json_codec(previous)


def test_nan_in_a_hand_built_request_is_refused_with_either_codec() -> None:
    plain, fast = _both(lambda: _serialise({"x": math.nan}))
    assert plain == fast
    assert plain[0] == "error"
    assert isinstance(plain[1], tuple) and plain[1][0] == LocalProtocolError.__name__


@pytest.mark.parametrize("length", [10, 3_000, 80_000])
def test_the_kiro_body_holds_no_more_memory_than_its_length(length: int) -> None:
    # A request holds its Kiro body while it streams; orjson's own bytes keep the buffer they
    # grew into (4 KiB for ten bytes, over ten times the length of a long string).
    import tracemalloc

    codec = OrjsonCodec()
    value = {"content": "x" * length}
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        out = codec.dumps(value)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    own = [tracemalloc.Filter(False, tracemalloc.__file__)]  # the snapshots' own bookkeeping
    held = sum(stat.size_diff for stat in after.filter_traces(own).compare_to(before.filter_traces(own), "filename"))
    assert out == json.dumps(value, separators=(",", ":")).encode()
    assert held <= len(out) + 100, (held, len(out))
