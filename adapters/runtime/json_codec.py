"""orjson as the core's JSON codec (``kiro_protocol.use_json_codec``), when it is installed.

orjson is an optional extra (``pip install 'kiro2api[fast]'``). ``KIRO_JSON_CODEC`` picks:
``auto`` (the default: orjson when importable, else the standard library), ``stdlib``, or
``orjson`` (a start-up error without it).

The core's contract is "exactly json's result, or refuse". Where orjson reads or writes
differently from ``json``, this codec refuses and the core uses ``json`` for that call:

- reading, a run of 19 digits or more (orjson reads an integer beyond 64 bits as a float, and
  -9223372036854775809 has 19 digits; shorter integers fit); lone
  surrogates, invalid UTF-8, UTF-16/32, NaN/Infinity and overflowing numbers orjson refuses
  by itself (``json`` then words the error);
- writing, NaN and Infinity (orjson writes ``null``: any output with a ``null`` value in it is
  left to ``json``, which refuses non-finite numbers), integers beyond 64 bits, keys that are not
  strings, subclasses of ``str``/``int``/``dict``/``list``, dataclasses and datetimes
  (orjson refuses them all with the options below). Floats may be spelled differently
  (``1e-7`` for ``1e-07``): the same number.
"""

from __future__ import annotations

from typing import Final

from kiro_protocol import JsonCodec, use_json_codec

try:
    import orjson
except ImportError:  # the optional extra is not installed
    orjson = None  # type: ignore[assignment]

__all__ = ["OrjsonCodec", "install_json_codec", "orjson_installed", "JSON_CODEC_CHOICES"]

JSON_CODEC_CHOICES: Final = ("auto", "stdlib", "orjson")

# Digits -> "0", every other byte -> " ": a run of 19 zeros may be an integer orjson does not keep
# (below -2**63 or above 2**64 - 1; every integer of 18 digits or fewer fits).
_DIGITS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_INTEGER: Final = b"0" * 19


class OrjsonCodec:
    """The core's ``JsonCodec`` on orjson (see the module docstring for what it leaves to json)."""

    name = "orjson"

    def __init__(self) -> None:
        if orjson is None:
            raise RuntimeError("orjson is not installed (pip install 'kiro2api[fast]')")
        self._options = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS

    def loads(self, data: bytes | bytearray | str) -> object:
        if isinstance(data, str):
            raise ValueError("text is left to json")  # the core hands over bytes; tests may not
        if _LONG_INTEGER in data.translate(_DIGITS):
            raise ValueError("a long integer is left to json")
        return orjson.loads(data)

    def dumps(self, value: object) -> bytes:
        out = orjson.dumps(value, option=self._options)
        # A null value, maybe a NaN or an Infinity, which json refuses. In compact output a value
        # follows ":", "," or "[", or is the whole text; "null" inside a string is no value. (One
        # search first: each costs about 0.035 ms on a 68 KB body, more than orjson's dumps.)
        if b"null" in out and (b":null" in out or b",null" in out or b"[null" in out or out == b"null"):
            raise ValueError("null is left to json")
        # orjson's bytes keep the buffer it grew into (about 4 KiB for a few bytes, up to 13 times
        # the text for long strings), and a request holds its Kiro body for as long as it
        # streams: 1,000 held streams kept 3 MiB of slack. An exact copy is a memcpy.
        return bytes(memoryview(out))


def orjson_installed() -> bool:
    """Whether the optional orjson is importable."""
    return orjson is not None


def install_json_codec(choice: str) -> str:
    """Install the codec ``choice`` (one of ``JSON_CODEC_CHOICES``) into the core; return the
    name of the codec in use. ``RuntimeError`` when ``orjson`` is asked for and not installed."""
    codec: JsonCodec | None = None
    if choice == "orjson" or (choice == "auto" and orjson is not None):
        codec = OrjsonCodec()
    elif choice not in JSON_CODEC_CHOICES:
        raise ValueError(f"unknown JSON codec {choice!r}")
    use_json_codec(codec)
    return "stdlib" if codec is None else codec.name
