"""Errors of the EventStream layer: all ``RemoteProtocolError``.

When the stream is corrupt: docs/kiro-protocol.md, Chunks and corruption.

Each names what was wrong and the stream offset (counted from the first byte ever received) of
the offending bytes; adapters need only ``except RemoteProtocolError``.
"""

from __future__ import annotations

from .._errors import RemoteProtocolError

__all__ = ["EventStreamError", "ChecksumMismatch", "InvalidLength", "MalformedHeader", "TruncatedMessage"]


class EventStreamError(RemoteProtocolError):
    """Upstream sent bytes that are not a valid EventStream. Fatal for the stream.

    Attributes:
        offset: the stream offset (from the first byte ever received) of the offending bytes.
    """

    def __init__(self, what: str, *, offset: int) -> None:
        super().__init__(f"invalid EventStream from upstream: {what} (stream offset {offset})")
        self.offset = offset


class ChecksumMismatch(EventStreamError):
    """A prelude or message CRC-32 does not match the bytes it covers."""

    def __init__(self, what: str, *, offset: int, expected: int, calculated: int) -> None:
        super().__init__(f"{what}: expected 0x{expected:08x}, calculated 0x{calculated:08x}", offset=offset)
        self.expected = expected
        self.calculated = calculated


class InvalidLength(EventStreamError):
    """The prelude declares a total or headers length that cannot be right."""


class MalformedHeader(EventStreamError):
    """The header block does not parse (bad name, unknown type, overrun, duplicate, bad UTF-8)."""


class TruncatedMessage(EventStreamError):
    """Input ended inside a message."""
