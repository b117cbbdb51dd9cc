"""How many tokens the simulated model reads from a ``generateAssistantResponse`` body.

Kiro reports it as ``contextUsagePercentage``: the share of the model's context window that the
input took. Real Kiro counts what its model reads (a request of about 170k tokens reads as about
17 % of a 1M window, docs/kiro-protocol.md, Token usage), not the bytes of the JSON envelope, so
the simulator counts the same parts: the messages of the history and the current message (the
system prompt is the first history pair), tool calls and tool results, images, and the tool
definitions. Text is estimated with the core's tokenizer-free estimate; the framing costs are
those of Claude's prompt format as the official counts show them (docs/conversion.md, Token
estimates). It reads the body on its own, so it checks the gateway's request-side estimate
instead of repeating it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from kiro_protocol import estimate_text_tokens

__all__ = ["context_tokens"]

_BASE = 3
_PER_MESSAGE = 3
_TOOLS_PREAMBLE = 240
_PER_TOOL = 100
_PER_TOOL_USE = 5
_PER_TOOL_RESULT = 5
_PER_IMAGE = 1_510


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user(message: Mapping[str, object], texts: list[str]) -> int:
    cost = _PER_IMAGE * len(_list(message.get("images")))
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    context = _dict(message.get("userInputMessageContext"))
    for result in _list(context.get("toolResults")):
        cost += _PER_TOOL_RESULT
        for item in _list(_dict(result).get("content")):
            item = _dict(item)
            text = item.get("text")
            texts.append(text if isinstance(text, str) else _json(item.get("json")) if "json" in item else "")
    tools = _list(context.get("tools"))
    if tools:
        cost += _TOOLS_PREAMBLE + _PER_TOOL * len(tools)
        for tool in tools:
            spec = _dict(_dict(tool).get("toolSpecification"))
            for key in ("name", "description"):
                value = spec.get(key)
                texts.append(value if isinstance(value, str) else "")
            schema = _dict(spec.get("inputSchema")).get("json")
            texts.append(_json(schema) if schema is not None else "")
    return cost


def _assistant(message: Mapping[str, object], texts: list[str]) -> int:
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    cost = 0
    for use in _list(message.get("toolUses")):
        use = _dict(use)
        cost += _PER_TOOL_USE
        name = use.get("name")
        texts.append(name if isinstance(name, str) else "")
        texts.append(_json(use.get("input", {})))
    return cost


def context_tokens(body: Mapping[str, object]) -> int:
    """The input tokens of ``body`` as the model reads them (at least 1)."""
    state = _dict(body.get("conversationState"))
    texts: list[str] = []
    total = _BASE
    entries = [*_list(state.get("history")), _dict(state.get("currentMessage"))]
    for entry in entries:
        entry = _dict(entry)
        total += _PER_MESSAGE
        if "userInputMessage" in entry:
            total += _user(_dict(entry["userInputMessage"]), texts)
        else:
            total += _assistant(_dict(entry.get("assistantResponseMessage")), texts)
    return max(1, total + estimate_text_tokens("\0".join(texts)))
