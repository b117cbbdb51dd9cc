"""Typed Kiro events: what one decoded EventStream message means.

Don't subclass these. Naming rule for this layer: each class mirrors Kiro's ``:event-type``
without the ``Event`` suffix (``assistantResponseEvent`` -> ``AssistantResponse``); failures
reported *by* upstream are ``UpstreamException`` / ``UpstreamError`` (values, not raised);
well-formed messages of a type we do not know are ``UnknownUpstreamEvent``.

Catalogue: docs/kiro-protocol.md, Event catalogue (the source labels are explained under
Sources there). Fields marked [EXT] are evidenced only by other public implementations, not by
captures or the official model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "AssistantResponse",
    "ToolUse",
    "ReasoningContent",
    "Metering",
    "ContextUsage",
    "TokenUsage",
    "MessageMetadata",
    "MessageStop",
    "InvalidState",
    "IgnoredUpstreamEvent",
    "UpstreamException",
    "UpstreamError",
    "UnknownUpstreamEvent",
    "UpstreamEvent",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantResponse:
    """``assistantResponseEvent``: a fragment of the assistant's text."""

    #: The text fragment; arbitrary cut points, but always whole code points.
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUse:
    """``toolUseEvent``: one piece of a tool call (docs/kiro-protocol.md, Tool calls).

    Upstream sends, per call: a start (``name`` + ``toolUseId``, no input), zero or more
    ``input`` fragments, and a ``stop: true`` event. All three share this type; one event may
    carry several parts (the legacy one-shot form has name, complete input and stop at once).
    """

    #: ``tooluse_`` + 22 base64url characters.
    tool_use_id: str
    #: The tool name as upstream knows it (possibly shortened by our linter). "" when the
    #: frame omits it ([EXT]: one implementation declares it optional; captures always send it).
    name: str
    #: A fragment of the argument JSON, "" when absent. The legacy object form is re-serialised.
    input: str
    #: True on the event that ends the call.
    stop: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningContent:
    """[EXT] ``reasoningContentEvent``: model reasoning on newer backends.

    A frame carries one of: a ``text`` fragment, a ``signature`` for the reasoning block, or
    ``redactedContent`` (base64) in place of withheld reasoning.
    """

    #: Reasoning text fragment ("" when the event carries only a signature or redacted data).
    text: str
    #: Signature of the reasoning, when sent.
    signature: str | None = None
    #: Opaque redacted reasoning, when sent instead of text.
    redacted_content: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Metering:
    """[EXT] ``meteringEvent``: credits charged for the turn."""

    #: e.g. ``"credit"``.
    unit: str | None
    #: Amount charged, when present.
    usage: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextUsage:
    """``contextUsageEvent``: share of the model's context window used by the input."""

    #: 0..100 (may exceed 100 when the input overflowed the window).
    percentage: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenUsage:
    """[EXT] ``tokenUsage`` of a ``metadataEvent`` / ``messageMetadataEvent``."""

    uncached_input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageMetadata:
    """``messageMetadataEvent`` (official: ids) or [EXT] ``metadataEvent`` (token usage, stop)."""

    conversation_id: str | None = None
    utterance_id: str | None = None
    #: [EXT] token counts reported by upstream, when present.
    token_usage: TokenUsage | None = None
    #: [EXT] ``END_TURN`` / ``TOOL_USE`` / ``MAX_TOKENS`` (other implementations also list
    #: ``MODEL_CONTEXT_WINDOW_EXCEEDED``, ``CONTENT_FILTERED``, ``PAUSE_TURN``, ``UNKNOWN``),
    #: when present. Passed through verbatim.
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStop:
    """[EXT] ``messageStopEvent``: explicit end of the assistant turn."""

    stop_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidState:
    """``invalidStateEvent`` (official model): upstream says the conversation state is invalid."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoredUpstreamEvent:
    """An official event type we know and deliberately do not use (web links, code references,
    follow-up prompts, citations, ...). Surfaced so nothing is dropped silently.

    The list is ``_upstream_parse.IGNORED_EVENT_TYPES``; their payloads are not parsed.
    """

    event_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamException:
    """An exception frame (``:message-type`` ``exception``), e.g. ThrottlingException."""

    #: From the ``:exception-type`` header, else the payload's ``__type``, else "UnknownException".
    exception_type: str
    #: The payload's ``message`` (or the raw payload text).
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamError:
    """An error frame (``:message-type`` ``error``) with ``:error-code`` / ``:error-message``."""

    error_code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownUpstreamEvent:
    """A well-formed message whose type we do not know. Not an error (h2's UnknownFrameReceived).

    Also used for a message with no (string) ``:message-type`` header, or an ``event`` without
    a string ``:event-type``.
    """

    #: The ``:message-type`` header; "" when the message has none.
    message_type: str
    #: The ``:event-type`` header, when present and a string.
    event_type: str | None
    #: The raw payload, unparsed.
    payload: bytes


UpstreamEvent: TypeAlias = (
    AssistantResponse
    | ToolUse
    | ReasoningContent
    | Metering
    | ContextUsage
    | MessageMetadata
    | MessageStop
    | InvalidState
    | IgnoredUpstreamEvent
    | UpstreamException
    | UpstreamError
    | UnknownUpstreamEvent
)
