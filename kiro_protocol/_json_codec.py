"""An optional JSON accelerator for the three hot JSON calls of a request.

The core decodes the client's body, encodes the Kiro body and decodes every upstream event
payload; for a coding agent's 76 KB first turn the standard library's ``json`` is about a third
of the request's conversion. The core stays standard-library only: by default it uses ``json``
and nothing else. An adapter may install a faster ``JsonCodec`` once at start-up
(``use_json_codec``; the runtime installs orjson when it is there and ``KIRO_JSON_CODEC``
allows it).

A codec may only be faster, never different: each call either gives exactly what the caller's
own ``json`` call would give, or raises ``ValueError``/``TypeError``, and the caller then does
its ``json`` call (which also words every error message, so a client sees the same 400 either
way). That is how values a codec reads or writes differently from ``json`` stay exact: a codec
refuses them (an integer beyond 64 bits, a lone surrogate, NaN, a key that is not a string).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["JsonCodec", "use_json_codec", "json_codec_name", "codec_loads", "codec_dumps"]


class JsonCodec(Protocol):
    """What an accelerator provides (see the module docstring for the contract)."""

    @property
    def name(self) -> str:
        """A short name for logs (``orjson``)."""
        ...

    def loads(self, data: bytes | bytearray | str) -> object:
        """The value of the JSON text ``data``, exactly as ``json.loads`` reads it, or raise
        ``ValueError``: on any text ``json`` refuses (NaN, Infinity, numbers that overflow a
        float, bad syntax or encoding), and on any text it would read differently."""
        ...

    def dumps(self, value: object) -> bytes:
        """Compact UTF-8 JSON of ``value`` that ``json.loads`` reads back equal to what
        ``json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` gives
        (floats may be spelled differently), or raise ``ValueError``/``TypeError`` when it
        cannot promise that."""
        ...


_Text = TypeVar("_Text", bound=bytes | bytearray | str)

#: The installed accelerator; ``None``: the standard library alone (the default).
_codec: JsonCodec | None = None


def use_json_codec(codec: JsonCodec | None) -> None:
    """Install ``codec`` for the whole process (``None``: back to the standard library).

    Called once by an adapter before serving; every codec gives the same results, so the choice
    changes speed, not behaviour."""
    global _codec
    _codec = codec


def json_codec_name() -> str:
    """The installed codec's name, ``stdlib`` when there is none."""
    return "stdlib" if _codec is None else _codec.name


def codec_loads(data: _Text, stdlib: Callable[[_Text], object]) -> object:
    """``data`` decoded by the installed codec, else (none, or it refused) by ``stdlib``, the
    caller's own ``json`` call, which also raises the caller's errors."""
    codec = _codec
    if codec is not None:
        try:
            return codec.loads(data)
        except (ValueError, TypeError):
            pass
    return stdlib(data)


def codec_dumps(value: object, stdlib: Callable[[object], bytes]) -> bytes:
    """``value`` encoded by the installed codec, else (none, or it refused) by ``stdlib``."""
    codec = _codec
    if codec is not None:
        try:
            return codec.dumps(value)
        except (ValueError, TypeError):
            pass
    return stdlib(value)
