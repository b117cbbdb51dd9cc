"""Secrets at rest: the records of the state store that hold tokens, sealed with ``KIRO_STATE_KEY``.

An account's state (its access token and rotated refresh token) and an added account's admin
record (its refresh token and client secret) are written through a ``StateCipher``. With a key,
each is sealed with AES-256-GCM (``cryptography``: an authenticated cipher, so a changed or
swapped record is refused rather than read as garbage) and stored as

    enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>

The prefix makes every stored value describe itself: a store written before a key was set still
reads (plain JSON never starts with ``enc:``) and is sealed on its next write or by
``reseal_secrets`` at start-up. The key id (a hash of the key, not the key) says which key sealed
a record, so rotation knows what to rewrite and a wrong key is told apart from a corrupt record.
The associated data binds a record to its place (``state:<account id>``): a sealed record copied
to another account does not open.

Key format: 32 random bytes, base64url (43 characters, padding optional); see ``generate_key``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from .stores import StateStore, StoreConfigurationError, StoreUnavailable, open_store

__all__ = ["StateCipher", "StateKeyError", "open_sealed_store", "parse_state_key", "generate_key", "SEALED_PREFIX"]

log = logging.getLogger("kiro2api.state")

SEALED_PREFIX = "enc:v1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID_CHARS = 8


class StateKeyError(StoreConfigurationError):
    """The store's sealed records do not open with the configured keys (or there is no key).

    A configuration error (start-up stops with it, exit status 2): the message names the
    settings involved, never a key or a secret.
    """


def generate_key() -> str:
    """A new ``KIRO_STATE_KEY``: 32 random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).rstrip(b"=").decode("ascii")


def parse_state_key(text: str) -> bytes:
    """The 32 bytes of a key written as base64url (padding optional).

    Raises:
        ValueError: not base64url of exactly 32 bytes (the message never quotes the text).
    """
    value = text.strip()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url (generate one with: python -c \"import base64, os; "
                         "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\")") from None
    if len(raw) != _KEY_BYTES or not value:
        raise ValueError(f"must be {_KEY_BYTES} bytes written as base64url ({len(raw)} bytes given)")
    return raw


def _key_id(key: bytes) -> str:
    digest = hashlib.sha256(b"kiro2api state key id\0" + key).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:_KEY_ID_CHARS]


class StateCipher:
    """Seals and opens the secret-bearing records of a store.

    ``keys``: the current key first (it seals), then previous keys (they only open, for
    rotation). No keys: records are written as they are, and a sealed record is an error.
    """

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        self._aead: dict[str, Any] = {}
        self._current: str | None = None
        if keys:
            # Imported here: only a configured key needs the library (kiro2api[server] has it).
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            for key in keys:
                self._aead.setdefault(_key_id(key), AESGCM(key))
            self._current = _key_id(keys[0])

    @property
    def encrypting(self) -> bool:
        """Whether records are sealed (a key is configured)."""
        return self._current is not None

    def seal(self, text: str, context: str) -> str:
        """The stored form of ``text`` (sealed with the current key, or ``text`` without a key)."""
        if self._current is None:
            return text
        nonce = os.urandom(_NONCE_BYTES)
        box = self._aead[self._current].encrypt(nonce, text.encode("utf-8"), context.encode("utf-8"))
        return f"{SEALED_PREFIX}{self._current}:{base64.urlsafe_b64encode(nonce + box).decode('ascii')}"

    def open(self, stored: str | bytes, context: str) -> str:
        """The text of a stored value, sealed or not.

        Raises:
            StateKeyError: sealed, and no configured key opens it.
        """
        text = stored.decode("utf-8") if isinstance(stored, bytes) else stored
        if not text.startswith(SEALED_PREFIX):
            return text
        key_id, _, body = text[len(SEALED_PREFIX):].partition(":")
        aead = self._aead.get(key_id)
        if aead is None:
            if self._current is None:
                raise StateKeyError(
                    "the state store holds encrypted secrets but KIRO_STATE_KEY is not set: set the key they were "
                    "written with (docs/accounts.md#secrets-at-rest)"
                )
            raise StateKeyError(
                "KIRO_STATE_KEY does not open the state store's secrets: they were written with another key "
                "(set it as KIRO_STATE_KEY, or as KIRO_STATE_KEY_PREVIOUS while rotating)"
            )
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain: bytes = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise StateKeyError(
                f"a sealed record of the state store ({context.split(':', 1)[0]}) fails authentication: it was "
                "changed or moved, or KIRO_STATE_KEY is not the key it was written with"
            ) from None
        return plain.decode("utf-8")

    def is_current(self, stored: str | bytes) -> bool:
        """Whether ``stored`` is already in the form this cipher writes (no rewrite needed)."""
        text = stored.decode("utf-8") if isinstance(stored, bytes) else stored
        if self._current is None:
            return not text.startswith(SEALED_PREFIX)
        return text.startswith(f"{SEALED_PREFIX}{self._current}:")

    def reseal(self, stored: str | bytes, context: str) -> str | None:
        """The value to write in place of ``stored`` (sealed with the current key), or None when
        it is already current. Without a key, a sealed value raises instead.

        Raises:
            StateKeyError: ``stored`` is sealed and does not open.
        """
        if self.is_current(stored):
            return None
        return self.seal(self.open(stored, context), context)


#: Stores opened without a cipher (tests, ``kiro2api keys``): write plain, refuse sealed records.
NO_CIPHER = StateCipher()


def open_sealed_store(url: str, keys: Sequence[bytes]) -> StateStore:
    """Open the ``KIRO_STATE`` store with ``keys`` (``Settings.state_keys``) and bring its secrets
    to the current key (start-up migration); without keys, say once that they are kept plain.

    Raises:
        StoreConfigurationError: the URL is not a store's.
        StateKeyError: the stored secrets do not open with ``keys`` (the store is closed).
    """
    store = open_store(url, cipher=StateCipher(keys))
    try:
        resealed = store.reseal_secrets()
    except StoreUnavailable as exc:
        # Redis not up yet (a compose start): serve anyway (503 until it is); every write is
        # sealed, and the records written before are resealed at the next start.
        log.warning("%s at start-up: stored secrets not checked against KIRO_STATE_KEY", exc)
        resealed = 0
    except BaseException:
        store.close()
        raise
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return store
    if not keys:
        log.warning("KIRO_STATE_KEY is not set: refresh tokens, access tokens and client secrets are stored "
                    "unencrypted in %s (docs/accounts.md#secrets-at-rest)", scheme)
    elif resealed:
        log.info("state store: %d record(s) holding secrets sealed with the current KIRO_STATE_KEY", resealed)
    return store
