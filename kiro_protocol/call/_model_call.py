"""``ModelCall``: one model request, from the client's body to its last byte, as one machine.

It composes the request side (parse, convert), the pool's ``Exchange`` (which account, refresh,
retry) and a ``ResponseTranslator`` per upstream answer, and owns every decision between them:

- the commit point: client bytes are held back until the answer has content, ended well, or
  ``ping_interval`` passed; until then a failure moves to another account (or is answered with
  its real HTTP status), after it the client gets the error inside the stream;
- what a stream's outcome does to the pool (usage, failures, the retry);
- ``DISABLE_STREAM``: the whole answer is held and released at once when it ended well;
- the endings forced from outside: shutdown, a client that left.

The runtime is a short loop (docs/architecture.md)::

    call = ModelCall(...)                      # LocalProtocolError: a bad request body
    while not isinstance(d := call.next_decision(wall()), Done):
        if isinstance(d, SendUpstream):        # open it; feed upstream_started / _answered / _failed
            while call.reading: call.receive_data(chunk, mono()); write(call.take_output())
        elif isinstance(d, Answer): write it   # a complete response (an error, or a JSON body)
        else: execute the pool decision and feed its result (state_loaded, lease_result, ...)
    # meanwhile: call.tick(mono()) every second, call.shutdown(mono()) at the shutdown deadline

Two clocks, both inputs: ``now`` of pool feeds is wall-clock seconds (token expiry is absolute
time); ``now`` of response feeds is monotonic seconds (keep-alive pings, the commit timer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .._errors import ErrorKind, LocalProtocolError, ProtocolError
from ..http._messages import HttpResponse, Reply
from ..http._routing import Dialect, error_answer
from ..pool._accounts import AccountState, PoolSettings
from ..pool._credentials import AccountConfig
from ..pool._decisions import Decision, Done, Persist, Respond, Retry, StartStream
from ..pool._exchange import Exchange
from ..pool._kiro_identity import KiroOperation
from ..pool._mcp import web_search_call_body, web_search_request_id
from ..pool._upstream_errors import FailureClass, UpstreamFailure, stream_interrupted
from ..requests._anthropic import parse_anthropic_request
from ..requests._conversion import ConversionConfig, KiroRequest, convert_request
from ..requests._model import Request
from ..requests._openai import parse_openai_request
from ..requests._responses import ResponsesRequest, parse_responses_request
from ..requests._web_search import WebSearch, web_search_of
from ..responses._anthropic import AnthropicMessageEncoder, AnthropicStreamEncoder
from ..responses._lifecycle_events import ResponseEncoder, Usage
from ..responses._openai import openai_encoder
from ..responses._translator import ResponseTranslator
from ..wire._sse import SSE_HEADERS
from ._recovery import with_recovery_instruction
from ._responses_echo import encoder_for_responses
from ._web_search import WebSearchAnswer

__all__ = ["Answer", "CallIds", "CallSetup", "ClientOutput", "ModelCall", "SHUTDOWN_MESSAGE"]

#: What a client reads when the server's shutdown deadline ends its answer.
SHUTDOWN_MESSAGE = "The server is shutting down; retry the request."
#: The access log's error class of an answer the shutdown deadline ended.
_SHUTDOWN = "shutdown"
#: The access log's error class of an answer the client left before its end (a 200 in the log
#: that was no complete answer; nor a fault of the account).
_CLIENT_LEFT = "client_left"
#: How many times one answer is asked again after Kiro cut a tool call in it.
_RECOVERIES = 1
#: What reads an upstream 200 body: the EventStream translator, or a web search's answer.
_Reader = ResponseTranslator | WebSearchAnswer


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSetup:
    """What every call of one service shares (built once from the operator settings)."""

    accounts: tuple[AccountConfig, ...]
    pool: PoolSettings
    conversion: ConversionConfig
    #: Seconds of silence before a ``ping``; also how long bytes are held back at most.
    ping_interval: float
    #: ``DISABLE_STREAM``: hold the whole answer and release it once it ended well.
    buffered: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallIds:
    """The randomness and the wall-clock second a call needs, drawn by the runtime."""

    #: A UUID4 text: the Kiro conversation's continuation id.
    continuation_id: str
    #: At least 24 random characters: ``msg_<hex>`` and ``chatcmpl-<hex>``.
    response_hex: str
    #: Unix seconds (OpenAI's ``created``).
    created: int
    #: A fresh UUID4 text per call (invocation ids, the lease owner).
    new_id: Callable[[], str] = field(repr=False)
    #: A random float in [0, 1) per call (back-off jitter).
    random: Callable[[], float] = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Decision):
    """Final: write this complete response (an error before any byte, or a non-streamed body)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ClientOutput(Decision):
    """The next client bytes of a streamed answer (from ``take_output``; as a decision: the last
    bytes of a stream that ended between two upstream calls).

    ``head`` is set once, on the output that commits the response (status and headers, written
    together with ``data``); ``end`` on the last one.
    """

    head: tuple[int, tuple[tuple[str, str], ...]] | None
    data: bytes
    end: bool


class ModelCall:
    """One ``/v1/messages``, ``/v1/chat/completions`` or ``/v1/responses`` request (see the
    module docstring).

    Args:
        dialect: the client's API family (parser, encoder and error shape).
        body: the request body as received.
        session_id: the ``x-claude-code-session-id`` header, if any.
        setup: the service-wide settings.
        ids: ids and randomness for this call.

    Raises:
        LocalProtocolError: the body is not a valid request (rendered in ``dialect``'s shape).
    """

    def __init__(self, *, dialect: Dialect, body: bytes, session_id: str | None, setup: CallSetup, ids: CallIds) -> None:
        self.dialect = dialect
        self._setup = setup
        self._ids = ids
        #: A ``/v1/responses`` request as parsed (its echo fields, its namespaced tools).
        self.responses: ResponsesRequest | None = None
        if dialect is Dialect.RESPONSES:
            self.responses = parse_responses_request(body)
            self.api: Request = self.responses.request
        else:
            self.api = parse_openai_request(body) if dialect is Dialect.OPENAI else parse_anthropic_request(body)
        self.kiro: KiroRequest = convert_request(
            self.api, config=setup.conversion, continuation_id=ids.continuation_id, session_id_header=session_id
        )
        self._session_id = session_id
        #: A web search (served through Kiro's MCP endpoint, not the model), or None.
        self.web_search: WebSearch | None = web_search_of(self.api)
        self._exchange = self._new_exchange(self.kiro)
        #: After a cut tool call: the exchange that asks again, and what to do before it.
        self._next_exchange: Exchange | None = None
        self._between: list[Decision] = []
        #: Tool calls Kiro cut off that were asked again (for the log).
        self.recoveries = 0
        self._translator: _Reader | None = None
        #: Client bytes not yet handed out, the time the current stream started.
        self._pending = bytearray()
        self._started_at = 0.0
        #: The head may go out (the commit point is reached); the end must go out.
        self._commit_due = False
        self._end_due = False
        #: The response head went out. The commit point itself is ``_commit_due``: from then on
        #: the bytes are the client's (a failure is an error event in the stream, not a retry).
        self.committed = False
        #: The stream's outcome, fed to the exchange at the next decision (with the wall clock).
        self._settle: Callable[[float], None] | None = None
        self._answer: Answer | None = None
        self._final = False
        self._shutting_down = False
        #: For the access log: the error class of a failed call, and the usage of its answer.
        self.error: str | None = None
        self.usage = Usage(input_tokens=0, output_tokens=0)
        #: Kiro credits metered for the answers of this call (usage accounting).
        self.credits = 0.0

    # -- state -------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model the client asked for."""
        return self.api.model

    @property
    def account(self) -> AccountConfig | None:
        """The account serving (or last tried for) this call."""
        return self._exchange.account

    @property
    def streaming(self) -> bool:
        """Whether the client asked for a stream (the answer is SSE, not one JSON body)."""
        return self.kiro.response_plan.stream

    @property
    def output_due(self) -> bool:
        """Whether ``take_output`` has something to hand out now."""
        return self._commit_due and (not self.committed or bool(self._pending) or self._end_due)

    @property
    def reading(self) -> bool:
        """Whether the upstream body should still be read (False once the answer ended)."""
        return self._translator is not None and self._settle is None and not self._final

    # -- the decision loop -------------------------------------------------------------------

    def next_decision(self, now: float) -> Decision:
        """The next thing to do: a pool decision, ``SendUpstream``, ``StartStream`` (read the
        upstream body into ``receive_data``), ``Answer``, or ``Done``."""
        if self._settle is not None:
            settle, self._settle = self._settle, None
            if self._next_exchange is None:
                self._translator = None
            settle(now)
        if self._answer is not None:
            answer, self._answer = self._answer, None
            return answer
        if self._final:
            return Done()
        if self._between and self._next_exchange is None:
            return self._between.pop(0)
        decision = self._exchange.next_decision(now)
        if isinstance(decision, Done) and self._next_exchange is not None:
            # The cut answer's exchange is closed: the one that asks again takes over.
            self._exchange, self._next_exchange = self._next_exchange, None
            return self.next_decision(now)
        if isinstance(decision, StartStream) and self._commit_due:
            self._exchange.client_bytes_sent()  # a continuation: the client has the answer's start
        elif isinstance(decision, Respond):
            self._final = True
            self.error = decision.error.kind.value
            translator = self._translator
            if self._commit_due and translator is not None:
                # The answer being continued had reached the client: it ends with the error.
                translator.fail(decision.error.kind, decision.error.message)
                self._pending += translator.data_to_send()
                self._end_due = True
                return self.take_output() or Done()
            return self._error_answer(decision.error)
        return decision

    # -- pool feeds (wall-clock ``now``) ---------------------------------------------------------

    def state_loaded(
        self, states: Mapping[str, AccountState], now: float, in_flight: Mapping[str, int] | None = None
    ) -> None:
        self._exchange.state_loaded(states, now, in_flight)

    def lease_result(self, acquired: bool, now: float) -> None:
        self._exchange.lease_result(acquired, now)

    def waited(self, now: float) -> None:
        self._exchange.waited(now)

    def refresh_answered(self, response: HttpResponse, now: float) -> None:
        self._exchange.refresh_answered(response, now)

    def refresh_failed(self, message: str, now: float) -> None:
        self._exchange.refresh_failed(message, now)

    def upstream_answered(self, status: int, body: bytes, now: float, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Upstream answered ``status`` (not 200) with this error body."""
        self._exchange.upstream_answered(status, body, now, headers)

    def upstream_failed(self, message: str, now: float) -> None:
        """No HTTP answer (connect error, reset, timeout). ``message`` holds no secret."""
        self._exchange.upstream_failed(message, now)

    def upstream_started(self, now: float, mono: float) -> None:
        """Upstream answered 200; its body goes to ``receive_data`` after ``StartStream``."""
        self._exchange.upstream_started(now)
        if self._translator is not None:  # the continuation of an answer cut in a tool call
            self._translator.continue_answer()
            self._take_bytes(mono)
            return
        if self.web_search is not None:
            self._start_search(self.web_search, mono)
            return
        plan = self.kiro.response_plan
        encoder = None
        if self.dialect is Dialect.OPENAI:
            encoder = openai_encoder(
                plan,
                completion_id=f"chatcmpl-{self._ids.response_hex}",
                created=self._ids.created,
                include_usage=self.api.include_usage,
            )
        elif self.responses is not None:
            encoder = encoder_for_responses(self.responses, plan, response_hex=self._ids.response_hex, created=self._ids.created)
        self._translator = ResponseTranslator(
            plan,
            message_id=f"msg_{self._ids.response_hex}",
            now=mono,
            encoder=encoder,
            ping_interval=self._setup.ping_interval,
            keep_events=False,
            resumable_cuts=_RECOVERIES,
        )
        self._pending.clear()
        self._started_at = mono
        self._commit_due = self._end_due = False
        self._take_bytes(mono)

    # -- response feeds (monotonic ``now``) ----------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Upstream body bytes; ``b""`` once it ended cleanly."""
        self._streaming().receive_data(data, now)
        self._take_bytes(now)

    def connection_lost(self, detail: str, now: float) -> None:
        """The upstream connection broke or timed out before the body ended (no secret in it)."""
        self._streaming().connection_lost(detail, now)
        self._take_bytes(now)

    def tick(self, now: float) -> None:
        """Advance the clock: keep-alive pings, and the commit timer."""
        if self.reading:
            self._streaming().tick(now)
            self._take_bytes(now)

    def shutdown(self, now: float) -> None:
        """The server's shutdown deadline passed while streaming: end the answer now.

        Past the commit point: the client gets an error event and the end. Before it: a 529.
        Either way it is no fault of the account: the pool records the usage, not a failure.
        """
        if not self.reading:
            return
        translator = self._streaming()
        self._shutting_down = True
        translator.fail(ErrorKind.OVERLOADED, SHUTDOWN_MESSAGE, now)
        if self._commit_due:
            self._take_bytes(now)
            return
        self._pending.clear()
        self._final = True
        self._answer = self._error_answer(LocalProtocolError(SHUTDOWN_MESSAGE, kind=ErrorKind.OVERLOADED))
        self._settle = self._close(translator, None)
        self.error = _SHUTDOWN

    def client_gone(self, *, shutting_down: bool = False) -> None:
        """The client left mid-stream: what was used is recorded by the next decisions, and the
        call's ``error`` says it left (unless the answer had already failed or been ended).

        ``shutting_down``: the server is stopping, so the stream was most likely cut by the
        server (an ASGI server's own shutdown timeout cancels it like a departure): ``shutdown``.
        """
        if self.error is None:
            self.error = _SHUTDOWN if shutting_down else _CLIENT_LEFT
        if self.reading:
            translator = self._streaming()
            self._settle = self._close(translator, None)

    # -- output ------------------------------------------------------------------------------

    def take_output(self) -> ClientOutput | None:
        """Streamed client bytes due now (the first output carries the response head), or None."""
        if not self.output_due:
            return None
        head = None
        if not self.committed:
            self.committed = True
            self._exchange.client_bytes_sent()
            head = (200, SSE_HEADERS)
        data = bytes(self._pending)
        self._pending.clear()
        end, self._end_due = self._end_due, False
        return ClientOutput(head=head, data=data, end=end)

    # -- internals ---------------------------------------------------------------------------

    def _streaming(self) -> _Reader:
        if not self.reading:
            raise LocalProtocolError("ModelCall: upstream data outside a running stream")
        assert self._translator is not None
        return self._translator

    def _take_bytes(self, now: float) -> None:
        """Move the translator's output to the pending bytes, decide the commit, see the end."""
        translator = self._translator
        assert translator is not None
        if translator.streaming:
            self._pending += translator.data_to_send()
            if not self._commit_due and not self._setup.buffered and (
                translator.content_started
                or (translator.finished and not translator.failed)
                or now - self._started_at >= translator.ping_interval
            ):
                self._commit_due = True
        if self._settle is None and not self._final:
            if translator.finished:
                self._ended(translator)
            elif translator.awaiting_continuation is not None:
                self._ask_again(translator, translator.awaiting_continuation)

    def _ended(self, translator: _Reader) -> None:
        if self._shutting_down:
            self._commit_due = self._end_due = True
            self._settle = self._close(translator, None)
            self.error = _SHUTDOWN
            return
        failure = translator.upstream_failure
        if translator.failed and failure is None and translator.failure is not None:
            failure = stream_interrupted(translator.failure.message)
        if translator.failed and not self._commit_due:
            # Nothing is due to the client: the exchange may move to another account, or answer
            # with the error's own status.
            assert failure is not None
            self.error = failure.failure_class.value
            self._pending.clear()
            self._commit_due = False
            settled_failure = failure
            self._settle = lambda now: self._exchange.stream_failed(settled_failure, now)
            return
        if translator.streaming:
            self._commit_due = self._end_due = True
        else:
            final = translator.final_response()
            assert final is not None
            self.committed = True
            self._exchange.client_bytes_sent()
            self._answer = Answer(reply=final)
        self._settle = self._close(translator, failure)

    def _ask_again(self, translator: _Reader, why: str) -> None:
        """Kiro cut a tool call (the client saw none of it): the answer continues with what Kiro
        says when asked again with an instruction to make smaller calls."""
        account = self._exchange.account
        assert account is not None
        self.recoveries += 1
        self._settle = self._close(translator, None)
        recovery = convert_request(
            with_recovery_instruction(self.api, shown=translator.released_text),
            config=self._setup.conversion,
            continuation_id=self._ids.continuation_id,
            session_id_header=self._session_id,
        )
        self._next_exchange = self._new_exchange(recovery)
        self._between = [
            Persist(account_id=account.account_id, counters=(("tool_call_recoveries", 1.0),)),
            Retry(account=account, reason=f"{why.split(':', 1)[0]}; asking Kiro again for smaller calls"),
        ]

    def _new_exchange(self, kiro: KiroRequest) -> Exchange:
        setup, ids = self._setup, self._ids
        if self.web_search is not None:
            request_id = web_search_request_id(ids.new_id().replace("-", ""), ids.created * 1000)
            call = web_search_call_body(self.web_search.query, request_id)
            return Exchange(
                accounts=setup.accounts,
                settings=setup.pool,
                body=lambda profile_arn: call,
                new_id=ids.new_id,
                random=ids.random,
                operation=KiroOperation.WEB_SEARCH,
            )
        return Exchange(
            accounts=setup.accounts,
            settings=setup.pool,
            body=kiro.body,
            new_id=ids.new_id,
            random=ids.random,
            model_id=kiro.model_id,
        )

    def _start_search(self, search: WebSearch, mono: float) -> None:
        """The ``/mcp`` answer is read by a ``WebSearchAnswer`` (call/_web_search.py)."""
        plan = self.kiro.response_plan
        encoder: ResponseEncoder
        if self.dialect is Dialect.OPENAI:
            encoder = openai_encoder(plan, completion_id=f"chatcmpl-{self._ids.response_hex}", created=self._ids.created)
        elif self.responses is not None:
            encoder = encoder_for_responses(self.responses, plan, response_hex=self._ids.response_hex, created=self._ids.created)
        else:
            encoder = AnthropicStreamEncoder() if plan.stream else AnthropicMessageEncoder()
        self._translator = WebSearchAnswer(
            plan,
            query=search.query,
            tool_use_id="srvtoolu_" + self._ids.new_id().replace("-", ""),
            message_id=f"msg_{self._ids.response_hex}",
            encoder=encoder,
            server_blocks=self.dialect is not Dialect.OPENAI,
            keeps=search.keeps,
            now=mono,
            ping_interval=self._setup.ping_interval,
        )
        self._pending.clear()
        self._started_at = mono
        self._commit_due = self._end_due = False
        self._take_bytes(mono)

    def _close(self, translator: _Reader, failure: UpstreamFailure | None) -> Callable[[float], None]:
        """How the exchange learns the outcome of an answer that reached (or left) the client."""
        usage = self.usage = translator.usage
        credits = translator.credits or 0.0
        self.credits += credits
        if failure is None:
            return lambda now: self._exchange.finished(
                now, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, credits=credits
            )
        self.error = failure.failure_class.value
        if failure.failure_class is FailureClass.TOOL_CALL_CUT:
            # The client has the error event; the account did nothing wrong (tool_calls_cut).
            return lambda now: self._exchange.finished(
                now, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, credits=credits
            )
        return lambda now: self._exchange.stream_failed(failure, now)

    def _error_answer(self, error: ProtocolError) -> Answer:
        return Answer(reply=error_answer(error, self.dialect))
