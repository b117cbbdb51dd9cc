"""Client keys and their counters in the memory store: dicts under the store's lock."""

from __future__ import annotations

import dataclasses
import threading

from kiro_protocol import ClientKey, KeyCounts

__all__ = ["MemoryKeys"]


class MemoryKeys:
    """The client-key part of ``MemoryStore`` (mixed in; the store owns ``_lock``)."""

    _lock: threading.Lock
    _client_keys: dict[str, ClientKey]
    # name -> ticket -> when it started (rate) / until when it holds a slot (concurrency)
    _key_hits: dict[str, dict[str, float]]
    _key_holds: dict[str, dict[str, float]]
    # name -> period -> tokens
    _key_tokens: dict[str, dict[str, int]]

    def add_key(self, key: ClientKey) -> bool:
        with self._lock:
            if key.name in self._client_keys:
                return False
            self._client_keys[key.name] = key
            return True

    def list_keys(self) -> list[ClientKey]:
        with self._lock:
            return [self._client_keys[name] for name in sorted(self._client_keys)]

    def set_key_disabled(self, name: str, disabled: bool) -> bool:
        with self._lock:
            key = self._client_keys.get(name)
            if key is None:
                return False
            self._client_keys[name] = dataclasses.replace(key, disabled=disabled)
            return True

    def remove_key(self, name: str) -> bool:
        with self._lock:
            for table in (self._key_hits, self._key_holds, self._key_tokens):
                table.pop(name, None)
            return self._client_keys.pop(name, None) is not None

    def acquire_key_slot(
        self, name: str, ticket: str, *, now: float, window: float, hold: float, day: str, month: str
    ) -> KeyCounts:
        with self._lock:
            hits = {t: at for t, at in self._key_hits.get(name, {}).items() if at > now - window}
            hits[ticket] = now
            self._key_hits[name] = hits
            holds = {t: until for t, until in self._key_holds.get(name, {}).items() if until > now}
            holds[ticket] = now + hold
            self._key_holds[name] = holds
            tokens = self._key_tokens.get(name, {})
            return KeyCounts(
                requests_in_window=len(hits),
                oldest_in_window=min(hits.values()),
                in_flight=len(holds),
                tokens_today=tokens.get("d:" + day, 0),
                tokens_this_month=tokens.get("m:" + month, 0),
            )

    def release_key_slot(self, name: str, ticket: str, *, refund: bool) -> None:
        with self._lock:
            self._key_holds.get(name, {}).pop(ticket, None)
            if refund:
                self._key_hits.get(name, {}).pop(ticket, None)

    def add_key_tokens(self, name: str, tokens: int, *, day: str, month: str) -> None:
        with self._lock:
            old = self._key_tokens.get(name, {})
            self._key_tokens[name] = {
                "d:" + day: old.get("d:" + day, 0) + tokens,
                "m:" + month: old.get("m:" + month, 0) + tokens,
            }

    def key_tokens(self, name: str, *, day: str, month: str) -> tuple[int, int]:
        with self._lock:
            tokens = self._key_tokens.get(name, {})
            return tokens.get("d:" + day, 0), tokens.get("m:" + month, 0)
