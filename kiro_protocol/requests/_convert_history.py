"""Messages -> alternating turns with paired tool calls.

Kiro's rules for them: docs/kiro-protocol.md, History rules.

The steps, each a repair of ``_linter.RULES``:

1. ``role: "system"`` messages become user-side text wrapped in ``<system>`` tags (so the model
   can tell them from what the user typed) and join the neighbouring user turn.
2. Consecutive messages of one role are merged into one turn (``alternation``).
3. Leading assistant turns (before any user turn) are dropped, as both references do.
4. Tool pairing (``tool-pairing``): a ``tool_result`` is kept as a Kiro tool result only when
   it answers a ``tool_use`` of the assistant turn right before it, once; any other result is
   kept as text in its turn, so no content is lost. A ``tool_use`` that the next user turn
   does not answer is removed, as the [PY] reference does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._model import (
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["UserTurn", "AssistantTurn", "Turn", "build_turns", "pair_tools", "NO_OUTPUT"]

#: Text of a tool result that returned nothing (Kiro refuses empty text items).
NO_OUTPUT = "(no output)"


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    text: str
    is_error: bool


@dataclass(slots=True)
class UserTurn:
    texts: list[str] = field(default_factory=list)
    images: list[ImageBlock] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "\n".join(t for t in self.texts if t)


@dataclass(slots=True)
class AssistantTurn:
    texts: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    uses: list[ToolUseBlock] = field(default_factory=list)

    def content(self, *, with_thinking: bool) -> str:
        text = "\n\n".join(t for t in self.texts if t)
        thought = "\n\n".join(t for t in self.thinking if t) if with_thinking else ""
        if thought:
            text = f"<thinking>{thought}</thinking>\n\n{text}" if text else f"<thinking>{thought}</thinking>"
        # Kiro refuses an empty assistant message (rule assistant-content).
        return text or " "


Turn = UserTurn | AssistantTurn


def _flatten_result(block: ToolResultBlock, images: list[ImageBlock]) -> str:
    parts = []
    for item in block.content:
        if isinstance(item, TextBlock):
            if item.text:
                parts.append(item.text)
        else:  # images of a tool result travel on the user message that carried them
            images.append(item)
    return "\n".join(parts) or NO_OUTPUT


def _add_user(turn: UserTurn, message: Message) -> None:
    for block in message.content:
        if isinstance(block, TextBlock):
            if message.role == "system":
                if block.text.strip():
                    turn.texts.append(f"<system>\n{block.text}\n</system>")
            else:
                turn.texts.append(block.text)
        elif isinstance(block, ImageBlock):
            turn.images.append(block)
        elif isinstance(block, ToolResultBlock):
            text = _flatten_result(block, turn.images)
            turn.results.append(ToolResult(block.tool_use_id, text, block.is_error))
        # thinking blocks never come from the user side; nothing else reaches here


def _add_assistant(turn: AssistantTurn, message: Message) -> None:
    for block in message.content:
        if isinstance(block, TextBlock):
            turn.texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            turn.uses.append(block)
        elif isinstance(block, ThinkingBlock):
            turn.thinking.append(block.thinking)
        # redacted thinking is opaque to Kiro; images are not sent on assistant turns


def build_turns(messages: tuple[Message, ...], repairs: list[str]) -> list[Turn]:
    """Steps 1-3: alternating turns, starting with a user turn."""
    turns: list[Turn] = []
    for message in messages:
        if message.role == "assistant":
            if not turns:
                repairs.append("alternation: leading assistant message dropped")
                continue
            last = turns[-1]
            if isinstance(last, AssistantTurn):
                repairs.append("alternation: consecutive assistant messages merged")
                _add_assistant(last, message)
            else:
                turn = AssistantTurn()
                _add_assistant(turn, message)
                turns.append(turn)
        else:
            last_user = turns[-1] if turns else None
            if isinstance(last_user, UserTurn):
                repairs.append("alternation: consecutive user messages merged")
                _add_user(last_user, message)
            else:
                turn_u = UserTurn()
                _add_user(turn_u, message)
                turns.append(turn_u)
    return turns


def _orphan_text(result: ToolResult) -> str:
    status = " (error)" if result.is_error else ""
    return f"[Tool result for {result.tool_use_id}{status}]\n{result.text}"


def pair_tools(turns: list[Turn], repairs: list[str]) -> None:
    """Step 4, in place. A trailing assistant turn's tool uses are always unanswered."""
    previous_uses: list[ToolUseBlock] = []
    for index, turn in enumerate(turns):
        if isinstance(turn, AssistantTurn):
            nxt = turns[index + 1] if index + 1 < len(turns) else None
            answered = {r.tool_use_id for r in nxt.results} if isinstance(nxt, UserTurn) else set()
            kept = []
            seen: set[str] = set()
            for use in turn.uses:
                if use.id in answered and use.id not in seen:
                    kept.append(use)
                    seen.add(use.id)
                else:
                    repairs.append(f"tool-pairing: tool use {use.id} without a result removed")
            turn.uses = kept
            previous_uses = kept
            continue
        expected = {u.id for u in previous_uses}
        kept_results: list[ToolResult] = []
        orphans: list[str] = []
        for result in turn.results:
            if result.tool_use_id in expected:
                expected.discard(result.tool_use_id)
                kept_results.append(result)
            else:
                repairs.append(f"tool-pairing: result for {result.tool_use_id} kept as text")
                orphans.append(_orphan_text(result))
        turn.results = kept_results
        if orphans:
            turn.texts[:0] = orphans
        previous_uses = []
