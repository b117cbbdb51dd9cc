"""Asking Kiro again after it cut off a tool call: the same conversation plus an instruction.

Kiro ends an answer when one tool call's arguments grow too large (a whole file in one Write):
the call arrives cut, and asking again the same way is cut the same way. The model is told what
happened and how to avoid it, in the user's turn it is answering (docs/response.md, Tool calls
Kiro cuts off).
"""

from __future__ import annotations

from dataclasses import replace

from ..requests._model import Message, Request, TextBlock

__all__ = ["RECOVERY_INSTRUCTION", "with_recovery_instruction"]

#: At most this much of the text already shown is quoted back (its end: where to go on from).
_SHOWN_EXCERPT = 600

#: Appended to the user's turn when the answer to it was cut inside a tool call.
RECOVERY_INSTRUCTION = (
    "[Note from the gateway: your previous answer to this was cut off in the middle of a tool call, "
    "because that call's arguments were too large to transmit. Do the same work in several smaller "
    "tool calls: write a large file in parts (a first Write with the beginning, then Edit calls that "
    "add the rest), or change an existing file with Edit calls instead of rewriting it whole.]"
)


def with_recovery_instruction(request: Request, *, shown: str = "") -> Request:
    """``request`` with the instruction added to its last user turn (a new one after a prefill).

    ``shown``: the text of the cut answer that the client already has; the model is asked to go
    on from it rather than say it again (the new answer continues the same message).
    """
    messages = request.messages
    text = RECOVERY_INSTRUCTION
    if shown.strip():
        excerpt = shown.strip()[-_SHOWN_EXCERPT:]
        text += (
            f"\n[The user has already seen the beginning of that answer: \"{excerpt}\". Do not repeat it: "
            "continue from there with the smaller tool calls.]"
        )
    note = TextBlock(text=text)
    if messages and messages[-1].role == "user":
        last = messages[-1]
        return replace(request, messages=messages[:-1] + (replace(last, content=last.content + (note,)),))
    return replace(request, messages=messages + (Message(role="user", content=(note,)),))
