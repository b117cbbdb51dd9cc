"""The account states a store decoded last, reused while the stored text is unchanged.

Every request loads the state of every account and holds what it loaded until it ends. Decoded
afresh each time, 1,000 held streams on eleven accounts kept 11,000 copies of the same few
states (their tokens included): about 10 MiB of the SQLite store's extra resident memory over
``memory://``, whose states are shared objects. ``AccountState`` is frozen, so sharing the one
decoded from the same text changes nothing but the memory and the work (the JSON parse, and
the decryption of a sealed record).
"""

from __future__ import annotations

from kiro_protocol import AccountState

from ..state_cipher import StateCipher

__all__ = ["DecodedStates"]


class DecodedStates:
    """``state(account_id, stored)``: the decoded state, the same object while ``stored`` is.

    One entry per account id ever loaded (the configured accounts). Thread-safe: an entry is
    replaced whole, and two threads decoding the same text at once only both do the work.
    """

    __slots__ = ("_cipher", "_last")

    def __init__(self, cipher: StateCipher) -> None:
        self._cipher = cipher
        self._last: dict[str, tuple[str | bytes, AccountState]] = {}

    def state(self, account_id: str, stored: str | bytes) -> AccountState:
        last = self._last.get(account_id)
        if last is not None and last[0] == stored:
            return last[1]
        state = AccountState.from_json(self._cipher.open(stored, f"state:{account_id}"))
        self._last[account_id] = (stored, state)
        return state
