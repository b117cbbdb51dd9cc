"""OpenAI Responses API encoders: lifecycle events -> the ``/v1/responses`` SSE stream, or one
``response`` JSON object.

They consume the very lifecycle events the Anthropic and Chat Completions encoders do (one
tracker, three dialects), so the three answers to the same upstream bytes cannot disagree.

Mapping (docs/response.md, The Responses API answer), one output item per content block, in block order:

* a thinking block -> a ``reasoning`` item whose ``summary`` holds the thinking text (one
  ``summary_text`` part, none when the thinking was empty); signatures have no form here;
  redacted thinking -> a ``reasoning`` item with no summary and the opaque data as
  ``encrypted_content``;
* a text block -> a ``message`` item (role ``assistant``) with one ``output_text`` part;
* a tool block -> a ``function_call`` item: ``call_id`` is Kiro's ``toolUseId``, ``name`` the
  client's (a tool the request flattened out of a ``namespace`` gets its own name back and the
  ``namespace`` field), ``arguments`` the JSON string (``{}`` when Kiro sent none);
* a server web search -> a ``web_search_call`` item with the query; its result block has no
  Responses form (the text block after it lists the results);
* ``stop_reason`` -> ``status``: ``completed``, or ``incomplete`` with
  ``incomplete_details.reason = "max_output_tokens"`` for a length cut;
* usage -> ``input_tokens`` (all input, cached or not), ``input_tokens_details.cached_tokens``,
  ``output_tokens``, ``output_tokens_details.reasoning_tokens`` (the thinking text's estimate),
  ``total_tokens``.

The stream (every event carries ``sequence_number``, 0, 1, 2, ... and an ``event:`` name equal to
its ``type``)::

    response.created response.in_progress
    ( response.output_item.added
        ( response.content_part.added response.output_text.delta* response.output_text.done
          response.content_part.done                                        # message
        | ( response.reasoning_summary_part.added response.reasoning_summary_text.delta+
            response.reasoning_summary_text.done response.reasoning_summary_part.done )?  # reasoning
        | response.function_call_arguments.delta+ response.function_call_arguments.done  # function_call
        | response.web_search_call.in_progress .searching .completed )      # web_search_call
      response.output_item.done )*
    ( response.completed | response.incomplete | response.failed )

A length cut ends with ``response.incomplete`` (``status: incomplete``,
``incomplete_details.reason = "max_output_tokens"``), as the API ends one: the Codex CLI keeps the
finished items and tells the user why the turn stopped instead of taking a cut answer for a whole
one (docs/clients.md). A failure ends with ``response.failed`` (``status: failed`` and an ``error``
with a code Codex acts on: ``context_length_exceeded`` for an over-long conversation); the item
open at that moment is left unfinished, so no client mistakes a cut-off call for a whole one.
Keep-alive pings are SSE comments.

Ids and time are inputs: the core draws no randomness and reads no clock. Item ids are derived
from the response id, so they are unique per response and the same in the stream and the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._errors import ErrorKind, LocalProtocolError
from ..http._error_bodies import responses_error_body, responses_error_code
from ..requests._plan import ResponsePlan
from ..requests._token_estimator import estimate_text_tokens
from ..wire._sse import SSE_MEDIA_TYPE, sse_event
from ._anthropic import JSON_MEDIA_TYPE, dumps
from ._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    RedactedThinkingBlock,
    ResponseEncoder,
    ServerToolUseBlock,
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
    WebSearchResultBlock,
)
from ._openai import PING_COMMENT

__all__ = [
    "RESPONSE_ID_PREFIX",
    "MIN_RESPONSE_ID_RANDOM",
    "ResponseEcho",
    "responses_usage_json",
    "ResponsesStreamEncoder",
    "ResponsesObjectEncoder",
    "responses_encoder",
]

RESPONSE_ID_PREFIX = "resp_"
#: A response id is ``resp_`` plus at least this many random characters.
MIN_RESPONSE_ID_RANDOM = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseEcho:
    """What the ``response`` object repeats of the request, as the client sent it (JSON-ready
    values; the request parser fills it). Nothing here changes the answer itself."""

    instructions: str | None = None
    #: The request's ``tools``, as sent (JSON objects).
    tools: tuple[Any, ...] = ()
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``{"effort": ..., "summary": ...}`` as asked (None: neither was).
    reasoning: Mapping[str, Any] | None = None
    #: ``{"format": {...}}`` as asked (None: plain text).
    text: Mapping[str, Any] | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    store: bool = False
    prompt_cache_key: str | None = None
    #: Client tool name the request flattened out of a ``namespace`` tool -> (namespace, name),
    #: so a call reaches the client under the names it declared.
    namespaced_tools: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def as_json(self) -> dict[str, Any]:
        """The request fields of the ``response`` object, in the API's order."""
        reasoning = dict(self.reasoning) if self.reasoning is not None else {}
        return {
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "max_tool_calls": None,
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": None,
            "prompt_cache_key": self.prompt_cache_key,
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": self.store,
            "temperature": self.temperature,
            "text": dict(self.text) if self.text is not None else {"format": {"type": "text"}},
            "tool_choice": self.tool_choice,
            "tools": list(self.tools),
            "top_p": self.top_p,
            "truncation": "disabled",
            "user": None,
            "metadata": dict(self.metadata),
        }


def responses_usage_json(usage: Usage, *, reasoning_tokens: int = 0) -> dict[str, Any]:
    """The Responses API's ``usage``: ``input_tokens`` counts all input, cached or not
    (Anthropic's excludes the cache); ``reasoning_tokens`` is part of ``output_tokens``."""
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    total_input = usage.input_tokens + cached + written
    return {
        "input_tokens": total_input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": min(reasoning_tokens, usage.output_tokens)},
        "total_tokens": total_input + usage.output_tokens,
    }


def _check_ids(response_id: str, created_at: int) -> None:
    shortest = len(RESPONSE_ID_PREFIX) + MIN_RESPONSE_ID_RANDOM
    if not response_id.startswith(RESPONSE_ID_PREFIX) or len(response_id) < shortest:
        raise LocalProtocolError(
            f"response id must be {RESPONSE_ID_PREFIX!r} + at least {MIN_RESPONSE_ID_RANDOM} characters"
        )
    if isinstance(created_at, bool) or not isinstance(created_at, int) or created_at < 0:
        raise LocalProtocolError("created_at must be a non-negative integer (Unix seconds)")


# Item id prefixes, as the API spells them.
_ID_PREFIX = {"message": "msg", "reasoning": "rs", "function_call": "fc", "web_search_call": "ws"}


class _Item:
    """One output item being built from one content block."""

    __slots__ = ("kind", "block", "output_index", "id", "pieces", "call_id", "name", "namespace", "opaque")

    def __init__(self, kind: str, block: int, output_index: int, item_id: str) -> None:
        self.kind = kind
        self.block = block
        self.output_index = output_index
        self.id = item_id
        #: Text, summary or argument fragments, in order.
        self.pieces: list[str] = []
        self.call_id = ""
        self.name = ""
        self.namespace: str | None = None
        #: A redacted reasoning item's ``encrypted_content``.
        self.opaque: str | None = None

    def json(self, *, done: bool) -> dict[str, Any]:
        """The item as ``output_item.added`` (``done=False``: empty) or ``.done`` and the
        final ``output`` show it."""
        status = "completed" if done else "in_progress"
        text = "".join(self.pieces) if done else ""
        if self.kind == "message":
            content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}] if done else []
            return {"id": self.id, "type": "message", "status": status, "content": content, "role": "assistant"}
        if self.kind == "reasoning":
            item: dict[str, Any] = {"id": self.id, "type": "reasoning", "summary": []}
            if done and text:
                item["summary"] = [{"type": "summary_text", "text": text}]
            if self.opaque is not None:
                item["encrypted_content"] = self.opaque
            return item
        if self.kind == "function_call":
            call: dict[str, Any] = {
                "id": self.id,
                "type": "function_call",
                "status": status,
                # The tracker stops a tool block only when its fragments form a JSON object.
                "arguments": (text or "{}") if done else "",
                "call_id": self.call_id,
                "name": self.name,
            }
            if self.namespace is not None:
                call["namespace"] = self.namespace
            return call
        query = ""
        if done:
            try:
                parsed = json.loads(text) if text else {}
            except ValueError:
                parsed = {}
            if isinstance(parsed, dict) and isinstance(parsed.get("query"), str):
                query = parsed["query"]
        return {"id": self.id, "type": "web_search_call", "status": status, "action": {"type": "search", "query": query}}


class _ResponseBuilder:
    """What both encoders share: the items of the answer and the ``response`` object around them."""

    def __init__(self, *, response_id: str, created_at: int, echo: ResponseEcho) -> None:
        _check_ids(response_id, created_at)
        self.response_id = response_id
        self.created_at = created_at
        self.echo = echo
        # The echoed request fields, serialised once: they repeat in three events (Codex's
        # tools alone are tens of kilobytes) and never change.
        self._echo_json = dumps(echo.as_json())[1:-1]
        self._model = ""
        self._serial = response_id[len(RESPONSE_ID_PREFIX) :]
        self.items: list[_Item] = []
        self.open: _Item | None = None
        self._delta: MessageDelta | None = None

    def start_item(self, event: ContentBlockStarted) -> _Item | None:
        """The item for a new block (None for a block with no Responses form)."""
        block = event.block
        if isinstance(block, TextBlock):
            kind = "message"
        elif isinstance(block, (ThinkingBlock, RedactedThinkingBlock)):
            kind = "reasoning"
        elif isinstance(block, ToolUseBlock):
            kind = "function_call"
        elif isinstance(block, ServerToolUseBlock):
            kind = "web_search_call"
        else:
            self.open = None
            return None
        number = len(self.items)
        item = _Item(kind, event.index, number, f"{_ID_PREFIX[kind]}_{self._serial}_{number}")
        if isinstance(block, ToolUseBlock):
            item.call_id = block.id
            item.namespace, item.name = self.echo.namespaced_tools.get(block.name, (None, block.name))
        elif isinstance(block, RedactedThinkingBlock):
            item.opaque = block.data
        self.items.append(item)
        self.open = item
        return item

    def item_at(self, index: int) -> _Item | None:
        """The open item of block ``index`` (None: the block has no item)."""
        item = self.open
        return item if item is not None and item.block == index else None

    def response_json(self, status: str, *, error: dict[str, str] | None = None) -> bytes:
        """The whole ``response`` object in ``status`` (the items finished so far)."""
        done = [item.json(done=True) for item in self.items if item is not self.open or status != "failed"]
        incomplete = None
        usage = None
        if status in ("completed", "incomplete"):
            assert self._delta is not None  # the tracker sends MessageDelta before MessageStopped
            if status == "incomplete":
                incomplete = {"reason": "max_output_tokens"}
            usage = responses_usage_json(self._delta.usage, reasoning_tokens=self._reasoning_tokens())
        head = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": incomplete,
            "model": self._model,
            "output": done if status != "in_progress" else [],
            "usage": usage,
        }
        return dumps(head)[:-1] + b"," + self._echo_json + b"}"

    def final_status(self) -> str:
        assert self._delta is not None
        return "incomplete" if self._delta.stop_reason is StopReason.MAX_TOKENS else "completed"

    def _reasoning_tokens(self) -> int:
        thinking = "".join("".join(item.pieces) for item in self.items if item.kind == "reasoning")
        return estimate_text_tokens(thinking) if thinking else 0

    def started(self, event: MessageStarted) -> None:
        self._model = event.model

    def ended(self, event: MessageDelta) -> None:
        self._delta = event


def _error_json(failure: StreamFailed) -> dict[str, str]:
    return {"code": responses_error_code(failure.kind, failure.message), "message": failure.message}


class ResponsesStreamEncoder:
    """Streaming encoder: lifecycle events -> the Responses API's SSE events (module docstring).

    Args:
        response_id: ``resp_`` + at least 24 random characters, chosen by the adapter.
        created_at: Unix time in seconds, from the adapter's clock.
        echo: the request fields the ``response`` object repeats.

    Raises:
        LocalProtocolError: a malformed id or ``created_at``.
    """

    streaming = True
    media_type = SSE_MEDIA_TYPE

    def __init__(self, *, response_id: str, created_at: int, echo: ResponseEcho | None = None) -> None:
        self._r = _ResponseBuilder(response_id=response_id, created_at=created_at, echo=echo or ResponseEcho())
        self._sequence = 0
        #: Whether the open reasoning item has opened its summary part.
        self._summary_open = False

    @property
    def response_id(self) -> str:
        return self._r.response_id

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """OpenAI's error body with the Responses API's codes."""
        return responses_error_body(kind, message)

    def _event(self, event_type: str, fields: dict[str, Any]) -> bytes:
        body = {"type": event_type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(event_type, dumps(body))

    def _lifecycle(self, event_type: str, status: str, *, error: dict[str, str] | None = None) -> bytes:
        response = self._r.response_json(status, error=error)
        head = b'{"type":"' + event_type.encode("ascii") + b'","sequence_number":' + str(self._sequence).encode()
        self._sequence += 1
        return sse_event(event_type, head + b',"response":' + response + b"}")

    def _where(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.output_index}

    def send(self, event: LifecycleEvent) -> bytes:
        """The SSE bytes for ``event`` (``b""`` for events with no Responses form)."""
        r = self._r
        if isinstance(event, TextDelta):
            item = r.item_at(event.index)
            if item is None or not event.text:
                return b""
            item.pieces.append(event.text)
            return self._event(
                "response.output_text.delta",
                {**self._where(item), "content_index": 0, "delta": event.text, "logprobs": []},
            )
        if isinstance(event, ToolInputDelta):
            item = r.item_at(event.index)
            if item is None or not event.partial_json:
                return b""
            item.pieces.append(event.partial_json)
            if item.kind != "function_call":
                return b""  # a web search's query shows in its done item
            return self._event("response.function_call_arguments.delta", {**self._where(item), "delta": event.partial_json})
        if isinstance(event, ThinkingDelta):
            item = r.item_at(event.index)
            if item is None or not event.thinking:
                return b""
            out = b""
            if not self._summary_open:
                self._summary_open = True
                part = {"type": "summary_text", "text": ""}
                out = self._event("response.reasoning_summary_part.added", {**self._where(item), "summary_index": 0, "part": part})
            item.pieces.append(event.thinking)
            return out + self._event(
                "response.reasoning_summary_text.delta", {**self._where(item), "summary_index": 0, "delta": event.thinking}
            )
        if isinstance(event, ContentBlockStarted):
            return self._start(event)
        if isinstance(event, ContentBlockStopped):
            return self._stop(event)
        if isinstance(event, MessageStarted):
            r.started(event)
            return self._lifecycle("response.created", "in_progress") + self._lifecycle("response.in_progress", "in_progress")
        if isinstance(event, MessageDelta):
            r.ended(event)
            return b""
        if isinstance(event, MessageStopped):
            status = r.final_status()
            return self._lifecycle("response.completed" if status == "completed" else "response.incomplete", status)
        if isinstance(event, StreamFailed):
            return self._lifecycle("response.failed", "failed", error=_error_json(event))
        if isinstance(event, Ping):
            return PING_COMMENT
        if isinstance(event, SignatureDelta):
            return b""
        _never: None = event  # pragma: no cover - exhaustiveness is checked by mypy
        raise AssertionError(_never)

    def _start(self, event: ContentBlockStarted) -> bytes:
        item = self._r.start_item(event)
        if item is None:
            return b""
        out = self._event("response.output_item.added", {"output_index": item.output_index, "item": item.json(done=False)})
        if item.kind == "message":
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            out += self._event("response.content_part.added", {**self._where(item), "content_index": 0, "part": part})
        elif item.kind == "web_search_call":
            out += self._event("response.web_search_call.in_progress", self._where(item))
            out += self._event("response.web_search_call.searching", self._where(item))
        elif item.kind == "reasoning":
            self._summary_open = False
        return out

    def _stop(self, event: ContentBlockStopped) -> bytes:
        item = self._r.item_at(event.index)
        if item is None:
            return b""
        where = self._where(item)
        text = "".join(item.pieces)
        out = b""
        if item.kind == "message":
            out += self._event("response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []})
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
        elif item.kind == "function_call":
            if not text:
                # Kiro sent no arguments: the deltas must still add up to the arguments.
                item.pieces.append("{}")
                text = "{}"
                out += self._event("response.function_call_arguments.delta", {**where, "delta": text})
            out += self._event("response.function_call_arguments.done", {**where, "name": item.name, "arguments": text})
        elif item.kind == "reasoning" and self._summary_open:
            out += self._event("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text})
            part = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part})
        elif item.kind == "web_search_call":
            out += self._event("response.web_search_call.completed", where)
        self._r.open = None
        return out + self._event("response.output_item.done", {"output_index": item.output_index, "item": item.json(done=True)})


class ResponsesObjectEncoder:
    """Non-streaming encoder: accumulates lifecycle events into one ``response`` object.

    ``send`` returns ``b""`` for every event except ``MessageStopped``, for which it returns the
    whole JSON body. After ``StreamFailed`` nothing is returned: ``failure`` holds the error, and
    the adapter answers with its status and ``error_body`` (``ResponseTranslator.final_response``).
    """

    streaming = False
    media_type = JSON_MEDIA_TYPE

    def __init__(self, *, response_id: str, created_at: int, echo: ResponseEcho | None = None) -> None:
        self._r = _ResponseBuilder(response_id=response_id, created_at=created_at, echo=echo or ResponseEcho())
        self._body: bytes | None = None
        #: The failure, if the response failed.
        self.failure: StreamFailed | None = None

    @property
    def response_id(self) -> str:
        return self._r.response_id

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """OpenAI's error body with the Responses API's codes."""
        return responses_error_body(kind, message)

    @property
    def response(self) -> dict[str, Any] | None:
        """The complete ``response`` object once ``MessageStopped`` was sent, else None."""
        return None if self._body is None else dict(json.loads(self._body))

    def send(self, event: LifecycleEvent) -> bytes:
        """Absorb ``event``; the JSON body when it completes the response, else ``b""``."""
        r = self._r
        if isinstance(event, (TextDelta, ThinkingDelta, ToolInputDelta)):
            item = r.item_at(event.index)
            if item is not None:
                item.pieces.append(
                    event.text if isinstance(event, TextDelta)
                    else event.thinking if isinstance(event, ThinkingDelta)
                    else event.partial_json
                )  # fmt: skip
        elif isinstance(event, ContentBlockStarted):
            r.start_item(event)
        elif isinstance(event, ContentBlockStopped):
            if r.item_at(event.index) is not None:
                r.open = None
        elif isinstance(event, MessageStarted):
            r.started(event)
        elif isinstance(event, MessageDelta):
            r.ended(event)
        elif isinstance(event, MessageStopped):
            self._body = r.response_json(r.final_status())
            return self._body
        elif isinstance(event, StreamFailed):
            self.failure = event
        elif isinstance(event, (SignatureDelta, Ping)):
            pass
        else:  # pragma: no cover - exhaustiveness is checked by mypy
            _never: None = event
            raise AssertionError(_never)
        return b""


def responses_encoder(
    plan: ResponsePlan, *, response_id: str, created_at: int, request_echo: ResponseEcho | None = None
) -> ResponseEncoder:
    """The Responses API encoder for ``plan``: SSE events if the client asked for a stream, else
    one ``response`` object. Pass it to ``ResponseTranslator(..., encoder=...)``.

    Args:
        plan: the request's response plan (only ``stream`` is read here).
        response_id: ``resp_`` + at least 24 random characters, chosen by the adapter.
        created_at: Unix seconds, from the adapter's clock.
        request_echo: the request fields the ``response`` object repeats (the parser's).
    """
    if plan.stream:
        return ResponsesStreamEncoder(response_id=response_id, created_at=created_at, echo=request_echo)
    return ResponsesObjectEncoder(response_id=response_id, created_at=created_at, echo=request_echo)
