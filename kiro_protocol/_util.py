"""Tiny shared helpers: the need-more-data sentinel, the text of a version-4 UUID."""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["NEED_DATA", "NeedData", "NeedDataType", "uuid4_text"]


class NeedData(enum.Enum):
    """Returned by ``next_event()`` when the buffered bytes do not yet form an event.

    An enum singleton rather than h11's metaclass sentinel, so that ``if ev is NEED_DATA``
    narrows the union for mypy without any ``type: ignore``.
    """

    #: Feed more bytes with ``receive_data`` and ask again.
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
NeedDataType = Literal[NeedData.NEED_DATA]


def uuid4_text(raw: bytes) -> str:
    """The canonical text of the version-4 UUID made of the first 16 bytes of ``raw`` (what
    ``str(uuid.UUID(bytes=raw[:16], version=4))`` gives, without building the object: it is made
    several times per request)."""
    b = bytearray(raw[:16])
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC's variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
