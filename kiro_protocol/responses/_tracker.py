"""The response tracker: typed upstream events in, dialect-neutral lifecycle events out.

One tracker per response. It owns every decision about the shape of the answer (docs/response.md,
The rules), so that the Anthropic stream, the Anthropic JSON body and the OpenAI encoders only
translate vocabulary:

* blocks open lazily, get indexes 0, 1, 2, ... and are closed exactly once; one block is open at
  a time, and opening another closes it (text before a tool, text again after a tool);
* a tool call is tracked by ``toolUseId``: its block starts with id and (mapped-back) name, its
  argument fragments are forwarded verbatim in order, and it closes on ``stop``, on the next
  tool or block, or at the end. A second start of an open id and any event for a closed id are
  ignored (docs/kiro-protocol.md, Tool calls). A tool call's events are held until it closes
  complete, so a client never sees part of a call: one whose arguments are not a JSON object
  when it closes was cut by Kiro, and is dropped. Then the tracker either waits for the answer
  to be asked again (``awaiting_continuation``; ``continue_answer`` takes the next upstream
  answer as the rest of this one) or fails the response (``TOOL_CALL_CUT``);
* ``<thinking>`` text (only when the client asked for thinking) and ``reasoningContentEvent``
  become thinking blocks, each closed with a signature;
* stop sequences are cut locally; ``stop_reason`` and usage are decided by ``_outcome``;
* upstream failures end the response with ``StreamFailed``; nothing follows it.

The tracker does no IO and no logging: adapters read ``failure`` / ``upstream_failure`` and the
lifecycle events to log what happened (style R17).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .._errors import ErrorKind, RemoteProtocolError
from .._util import NEED_DATA, NeedDataType
from ..pool._upstream_errors import (
    FailureClass,
    UpstreamFailure,
    classify_stream_failure,
    is_content_length_exception,
)
from ..requests._plan import ResponsePlan
from ..requests._token_estimator import estimate_text_tokens
from ._lifecycle_events import (
    ContentBlock,
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    RedactedThinkingBlock,
    SignatureDelta,
    StopReason,
    StreamFailed,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseBlock,
    Usage,
)
from ._outcome import compute_usage, decide_stop_reason
from ._state import Input, MessageState, next_state
from ._stop_sequences import StopSequenceMatcher
from ._thinking import Segment, ThinkingSplitter
from ._upstream_events import (
    AssistantResponse,
    ContextUsage,
    IgnoredUpstreamEvent,
    InvalidState,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    TokenUsage,
    ToolUse,
    UnknownUpstreamEvent,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)

_STREAMING_ON_CONTENT = next_state(MessageState.STREAMING, Input.CONTENT)

__all__ = ["ResponseTracker"]

#: At most this many ignored upstream events are remembered for the logs.
_MAX_IGNORED_NOTED = 100

_BlockKind = Literal["text", "thinking", "redacted_thinking", "tool_use"]


@dataclass(slots=True)
class _OpenBlock:
    index: int
    kind: _BlockKind
    tool_id: str = ""
    tool_name: str = ""
    #: Everything streamed into the block (text, thinking or argument JSON fragments).
    parts: list[str] = field(default_factory=list)
    #: Upstream's signature for a reasoning block, when it sent one.
    signature: str | None = None
    #: Whether upstream ended this tool call itself (``stop: true``).
    stopped: bool = False


class ResponseTracker:
    """Turns the upstream events of one response into lifecycle events.

    Drive it with ``receive`` (one typed upstream event at a time), then exactly one of
    ``end_of_stream`` (the upstream body ended cleanly) or ``fail``; drain ``next_event``.
    ``MessageStarted`` is queued at construction.

    Args:
        plan: what the request side decided (model name, tool-name map, thinking, limits).
        message_id: ``msg_...``, chosen by the adapter.
        estimate_tokens: text -> token estimate, used for output tokens when upstream reports
            none (injectable for tests).
    """

    def __init__(
        self,
        plan: ResponsePlan,
        *,
        message_id: str,
        estimate_tokens: Callable[[str], int] = estimate_text_tokens,
        resumable_cuts: int = 0,
    ) -> None:
        self.plan = plan
        self.message_id = message_id
        self._estimate = estimate_tokens
        self._state = MessageState.STREAMING
        # A list, not a deque (760 bytes each, per stream): a read brings a few events, taken at once.
        self._events: list[LifecycleEvent] = []
        self._splitter = ThinkingSplitter() if plan.thinking else None
        self._matcher = StopSequenceMatcher(plan.stop_sequences)
        # Neither thinking to split off nor stop sequences to watch: text goes straight to deltas.
        self._plain_text = self._splitter is None and not self._matcher.sequences
        self._open: _OpenBlock | None = None
        self._next_index = 0
        self._closed_tools: set[str] = set()
        # Finished blocks as (kind, concatenated content), for the output-token estimate.
        self._done_blocks: list[tuple[_BlockKind, str]] = []
        self._tool_calls = 0
        self._upstream_events = 0
        self._ignored: list[str] = []
        self._context_percentage: float | None = None
        self._token_usage: TokenUsage | None = None
        self._upstream_stop: str | None = None
        self._credits: float | None = None
        self._length_cut = False
        self._stop_sequence: str | None = None
        self._stop_reason: StopReason | None = None
        self._usage: Usage | None = None
        self._failure: StreamFailed | None = None
        self._upstream_failure: UpstreamFailure | None = None
        # The events of the tool call being received, released when it closes complete.
        self._held: list[LifecycleEvent] = []
        self._emitted_blocks = 0
        # Cut tool calls that may still be answered by asking again, and the one waiting for it.
        self._resumable_cuts = resumable_cuts
        self._cut: str | None = None
        self._emit(
            MessageStarted(
                message_id=message_id,
                model=plan.client_model,
                usage=Usage(input_tokens=max(0, plan.estimated_input_tokens), output_tokens=0),
            )
        )

    # -- what adapters read ------------------------------------------------------------------

    @property
    def state(self) -> MessageState:
        return self._state

    @property
    def finished(self) -> bool:
        """True once the response ended, well or not (no more events will be produced)."""
        return self._state is not MessageState.STREAMING

    @property
    def failure(self) -> StreamFailed | None:
        """The ``StreamFailed`` that ended the response, if it failed."""
        return self._failure

    @property
    def upstream_failure(self) -> UpstreamFailure | None:
        """The classified cause, when the failure came from upstream (for the account pool)."""
        return self._upstream_failure

    @property
    def stop_reason(self) -> StopReason | None:
        return self._stop_reason

    @property
    def stop_sequence(self) -> str | None:
        return self._stop_sequence

    @property
    def usage(self) -> Usage:
        """Final usage once finished; before that, the best figures known so far."""
        return self._usage if self._usage is not None else self._compute_usage()

    @property
    def content_started(self) -> bool:
        """Whether any content block was released (a held tool call does not count)."""
        return self._emitted_blocks > 0

    @property
    def released_text(self) -> str:
        """The answer's text so far, as the client gets it (closed text blocks, in order)."""
        return "".join(content for kind, content in self._done_blocks if kind == "text")

    @property
    def awaiting_continuation(self) -> str | None:
        """Why the answer stopped short (a tool call Kiro cut off, dropped unseen), when it
        waits to be continued by ``continue_answer``; None otherwise."""
        return self._cut

    @property
    def credits(self) -> float | None:
        """Credits Kiro charged for the turn (``meteringEvent``), when reported."""
        return self._credits

    @property
    def ignored_events(self) -> tuple[str, ...]:
        """Upstream event types received and deliberately not used, in order (the first 100; for logs)."""
        return tuple(self._ignored)

    def next_event(self) -> LifecycleEvent | NeedDataType:
        """The next lifecycle event, or ``NEED_DATA`` when the tracker is waiting for input."""
        return self._events.pop(0) if self._events else NEED_DATA

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, event: UpstreamEvent) -> None:
        """Absorb one typed upstream event.

        Events after the response ended (a stop sequence or a length cut ends it early) are
        ignored: the adapter may close the upstream as soon as ``finished`` is true.
        """
        if self.finished or self._cut is not None:
            return
        self._upstream_events += 1
        if isinstance(event, AssistantResponse):
            self._on_text(event.content)
        elif isinstance(event, ToolUse):
            self._on_tool(event)
        elif isinstance(event, ReasoningContent):
            self._on_reasoning(event)
        elif isinstance(event, ContextUsage):
            self._context_percentage = event.percentage
        elif isinstance(event, MessageMetadata):
            if event.token_usage is not None:
                self._token_usage = event.token_usage
            if event.stop_reason is not None:
                self._upstream_stop = event.stop_reason
        elif isinstance(event, MessageStop):
            if event.stop_reason is not None:
                self._upstream_stop = event.stop_reason
        elif isinstance(event, Metering):
            self._credits = event.usage
        elif isinstance(event, UpstreamException):
            self._on_exception(event.exception_type, event.message)
        elif isinstance(event, UpstreamError):
            self._on_exception(event.error_code, event.message)
        elif isinstance(event, InvalidState):
            self._fail_upstream(classify_stream_failure("invalidStateEvent", f"{event.reason}: {event.message}"))
        elif isinstance(event, IgnoredUpstreamEvent):
            self._note_ignored(event.event_type)
        elif isinstance(event, UnknownUpstreamEvent):
            self._note_ignored(event.event_type or event.message_type)
        else:  # pragma: no cover - exhaustiveness is checked by mypy
            _never: None = event
            raise AssertionError(_never)

    def end_of_stream(self) -> None:
        """The upstream body ended cleanly: close what is open and finish the turn (or wait
        for its continuation, see ``awaiting_continuation``)."""
        if self.finished or self._cut is not None:
            return
        if self._upstream_events == 0:
            self._fail_upstream(_remote_failure("Kiro ended the response without sending any event."))
            return
        self._finish()

    def fail(self, kind: ErrorKind, message: str, *, upstream_failure: UpstreamFailure | None = None) -> None:
        """End the response with an error the client sees (no-op if it already ended).

        Args:
            kind: the client-facing error class.
            message: what happened; shown to the client, so it must hold no secret.
            upstream_failure: the classified upstream cause, if any (kept for the account pool).
        """
        if self.finished:
            return
        self._held.clear()  # a call still being received never reaches the client
        self._cut = None
        self._upstream_failure = upstream_failure
        self._failure = StreamFailed(kind=kind, message=message)
        self._state = next_state(self._state, Input.FAIL)
        self._events.append(self._failure)

    def ignore(self, description: str) -> None:
        """Record an upstream event that was received but not used (e.g. an accounting event
        whose payload could not be parsed); it counts as upstream activity."""
        if not self.finished:
            self._upstream_events += 1
            self._note_ignored(description)

    def _note_ignored(self, description: str) -> None:
        # Bounded: the list is for logs, and upstream controls how many events it sends.
        if len(self._ignored) < _MAX_IGNORED_NOTED:
            self._ignored.append(description)

    def ping(self) -> None:
        """Queue a keep-alive ``Ping`` (ignored once the response ended)."""
        if not self.finished:
            self._events.append(Ping())

    # -- text and thinking -------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        if not text:
            return
        if self._plain_text:  # most answers, once per frame: no segment list to build and walk
            self._text_delta(text)
            return
        segments = self._splitter.feed(text) if self._splitter is not None else [Segment(thinking=False, text=text)]
        self._emit_segments(segments)

    def _emit_segments(self, segments: list[Segment]) -> None:
        for seg in segments:
            if self.finished:
                return
            if seg.thinking:
                self._thinking_delta(seg.text)
            else:
                self._answer_text(seg.text)

    def _answer_text(self, text: str) -> None:
        certain, matched = self._matcher.feed(text)
        if certain:
            self._text_delta(certain)
        if matched is not None:
            self._stop_sequence = matched
            self._finish(discard_pending=True)

    def _text_delta(self, text: str) -> None:
        # Most deltas continue the open block: no new block value to build for them.
        block = self._open
        if block is None or block.kind != "text":
            block = self._ensure_block("text", TextBlock())
        if block is not None:
            block.parts.append(text)
            self._emit(TextDelta(index=block.index, text=text))

    def _thinking_delta(self, text: str) -> None:
        block = self._open
        if block is None or block.kind != "thinking":
            block = self._ensure_block("thinking", ThinkingBlock())
        if block is not None:
            block.parts.append(text)
            self._emit(ThinkingDelta(index=block.index, thinking=text))

    def _flush_pending_text(self) -> None:
        """Release text held back by the thinking splitter and the stop-sequence matcher.

        Called before a non-text block opens and at the end, so nothing held back is lost and
        it lands before whatever comes next.
        """
        if self._splitter is not None:
            self._emit_segments(self._splitter.flush())
        if self.finished:
            return
        tail = self._matcher.flush()
        if tail:
            self._text_delta(tail)

    def _on_reasoning(self, event: ReasoningContent) -> None:
        if not self.plan.thinking:
            # The client did not ask for thinking, so it gets no thinking blocks (Anthropic's
            # own API behaves the same); the reasoning is not part of the answer.
            self._note_ignored("reasoningContentEvent")
            return
        if event.redacted_content:
            self._flush_pending_text()
            block = self._open_block("redacted_thinking", RedactedThinkingBlock(data=event.redacted_content))
            if block is not None:
                self._close_open_block()
        if event.text:
            self._flush_pending_text()
            if not self.finished:
                self._thinking_delta(event.text)
        if event.signature and self._open is not None and self._open.kind == "thinking":
            self._open.signature = event.signature

    # -- tools -------------------------------------------------------------------------------

    def _on_tool(self, event: ToolUse) -> None:
        tool_id = event.tool_use_id
        if tool_id in self._closed_tools:
            return  # events for a closed call are retransmissions or violations
        current = self._open
        if current is None or current.kind != "tool_use" or current.tool_id != tool_id:
            if not tool_id or not event.name:
                self._fail_upstream(_remote_failure("Kiro sent a tool call without a toolUseId or name."))
                return
            self._flush_pending_text()
            name = self.plan.client_tool_name(event.name)
            current = self._open_block("tool_use", ToolUseBlock(id=tool_id, name=name), tool_id=tool_id, tool_name=name)
            if current is None:
                return
            self._tool_calls += 1
        if event.input:
            current.parts.append(event.input)
            self._emit(ToolInputDelta(index=current.index, partial_json=event.input))
        if event.stop:
            current.stopped = True
            self._close_open_block()

    # -- blocks ------------------------------------------------------------------------------

    def _ensure_block(self, kind: _BlockKind, block: ContentBlock) -> _OpenBlock | None:
        if self._open is not None and self._open.kind == kind:
            return self._open
        if kind != "text":
            # A text block may hold back a tail (stop sequences); it belongs before this block.
            tail = self._matcher.flush()
            if tail:
                self._text_delta(tail)
        return self._open_block(kind, block)

    def _open_block(
        self, kind: _BlockKind, block: ContentBlock, *, tool_id: str = "", tool_name: str = ""
    ) -> _OpenBlock | None:
        """Close the open block (if any) and start a new one; None if the response ended."""
        if self._open is not None and not self._close_open_block():
            return None
        if self.finished:
            return None
        opened = _OpenBlock(index=self._next_index, kind=kind, tool_id=tool_id, tool_name=tool_name)
        self._next_index += 1
        self._open = opened
        if kind != "tool_use":
            self._emitted_blocks += 1
        self._emit(ContentBlockStarted(index=opened.index, block=block))
        return opened

    def _close_open_block(self) -> bool:
        """Close the open block; False if that failed the response (cut-off tool arguments)."""
        block = self._open
        if block is None:
            return True
        content = "".join(block.parts)
        if block.kind == "tool_use":
            if not content.strip() and block.stopped:
                # Upstream ended a call without arguments (a parameter-less tool); "{}" keeps
                # "every tool's fragments concatenate to an object" true for the client.
                content = "{}"
                self._emit(ToolInputDelta(index=block.index, partial_json=content))
            elif not _is_json_object(content):
                # Kiro truncates large tool calls mid-stream: no ``stop``, incomplete JSON (or
                # none at all). The call was held, so the client saw none of it; a
                # complete-looking call would run the tool with cut-off arguments.
                self._drop_cut_call(block, content)
                return False
            self._closed_tools.add(block.tool_id)
            self._emitted_blocks += 1
            held, self._held = self._held, []
            self._events.extend(held)
        elif block.kind == "thinking":
            self._emit(SignatureDelta(index=block.index, signature=block.signature or self._signature(block, content)))
        self._open = None
        self._done_blocks.append((block.kind, content))
        self._emit(ContentBlockStopped(index=block.index))
        return True

    def _drop_cut_call(self, block: _OpenBlock, content: str) -> None:
        self._open = None
        self._held.clear()
        self._next_index -= 1  # the dropped call's index goes to whatever comes instead
        self._tool_calls -= 1
        size = len(content.encode("utf-8", "surrogatepass"))
        message = (
            f"Kiro cut off the tool call {block.tool_name!r} ({block.tool_id}): its arguments are not "
            f"complete JSON after {size} bytes. Kiro truncates very large tool calls; ask for "
            "smaller edits or writes."
        )
        if self._resumable_cuts > 0:
            self._resumable_cuts -= 1
            self._cut = message
            return
        self._fail_upstream(_remote_failure(message, FailureClass.TOOL_CALL_CUT))

    def continue_answer(self) -> None:
        """Take the next upstream answer as the rest of this one (after ``awaiting_continuation``).

        Blocks keep their indexes and the text already released stays; what described the cut
        answer's upstream call (its usage figures, stop reason, credits) is forgotten, as the
        continuation reports its own.
        """
        if self._cut is None:
            raise RemoteProtocolError("ResponseTracker: continue_answer() without a cut answer to continue")
        self._cut = None
        self._upstream_events = 0
        self._token_usage = None
        self._context_percentage = None
        self._upstream_stop = None
        self._credits = None

    def _signature(self, block: _OpenBlock, thinking: str) -> str:
        # Kiro's inline thinking has no signature, but clients expect one and send it back with
        # the block. A digest of the message id, index and text is stable and opaque; it proves
        # nothing, and the request converter must not forward it as if Anthropic had signed it.
        digest = hashlib.sha256(f"{self.message_id}\x00{block.index}\x00{thinking}".encode("utf-8", "surrogatepass"))
        return base64.b64encode(digest.digest()).decode("ascii")

    # -- the end -----------------------------------------------------------------------------

    def _on_exception(self, exception_type: str, message: str) -> None:
        if is_content_length_exception(exception_type, message) and self._next_index > 0:
            # Kiro cut the answer for length after output began: a max_tokens stop
            # (docs/kiro-protocol.md, Exception and error frames).
            self._length_cut = True
            self._finish()
            return
        self._fail_upstream(classify_stream_failure(exception_type, message))

    def _fail_upstream(self, failure: UpstreamFailure) -> None:
        error = failure.client_error
        self.fail(error.kind, error.message, upstream_failure=failure)

    def _finish(self, *, discard_pending: bool = False) -> None:
        if self.finished:
            return  # e.g. closing a cut-off tool call just failed the response
        if not discard_pending:
            self._flush_pending_text()
            if self.finished:
                return
        if not self._close_open_block():
            return
        self._stop_reason = self._decide_stop_reason()
        self._usage = self._compute_usage()
        self._state = next_state(self._state, Input.FINISH)
        self._events.append(
            MessageDelta(stop_reason=self._stop_reason, stop_sequence=self._stop_sequence, usage=self._usage)
        )
        self._events.append(MessageStopped())

    def _decide_stop_reason(self) -> StopReason:
        return decide_stop_reason(
            stop_sequence=self._stop_sequence,
            length_cut=self._length_cut,
            upstream_stop_reason=self._upstream_stop,
            tool_calls=self._tool_calls,
        )

    def _compute_usage(self) -> Usage:
        return compute_usage(
            token_usage=self._token_usage,
            context_percentage=self._context_percentage,
            context_window=self.plan.context_window,
            estimated_input_tokens=self.plan.estimated_input_tokens,
            estimated_output_tokens=self._estimate_output(),
        )

    def _estimate_output(self) -> int:
        # Estimated over each block's final content (not per fragment, which over-counts).
        blocks = list(self._done_blocks)
        if self._open is not None:
            blocks.append((self._open.kind, "".join(self._open.parts)))
        total = sum(self._estimate(content) for kind, content in blocks if kind != "redacted_thinking" and content)
        return max(total, 1) if blocks else 0

    def _emit(self, event: LifecycleEvent) -> None:
        # Once per delta: the table's answer for the common case is looked up once, at import.
        state = self._state
        self._state = _STREAMING_ON_CONTENT if state is MessageState.STREAMING else next_state(state, Input.CONTENT)
        if self._open is not None and self._open.kind == "tool_use":
            self._held.append(event)
        else:
            self._events.append(event)


def _remote_failure(message: str, failure_class: FailureClass = FailureClass.SERVER_ERROR) -> UpstreamFailure:
    """An upstream fault found by the tracker itself (not reported by Kiro as an error)."""
    return UpstreamFailure(
        failure_class=failure_class,
        status=200,
        message=message,
        reason=None,
        client_error=RemoteProtocolError(message),
    )


def _is_json_object(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict)
