"""Lifecycle events: what happened in one assistant response, independent of the client dialect.

Don't subclass these. Naming rule for this layer: past-tense facts in start/delta/stop pairs
(``MessageStarted``, ``ContentBlockStarted``, ``TextDelta``, ``ContentBlockStopped``,
``MessageDelta``, ``MessageStopped``), plus ``StreamFailed`` and ``Ping``.

The tracker (``_tracker``) turns upstream events into these; an encoder (``_sse`` for the
Anthropic stream, ``_anthropic_response`` for the non-streaming Anthropic body, later one for
OpenAI) turns these into client bytes. Every encoder sees the same sequence, so a streamed and a
non-streamed answer to the same upstream bytes cannot disagree.

Grammar the tracker guarantees (checked by ``tests/sse_checker.py`` on the Anthropic output)::

    MessageStarted Ping?
      ( ContentBlockStarted (delta of the block's kind)* ContentBlockStopped | Ping )*
    ( MessageDelta MessageStopped | StreamFailed )

Block indexes count up from 0 without gaps; at most one block is open at a time; after a
``StreamFailed`` nothing follows (the open block, if any, is deliberately left unclosed so that
no client mistakes a cut-off tool call for a complete one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from .._errors import ErrorKind

__all__ = [
    "StopReason",
    "Usage",
    "TextBlock",
    "ThinkingBlock",
    "RedactedThinkingBlock",
    "ToolUseBlock",
    "ServerToolUseBlock",
    "WebSearchHit",
    "WebSearchResultBlock",
    "ContentBlock",
    "MessageStarted",
    "ContentBlockStarted",
    "TextDelta",
    "ThinkingDelta",
    "SignatureDelta",
    "ToolInputDelta",
    "ContentBlockStopped",
    "MessageDelta",
    "MessageStopped",
    "StreamFailed",
    "Ping",
    "LifecycleEvent",
    "ResponseEncoder",
]


class StopReason(enum.Enum):
    """Why the assistant turn ended; values are Anthropic's ``stop_reason`` strings."""

    #: The model finished its answer.
    END_TURN = "end_turn"
    #: Kiro cut the answer for length (its content-length exception or its ``MAX_TOKENS`` stop reason).
    MAX_TOKENS = "max_tokens"
    #: A requested stop sequence appeared in the text; the text was cut before it.
    STOP_SEQUENCE = "stop_sequence"
    #: The turn ended with one or more tool calls.
    TOOL_USE = "tool_use"


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts of the response, in Anthropic's terms."""

    #: Input tokens not served from a cache (upstream figure, else derived, else estimated).
    input_tokens: int
    #: Output tokens (upstream figure, else estimated from what was emitted).
    output_tokens: int
    #: Only when upstream reported it (``cacheWriteInputTokens``); never invented.
    cache_creation_input_tokens: int | None = None
    #: Only when upstream reported it (``cacheReadInputTokens``); never invented.
    cache_read_input_tokens: int | None = None
    #: Web searches the gateway ran for the answer (``server_tool_use.web_search_requests``).
    web_search_requests: int = 0

    def __post_init__(self) -> None:
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("token counts cannot be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextBlock:
    """A text block; its text arrives as ``TextDelta``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkingBlock:
    """A thinking block; ``ThinkingDelta`` fragments, then one ``SignatureDelta`` before its stop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactedThinkingBlock:
    """Opaque reasoning upstream chose not to show; complete at start, no deltas."""

    #: The opaque payload, passed through unchanged.
    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUseBlock:
    """A tool call; its arguments arrive only as ``ToolInputDelta`` fragments."""

    #: Upstream's ``toolUseId`` (``tooluse_...``), passed through so tool results match it.
    id: str
    #: The tool name the client declared (mapped back if the request linter shortened it).
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerToolUseBlock:
    """A tool the server ran itself (web search); its input arrives as ``ToolInputDelta``."""

    #: ``srvtoolu_`` + 32 random hex characters.
    id: str
    #: ``web_search``.
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSearchHit:
    """One item of a ``WebSearchResultBlock``."""

    title: str
    url: str
    #: Anthropic's is opaque; the gateway's is the result's snippet (what a reader of it needs).
    encrypted_content: str
    page_age: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSearchResultBlock:
    """The results of a server web search; complete at start, no deltas."""

    #: The ``id`` of the ``ServerToolUseBlock`` it answers.
    tool_use_id: str
    results: tuple[WebSearchHit, ...]


ContentBlock: TypeAlias = (
    TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock | ServerToolUseBlock | WebSearchResultBlock
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStarted:
    """The response began. Always the first event."""

    #: ``msg_`` + random characters, chosen by the adapter.
    message_id: str
    #: The model name exactly as the client sent it.
    model: str
    #: What is known when nothing has been generated yet (input estimate, zero output).
    usage: Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentBlockStarted:
    """A content block opened at ``index`` (0, 1, 2, ... in order)."""

    index: int
    block: ContentBlock


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    """A fragment of the text block at ``index``."""

    index: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkingDelta:
    """A fragment of the thinking block at ``index``."""

    index: int
    thinking: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureDelta:
    """The signature of the thinking block at ``index``; sent once, just before its stop."""

    index: int
    signature: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolInputDelta:
    """A fragment of the argument JSON of the tool block at ``index``, in upstream order.

    The fragments of one block concatenate to a JSON object whenever the block is stopped.
    """

    index: int
    partial_json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentBlockStopped:
    """The block at ``index`` is complete. Sent exactly once per started block (unless the
    stream failed while it was open)."""

    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDelta:
    """The turn's outcome: stop reason and final usage. Sent once, just before ``MessageStopped``."""

    stop_reason: StopReason
    #: The stop sequence that matched, when ``stop_reason`` is ``STOP_SEQUENCE``.
    stop_sequence: str | None
    usage: Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStopped:
    """The response completed successfully. Always the last event of a successful response."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFailed:
    """The response cannot be completed; always the last event of a failed response."""

    #: What the client is told (Anthropic error type).
    kind: ErrorKind
    #: Says what happened, for the client and the logs; never holds a secret.
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Keep-alive: sent after ``MessageStarted`` and after every ``ping_interval`` of silence."""


LifecycleEvent: TypeAlias = (
    MessageStarted
    | ContentBlockStarted
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | ToolInputDelta
    | ContentBlockStopped
    | MessageDelta
    | MessageStopped
    | StreamFailed
    | Ping
)


class ResponseEncoder(Protocol):
    """Turns lifecycle events into the bytes of one client dialect (an encoder per response).

    Streaming encoders return the bytes of each event as it comes; a non-streaming encoder
    returns ``b""`` until ``MessageStopped`` and then the whole body. After ``StreamFailed`` a
    non-streaming encoder returns ``b""``: the adapter answers with the error status instead.
    """

    #: Whether ``send`` produces a stream (SSE) rather than one body at the end.
    @property
    def streaming(self) -> bool: ...

    #: The ``Content-Type`` of what ``send`` produces.
    @property
    def media_type(self) -> str: ...

    def send(self, event: LifecycleEvent) -> bytes:
        """The bytes to write for ``event`` (possibly empty)."""
        ...

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """The dialect's JSON error body, for an error answered with an HTTP status instead."""
        ...
