"""A bounded memo keyed by bytes: the oldest entry goes first, and threads may share it."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """Values by key, at most ``max_entries`` (the oldest goes first).

    For pure memoisation only (a hit is what computing the value again would give), so sharing
    one between threads is safe: at worst an entry is computed twice, or evicted by both.
    """

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int) -> None:
        self._entries: dict[bytes, V] = {}
        self._max = max(1, max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> V | None:
        return self._entries.get(key)

    def put(self, key: bytes, value: V) -> None:
        entries = self._entries
        while len(entries) >= self._max:
            try:
                del entries[next(iter(entries))]
            except (KeyError, RuntimeError, StopIteration):  # another thread evicted it first
                break
        entries[key] = value
