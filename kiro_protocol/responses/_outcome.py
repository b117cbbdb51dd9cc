"""The outcome of a turn: its stop reason and its usage, as pure functions of what was seen.

Kept apart from the tracker so that the rules (docs/response.md, The rules: stop reason, usage)
read as one table each and can be tested without streaming anything.
"""

from __future__ import annotations

import math

from ._lifecycle_events import StopReason, Usage
from ._upstream_events import TokenUsage

__all__ = ["decide_stop_reason", "compute_usage"]

# Upstream's own stop reasons ([EXT] metadataEvent / messageStopEvent) that mean a length cut.
_UPSTREAM_MAX_TOKENS = frozenset({"MAX_TOKENS", "max_tokens", "LENGTH"})


def decide_stop_reason(
    *,
    stop_sequence: str | None,
    length_cut: bool,
    upstream_stop_reason: str | None,
    tool_calls: int,
) -> StopReason:
    """Why the turn ended; the first matching rule wins.

    1. a requested stop sequence cut the text -> ``stop_sequence``;
    2. Kiro cut the answer for length (a content-length exception after output began, or its own
       ``MAX_TOKENS`` stop reason) -> ``max_tokens``;
    3. the turn contains a tool call -> ``tool_use`` (Claude Code runs tools only then);
    4. otherwise ``end_turn``.

    The client's ``max_tokens`` plays no part: Kiro takes no such limit and the gateway does not
    cut answers, so an answer longer than it was still delivered whole. Calling it ``max_tokens``
    would make clients ask for a continuation of a complete answer (docs/response.md, Stop reason).
    """
    if stop_sequence is not None:
        return StopReason.STOP_SEQUENCE
    if length_cut or upstream_stop_reason in _UPSTREAM_MAX_TOKENS:
        return StopReason.MAX_TOKENS
    if tool_calls:
        return StopReason.TOOL_USE
    return StopReason.END_TURN


def compute_usage(
    *,
    token_usage: TokenUsage | None,
    context_percentage: float | None,
    context_window: int,
    estimated_input_tokens: int,
    estimated_output_tokens: int,
) -> Usage:
    """Token usage, best source first (docs/kiro-protocol.md, Token usage).

    Input: upstream ``uncachedInputTokens``, else ``contextUsagePercentage`` x the model's context
    window, else the request-side estimate. Output: upstream ``outputTokens``, else the estimate
    over what was emitted. Cache fields only from upstream numbers; they are never invented.
    """
    tu = token_usage
    if tu is not None and tu.uncached_input_tokens is not None:
        input_tokens = tu.uncached_input_tokens
    elif context_percentage is not None and math.isfinite(context_percentage):
        input_tokens = round(min(max(context_percentage, 0.0), 1e6) * context_window / 100)
    else:
        input_tokens = estimated_input_tokens
    if tu is not None and tu.output_tokens is not None:
        output_tokens = tu.output_tokens
    else:
        output_tokens = estimated_output_tokens
    return Usage(
        input_tokens=max(0, input_tokens),
        output_tokens=max(0, output_tokens),
        cache_creation_input_tokens=tu.cache_write_input_tokens if tu is not None else None,
        cache_read_input_tokens=tu.cache_read_input_tokens if tu is not None else None,
    )
