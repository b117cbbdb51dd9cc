"""Tiny shared helpers: the need-more-data sentinel."""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["NEED_DATA", "NeedData", "NeedDataType"]


class NeedData(enum.Enum):
    """Returned by ``next_event()`` when the buffered bytes do not yet form an event.

    An enum singleton rather than h11's metaclass sentinel, so that ``if ev is NEED_DATA``
    narrows the union for mypy without any ``type: ignore``.
    """

    #: Feed more bytes with ``receive_data`` and ask again.
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA
NeedDataType = Literal[NeedData.NEED_DATA]
