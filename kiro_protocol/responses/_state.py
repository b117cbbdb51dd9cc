"""The response's message-level state machine, as a table.

Two rules, as in h11's ``_state.py``:

1. Every transition is in ``TRANSITIONS``; nothing else changes ``MessageState``.
2. A (state, input) pair missing from the table is a bug in the caller (the tracker or an
   adapter driving it), reported as ``LocalProtocolError`` naming both.

Which block is open (text, thinking, tool) is a second, smaller machine kept by the tracker
itself: exactly one block may be open, and opening another one closes it first.
"""

from __future__ import annotations

import enum

from .._errors import LocalProtocolError

__all__ = ["MessageState", "Input", "TRANSITIONS", "next_state"]


class MessageState(enum.Enum):
    """Where the response is."""

    #: ``message_start`` has been produced; content, pings and metadata may follow.
    STREAMING = "streaming"
    #: ``message_delta`` + ``message_stop`` were produced: a complete answer.
    FINISHED = "finished"
    #: A ``StreamFailed`` was produced: the answer is incomplete and says so.
    FAILED = "failed"


class Input(enum.Enum):
    """What can happen to the message."""

    #: A content block, delta, ping or metadata was produced or absorbed.
    CONTENT = "content"
    #: The turn ended well (upstream body ended, a stop sequence or a length cut).
    FINISH = "finish"
    #: The turn cannot complete (upstream failure, corrupt stream, lost connection, bad tool JSON).
    FAIL = "fail"


TRANSITIONS: dict[tuple[MessageState, Input], MessageState] = {
    (MessageState.STREAMING, Input.CONTENT): MessageState.STREAMING,
    (MessageState.STREAMING, Input.FINISH): MessageState.FINISHED,
    (MessageState.STREAMING, Input.FAIL): MessageState.FAILED,
}


def next_state(state: MessageState, event: Input) -> MessageState:
    """The state after ``event``; raises ``LocalProtocolError`` for a transition not in the table."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"unexpected event order: {event.name} while the message is {state.name}"
        ) from None
