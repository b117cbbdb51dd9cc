"""A web search answered through Kiro's MCP endpoint (docs/web-search.md).

``ModelCall`` uses a ``WebSearchAnswer`` in place of the ``ResponseTranslator`` when the request
is a web search (``requests._web_search.web_search_of``): the upstream 200 body is one JSON-RPC
answer, not an EventStream, so it is collected and read once it ended. The answer is built as
lifecycle events and encoded by the dialect's own encoder, so a streamed and a non-streamed
search cannot disagree:

    MessageStarted Ping?
    ContentBlockStarted(server_tool_use) ToolInputDelta({"query"}) ContentBlockStopped
    ContentBlockStarted(web_search_tool_result) ContentBlockStopped
    ContentBlockStarted(text) TextDelta ContentBlockStopped
    MessageDelta(end_turn, usage.web_search_requests = 1) MessageStopped

The OpenAI dialect has no server-tool blocks: its answer is the text block alone (it lists the
results). A search that fails ends with ``StreamFailed`` and the 502 ``web search failed: ...``
(``pool._mcp``); nothing is held back as an empty success.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .._errors import ErrorKind, LocalProtocolError, ProtocolError, RemoteProtocolError
from ..http._messages import Reply
from ..pool._mcp import SEARCH_FAILED_PREFIX, SearchHit, parse_web_search_answer, web_search_failed
from ..pool._upstream_errors import FailureClass, UpstreamFailure, stream_interrupted
from ..requests._plan import ResponsePlan
from ..requests._token_estimator import estimate_text_tokens
from ..responses._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    ResponseEncoder,
    ServerToolUseBlock,
    StopReason,
    StreamFailed,
    TextBlock,
    TextDelta,
    ToolInputDelta,
    Usage,
    WebSearchHit,
    WebSearchResultBlock,
)

__all__ = ["WebSearchAnswer", "search_summary", "MAX_MCP_ANSWER_BYTES"]

#: A larger answer is no search result (Kiro's are a few kilobytes): the search fails.
MAX_MCP_ANSWER_BYTES = 4 * 1024 * 1024
# Snippets are cut to this in the summary (the result block carries them whole).
_SUMMARY_SNIPPET = 300


def search_summary(query: str, hits: tuple[SearchHit, ...]) -> str:
    """The short text block after the results: what was found, numbered, with links."""
    if not hits:
        return f'The web search for "{query}" found no results.'
    lines = [f'Web search results for "{query}":']
    for number, hit in enumerate(hits, 1):
        dated = f" ({hit.page_age})" if hit.page_age else ""
        lines.append(f"\n{number}. [{hit.title}]({hit.url}){dated}")
        if hit.snippet:
            snippet = hit.snippet
            lines.append(f"   {snippet if len(snippet) <= _SUMMARY_SNIPPET else snippet[: _SUMMARY_SNIPPET - 1] + '…'}")
    return "\n".join(lines)


class WebSearchAnswer:
    """Bytes of Kiro's ``/mcp`` answer in, the client's answer out (the translator's interface
    as far as ``ModelCall`` uses it).

    Args:
        plan: the request's response plan (client model, stream, input estimate).
        query: what was searched for.
        tool_use_id: ``srvtoolu_`` + 32 random hex characters.
        message_id: ``msg_`` + random characters.
        encoder: the dialect's encoder for ``plan``.
        server_blocks: answer with ``server_tool_use`` and ``web_search_tool_result`` blocks
            (Anthropic); without, the text block alone (OpenAI).
        now: monotonic seconds (the keep-alive clock).
        ping_interval: seconds of silence before a ``ping``.
        keeps: the client's domain filters: whether a result at this URL is kept.
    """

    def __init__(
        self,
        plan: ResponsePlan,
        *,
        query: str,
        tool_use_id: str,
        message_id: str,
        encoder: ResponseEncoder,
        server_blocks: bool,
        now: float,
        ping_interval: float,
        keeps: Callable[[str], bool] = lambda url: True,
    ) -> None:
        self.query = query
        self._keeps = keeps
        self.ping_interval = ping_interval
        self._tool_use_id = tool_use_id
        self._encoder = encoder
        self._server_blocks = server_blocks
        self._body = bytearray()
        self._out = bytearray()
        self._final_body: bytes | None = None
        self._last_output = now
        self._usage = Usage(input_tokens=max(0, plan.estimated_input_tokens), output_tokens=0)
        self.finished = False
        self.content_started = False
        #: The failure the answer ended with, and its classified cause (for the pool).
        self.failure: StreamFailed | None = None
        self.upstream_failure: UpstreamFailure | None = None
        #: How many hits the search returned (for the log), once it did.
        self.hits: tuple[SearchHit, ...] = ()
        self._send(MessageStarted(message_id=message_id, model=plan.client_model, usage=self._usage))
        if encoder.streaming:
            self._send(Ping())

    # -- what ModelCall reads ---------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._encoder.streaming

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def credits(self) -> float | None:
        return None  # the MCP answer reports none

    @property
    def released_text(self) -> str:
        return ""  # a search is never continued

    @property
    def awaiting_continuation(self) -> None:
        return None  # a search has no tool call to be cut

    def continue_answer(self) -> None:
        raise LocalProtocolError("WebSearchAnswer: a web search has no continuation")

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def final_response(self) -> Reply | None:
        """The complete non-streamed answer once it ended well (a failure is the call's to answer)."""
        if self._encoder.streaming or self._final_body is None:
            return None
        return Reply(status=200, headers=(("content-type", self._encoder.media_type),), body=self._final_body)

    # -- feeds ---------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Bytes of the 200 answer; ``b""`` when it ended (then it is read)."""
        if self.finished:
            return
        if data:
            self._body += data
            if len(self._body) > MAX_MCP_ANSWER_BYTES:
                self._fail_search(web_search_failed(f"Kiro's MCP answer is larger than {MAX_MCP_ANSWER_BYTES} bytes"))
            return
        try:
            hits = parse_web_search_answer(bytes(self._body))
        except RemoteProtocolError as exc:
            self._fail_search(exc)
            return
        self._answer(hits, now)

    def connection_lost(self, detail: str, now: float | None = None) -> None:
        if self.finished:
            return
        text = f"{SEARCH_FAILED_PREFIX}: the connection to Kiro was lost before its answer was complete"
        failure = stream_interrupted(f"{text} ({detail})." if detail else f"{text}.")
        self._end_failed(failure.client_error, failure)

    def tick(self, now: float) -> None:
        if self._encoder.streaming and not self.finished and now - self._last_output >= self.ping_interval:
            self._last_output = now
            self._send(Ping())

    def fail(self, kind: ErrorKind, message: str, now: float | None = None) -> None:
        """End the answer with an error the client sees (the server is shutting down)."""
        if not self.finished:
            self._end_failed(RemoteProtocolError(message, kind=kind), None)

    # -- internals -----------------------------------------------------------------------------

    def _send(self, event: LifecycleEvent) -> None:
        data = self._encoder.send(event)
        if not data:
            return
        if self._encoder.streaming:
            self._out += data
        else:
            self._final_body = data

    def _fail_search(self, error: RemoteProtocolError) -> None:
        # Not the account's fault and not worth another account: the same search, same index.
        failure = UpstreamFailure(
            failure_class=FailureClass.BAD_REQUEST, status=200, message=error.message, reason=None, client_error=error
        )
        self._end_failed(error, failure)

    def _end_failed(self, error: ProtocolError, failure: UpstreamFailure | None) -> None:
        self.finished = True
        self.failure = StreamFailed(kind=error.kind, message=error.message)
        self.upstream_failure = failure
        self._send(self.failure)

    def _answer(self, hits: tuple[SearchHit, ...], now: float | None) -> None:
        hits = tuple(h for h in hits if self._keeps(h.url))
        self.hits = hits
        self.content_started = True
        index = 0
        query_json = json.dumps({"query": self.query}, ensure_ascii=False)
        if self._server_blocks:
            self._send(ContentBlockStarted(index=0, block=ServerToolUseBlock(id=self._tool_use_id, name="web_search")))
            self._send(ToolInputDelta(index=0, partial_json=query_json))
            self._send(ContentBlockStopped(index=0))
            results = tuple(
                WebSearchHit(title=h.title, url=h.url, encrypted_content=h.snippet, page_age=h.page_age) for h in hits
            )
            block = WebSearchResultBlock(tool_use_id=self._tool_use_id, results=results)
            self._send(ContentBlockStarted(index=1, block=block))
            self._send(ContentBlockStopped(index=1))
            index = 2
        summary = search_summary(self.query, hits)
        self._send(ContentBlockStarted(index=index, block=TextBlock()))
        self._send(TextDelta(index=index, text=summary))
        self._send(ContentBlockStopped(index=index))
        output = estimate_text_tokens(summary) + (estimate_text_tokens(query_json) if self._server_blocks else 0)
        self._usage = Usage(input_tokens=self._usage.input_tokens, output_tokens=output, web_search_requests=1)
        self._send(MessageDelta(stop_reason=StopReason.END_TURN, stop_sequence=None, usage=self._usage))
        self._send(MessageStopped())
        self.finished = True
        if now is not None:
            self._last_output = now

    def __repr__(self) -> str:
        return f"WebSearchAnswer(query={self.query!r}, finished={self.finished})"
