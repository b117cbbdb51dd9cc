"""``KiroService``: the model endpoints, driving the core from one request to its last byte.

For ``/v1/messages`` and ``/v1/chat/completions``: parse the body (the core), convert it (the
core), run the pool's ``Exchange`` (the core decides, ``PoolDriver`` and the upstream client do
the IO), then pump Kiro's stream through a ``ResponseTranslator`` to the client.

Client bytes are held back until the answer has content (or ``PING_INTERVAL_SECONDS`` passed),
so an upstream failure before that still moves to another account, and an error before any
content is answered with its real HTTP status (spec §2.4 "open the SSE stream only after
upstream 200"). A client disconnect cancels the handler task; leaving ``upstream.stream()``
then closes the upstream connection at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from kiro_protocol import (
    __version__,
    AccountConfig,
    ChatRequest as ApiRequest,
    ConversionConfig,
    convert_request,
    count_input_tokens,
    Done,
    Endpoints,
    ErrorKind,
    Exchange,
    KiroRequest,
    list_models,
    LocalProtocolError,
    openai_encoder,
    parse_accounts,
    parse_anthropic_request,
    parse_openai_request,
    parse_strategy,
    PoolSettings,
    Respond,
    ResponseEncoder,
    ResponsePlan,
    ResponseTranslator,
    SendUpstream,
    SSE_HEADERS,
    StartStream,
    stream_interrupted,
)

from .app import Request, RequestContext, Responder
from .basic_service import BasicService, ModelEntry
from .pool_driver import PoolDriver
from .settings import Settings
from .stores import StateStore, open_store
from .upstream import UpstreamClient, UpstreamConnectionError, UpstreamStream

__all__ = ["KiroService", "Prepared", "prepare", "open_service", "conversion_config"]

log = logging.getLogger("kiro2api.service")

_JSON = (("content-type", "application/json"),)
# Error bodies from upstream are small; more is not read.
_MAX_ERROR_BODY = 64 * 1024
# How often the keep-alive clock of a streaming translator is advanced.
_TICK = 1.0
# Whether the handler's task reads the upstream body itself. The synchronous twin (gevent, threads)
# reads in a task of its own: there only a task can be interrupted in a blocking read.
_PULL_IN_PLACE = True
# Anthropic's list has release dates; these are the dates shown for every model we serve.
_MODEL_CREATED_AT = "2025-05-22T00:00:00Z"


def conversion_config(settings: Settings) -> ConversionConfig:
    """The conversion settings derived from the operator settings."""
    return ConversionConfig(
        max_tool_description_length=settings.max_tool_description_length,
        model_overrides=dict(settings.model_map),
    )


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How one API family is parsed and answered."""

    parse: Callable[[bytes], ApiRequest]
    encoder: Callable[[ResponsePlan, ApiRequest], ResponseEncoder | None]


class KiroService(BasicService):
    """The endpoints backed by Kiro accounts.

    Args:
        settings: the operator settings.
        driver: the pool driver (accounts, store, upstream client).
        monotonic: the clock of the response side (keep-alive pings, timings).
        new_hex: random hex for message and completion ids.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        driver: PoolDriver,
        monotonic: Callable[[], float] = time.monotonic,
        new_hex: Callable[[], str] = lambda: uuid.uuid4().hex,
        health_details: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        models = [
            ModelEntry(id=m.name, display_name=m.display_name or m.name, created_at=_MODEL_CREATED_AT)
            for m in list_models(settings.model_map)
        ]
        super().__init__(models=models, health_details=health_details or (lambda: {}))
        self._settings = settings
        self._driver = driver
        self._conversion = conversion_config(settings)
        self._monotonic = monotonic
        self._new_hex = new_hex

    # -- endpoints -------------------------------------------------------------------------------

    async def health(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        shutting_down = ctx.lifecycle.shutting_down.is_set()
        try:
            counts: dict[str, object] = dict(await self._driver.account_counts())
            status = "ok" if counts["usable"] else "degraded"
        except Exception as exc:
            # The state store (Redis, SQLite) is unreachable: say so instead of failing.
            log.warning("health: cannot read the state store: %s", type(exc).__name__)
            counts, status = {"configured": len(self._driver.accounts), "error": "state store unavailable"}, "degraded"
        body: dict[str, object] = {
            "status": "shutting_down" if shutting_down else status,
            "version": __version__,
            "accounts": counts,
        }
        body.update(self._health_details())
        code = 503 if shutting_down or "error" in counts else 200
        await respond.send_response(code, _JSON, json.dumps(body, separators=(",", ":")).encode())

    async def count_tokens(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        parsed = parse_anthropic_request(request.body, count_tokens=True)
        ctx.log.model = parsed.model
        tokens = count_input_tokens(parsed)
        ctx.log.input_tokens = tokens
        await respond.send_response(200, _JSON, json.dumps({"input_tokens": tokens}).encode())

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        dialect = _Dialect(parse=parse_anthropic_request, encoder=lambda plan, api: None)
        await self._serve(request, respond, ctx, dialect)

    async def chat_completions(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        created = int(time.time())

        def encoder(plan: ResponsePlan, api: ApiRequest) -> ResponseEncoder:
            return openai_encoder(
                plan, completion_id=f"chatcmpl-{self._new_hex()}", created=created, include_usage=api.include_usage
            )

        await self._serve(request, respond, ctx, _Dialect(parse=parse_openai_request, encoder=encoder))

    # -- the exchange -----------------------------------------------------------------------------

    async def _serve(self, request: Request, respond: Responder, ctx: RequestContext, dialect: _Dialect) -> None:
        api = dialect.parse(request.body)
        ctx.log.model = api.model
        kiro = convert_request(
            api,
            config=self._conversion,
            continuation_id=str(uuid.uuid4()),
            session_id_header=request.header("x-claude-code-session-id"),
        )
        for repair in kiro.repairs:
            log.debug("request repaired: %s", repair)
        driver = self._driver
        exchange = Exchange(
            accounts=driver.accounts, settings=driver.settings, body=kiro.body, new_id=driver.new_id, random=driver.random
        )
        opened: tuple[contextlib.AsyncExitStack, UpstreamStream] | None = None
        try:
            while True:
                decision = exchange.next_decision(driver.clock())
                if isinstance(decision, SendUpstream):
                    ctx.log.account = decision.account.label
                    opened = await self._send(exchange, decision, kiro)
                elif isinstance(decision, StartStream):
                    assert opened is not None
                    stack, upstream = opened
                    opened = None
                    async with stack:
                        await self._translate(exchange, kiro, api, upstream, respond, ctx, dialect)
                elif isinstance(decision, Respond):
                    raise decision.error
                elif isinstance(decision, Done):
                    return
                elif not await driver.execute(decision, exchange):
                    raise RuntimeError(f"unexpected decision {type(decision).__name__}")
        finally:
            if opened is not None:
                with anyio.CancelScope(shield=True):
                    await opened[0].aclose()

    async def _send(
        self, exchange: Exchange, decision: SendUpstream, kiro: KiroRequest
    ) -> tuple[contextlib.AsyncExitStack, UpstreamStream] | None:
        settings = self._settings
        timeout = settings.stream_request_timeout if kiro.response_plan.stream else settings.request_timeout
        stack = contextlib.AsyncExitStack()
        clock = self._driver.clock
        try:
            upstream = await stack.enter_async_context(
                self._driver.upstream.stream(decision.request, account=decision.account.account_id, timeout=timeout)
            )
        except UpstreamConnectionError as exc:
            await stack.aclose()
            log.warning("account %s: no answer from Kiro: %s", decision.account.label, exc.failure.message)
            exchange.upstream_failed(exc.failure.message, clock())
            return None
        if upstream.status == 200:
            exchange.upstream_started(clock())
            return stack, upstream
        body = bytearray()
        try:
            with upstream.deadline():
                async for chunk in upstream.chunks:
                    body += chunk
                    if len(body) >= _MAX_ERROR_BODY:
                        break
        except UpstreamConnectionError:
            pass
        finally:
            await stack.aclose()
        log.warning("account %s: Kiro answered HTTP %d", decision.account.label, upstream.status)
        exchange.upstream_answered(upstream.status, bytes(body[:_MAX_ERROR_BODY]), clock(), upstream.headers)
        return None

    async def _translate(
        self,
        exchange: Exchange,
        kiro: KiroRequest,
        api: ApiRequest,
        upstream: UpstreamStream,
        respond: Responder,
        ctx: RequestContext,
        dialect: _Dialect,
    ) -> None:
        translator = ResponseTranslator(
            kiro.response_plan,
            message_id=f"msg_{self._new_hex()}",
            now=self._monotonic(),
            encoder=dialect.encoder(kiro.response_plan, api),
            ping_interval=self._settings.ping_interval,
            keep_events=False,
        )
        out = _Output(translator, exchange, respond, self._monotonic, buffered=self._settings.disable_stream)
        # The translator is only ever touched under this mutex and never across an await, so the
        # tasks below need no async lock. Under asyncio or gevent it is never contended; the
        # threaded twin needs it.
        mutex = out.mutex

        async def pull() -> None:
            # Upstream chunks are translated as they arrive and written by this task (no
            # hand-over to another task per frame): just before the upstream connection waits
            # for more (its wait hook), so frames that arrived together leave in one write; or
            # after every chunk where there is no hook.
            hook = upstream.wait_hook
            if hook is not None:
                hook.callback = out.pump
            try:
                with upstream.deadline():
                    async for chunk in upstream.chunks:
                        with mutex:
                            translator.receive_data(chunk, self._monotonic())
                            out.feed()
                        if hook is None:
                            await out.pump()
                        if translator.finished:
                            break
                    else:
                        with mutex:
                            translator.receive_data(b"", self._monotonic())
            except UpstreamConnectionError as exc:
                with mutex:
                    translator.connection_lost(exc.failure.message, self._monotonic())
            out.close()

        async def tick() -> None:
            while True:
                await anyio.sleep(_TICK)
                with mutex:
                    translator.tick(self._monotonic())
                    out.feed()
                await out.pump()

        pulling = anyio.CancelScope()

        def terminate() -> None:
            # Called by Lifecycle.terminate() from the server's shutdown: end with an error event.
            with mutex:
                translator.fail(ErrorKind.OVERLOADED, "The server is shutting down; retry the request.", self._monotonic())
            out.close()
            pulling.cancel()

        unwatch = ctx.lifecycle.on_terminate(terminate)
        try:
            async with anyio.create_task_group() as tg:
                if translator.streaming:
                    tg.start_soon(tick)
                if _PULL_IN_PLACE:
                    # This task reads on at once: a task of its own would start a turn of the
                    # event loop later, behind everything else that is ready (time to first byte).
                    with pulling:
                        await pull()
                    out.close()  # cancelled by terminate() before pull() closed it
                else:
                    tg.start_soon(pull)
                # Whole writes only: the other tasks stop once everything due has been sent.
                await out.wait_until_written()
                tg.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            # The client left (or the server gave up on us): still record what was used.
            with anyio.CancelScope(shield=True):
                await self._abandon(exchange, translator)
            raise
        finally:
            unwatch()

        if ctx.lifecycle.terminating.is_set() and not out.committed:
            raise LocalProtocolError("The server is shutting down; retry the request.", kind=ErrorKind.OVERLOADED)
        usage = translator.usage
        ctx.log.input_tokens, ctx.log.output_tokens = usage.input_tokens, usage.output_tokens
        clock = self._driver.clock
        failure = translator.upstream_failure
        if translator.failed and failure is None and translator.failure is not None:
            failure = stream_interrupted(translator.failure.message)
        if translator.failed and not out.committed:
            # Nothing reached the client: the exchange may move to another account, or answer
            # with the error's own status.
            assert failure is not None
            ctx.log.error = failure.failure_class.value
            exchange.stream_failed(failure, clock())
            return
        await out.finish()
        if failure is not None:
            ctx.log.error = failure.failure_class.value
            exchange.stream_failed(failure, clock())
        else:
            exchange.finished(
                clock(),
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                credits=translator.credits or 0.0,
            )

    async def _abandon(self, exchange: Exchange, translator: ResponseTranslator) -> None:
        """Close the exchange of a cancelled response: usage counters, then its last Persists."""
        clock = self._driver.clock
        usage = translator.usage
        with contextlib.suppress(LocalProtocolError):
            exchange.finished(
                clock(),
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                credits=translator.credits or 0.0,
            )
            while not isinstance(decision := exchange.next_decision(clock()), (Done, Respond)):
                await self._driver.execute(decision, exchange)


class _Output:
    """Client-side output of one translator: held back until committed, then streamed.

    Producers call ``feed()`` (under ``mutex``) after each translator call, then ``pump()``, which
    writes what is due unless another producer's write is in flight (that writer then takes the
    new bytes too); ``close()`` when they are done. ``wait_until_written()`` returns once closed
    and everything due has been written; it writes itself what only a callback produced.
    """

    def __init__(
        self,
        translator: ResponseTranslator,
        exchange: Exchange,
        respond: Responder,
        monotonic: Callable[[], float],
        *,
        buffered: bool,
    ) -> None:
        self._translator = translator
        self._exchange = exchange
        self._respond = respond
        self._monotonic = monotonic
        self._buffered = buffered
        self._started = monotonic()
        self._pending = bytearray()
        self.mutex = threading.Lock()
        # Rung by close() and by the end of a write after close(): wait_until_written() looks again.
        self._bell = anyio.Event()
        self._closed = False
        # Decided by feed(): the response may start (its head goes out with the first bytes).
        self._commit_due = False
        self.committed = False
        # A write is in flight: the one writer at a time (across tasks, or threads in the twin).
        self._writing = False
        # Set when wait_until_written() returns: from then on only finish() writes.
        self._sealed = False

    def _ready(self) -> bool:
        t = self._translator
        if self._buffered:
            return False
        return t.content_started or (t.finished and not t.failed) or (
            self._monotonic() - self._started >= t.ping_interval
        )

    def feed(self) -> None:
        """Take the translator's new bytes (call under ``mutex``); ``pump()`` then sends them."""
        if not self._translator.streaming:
            return
        self._pending += self._translator.data_to_send()
        if not self._commit_due and self._ready():
            self._commit_due = True

    def _due(self) -> bool:
        """Under ``mutex``: whether bytes (or the response head) wait to be written."""
        return self._commit_due and (bool(self._pending) or not self.committed)

    async def pump(self) -> None:
        """Write what is due, unless a write is in flight already (it takes these bytes next)."""
        while True:
            with self.mutex:
                if self._writing or self._sealed or not self._due():
                    return
                self._writing = True
                start = not self.committed
                self.committed = True
                data, self._pending = bytes(self._pending), bytearray()
            try:
                await self._write(start, data)
            finally:
                with self.mutex:
                    self._writing = False
                    if self._closed:
                        self._bell.set()

    async def _write(self, start: bool, data: bytes) -> None:
        """Start the response with ``data``, or send ``data`` on the started one."""
        if start:
            self._exchange.client_bytes_sent()
            await self._respond.start_stream(200, SSE_HEADERS, data)
        elif data:
            await self._respond.send_chunk(data)

    def close(self) -> None:
        """Take the last bytes (call without ``mutex``); ``wait_until_written()`` then returns
        once they are written."""
        with self.mutex:
            self.feed()
            self._closed = True
            self._bell.set()

    async def wait_until_written(self) -> None:
        """Return once ``close()`` was called and nothing due is left unwritten."""
        while True:
            await self._bell.wait()
            with self.mutex:
                self._bell = anyio.Event()
            await self.pump()  # bytes a callback produced (terminate) have no producer to pump them
            with self.mutex:
                if self._closed and not self._writing and not self._due():
                    self._sealed = True
                    return

    async def finish(self) -> None:
        """Send what is left and end the response (both modes); the producers have stopped."""
        translator = self._translator
        if translator.streaming:
            with self.mutex:
                self._sealed = True
                self._pending += translator.data_to_send()
                start, self.committed = not self.committed, True
                data, self._pending = bytes(self._pending), bytearray()
            await self._write(start, data)
            await self._respond.end_stream()
            return
        final = translator.final_response()
        assert final is not None
        self.committed = True
        self._exchange.client_bytes_sent()
        await self._respond.send_response(final.status, final.headers, final.body)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """What start-up validated before serving: the accounts, the store, the pool settings."""

    accounts: tuple[AccountConfig, ...]
    store: StateStore
    pool: PoolSettings


def prepare(settings: Settings) -> Prepared:
    """Parse the accounts and open the state store; run before the event loop starts.

    Raises:
        ConfigurationError: KIRO_AUTH_TOKEN or TOKEN_SELECTION_STRATEGY is invalid (no secret in it).
        StoreConfigurationError: KIRO_STATE is not a usable store URL.
    """
    accounts = parse_accounts(settings.auth_token_json) if settings.auth_token_json is not None else ()
    pool = PoolSettings(
        strategy=parse_strategy(settings.token_selection_strategy),
        endpoints=Endpoints(
            api_base=settings.upstream_url,
            social_refresh=settings.social_refresh_url,
            idc_refresh=settings.idc_refresh_url,
        ),
    )
    store = open_store(settings.state_url) if accounts else open_store("memory://")
    return Prepared(accounts=accounts, store=store, pool=pool)


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings, prepared: Prepared, *, health_details: Callable[[], dict[str, object]] | None = None
) -> AsyncIterator[BasicService]:
    """The service for ``settings``, with its upstream client and background account checks.

    Without accounts it is a ``BasicService`` whose model endpoints say how to configure one.
    """
    if not prepared.accounts:
        try:
            yield BasicService(
                unavailable=(503, "No Kiro account is configured: set KIRO_AUTH_TOKEN (see docs/accounts.md)."),
                health_details=lambda: {"accounts": {"configured": 0}},
            )
        finally:
            prepared.store.close()
        return
    upstream = UpstreamClient(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        proxy=settings.https_proxy,
    )
    driver = PoolDriver(accounts=prepared.accounts, settings=prepared.pool, store=prepared.store, upstream=upstream)
    checks = anyio.CancelScope()

    async def run_checks() -> None:
        with checks:
            await driver.run_background_checks()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_checks)
            tg.start_soon(driver.run_persist_writer)
            try:
                yield KiroService(
                    settings=settings, driver=driver, health_details=health_details or (lambda: {"upstream": "kiro"})
                )
            finally:
                checks.cancel()
                driver.stop_persist_writer()  # the task group then waits for the queued writes
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()
        prepared.store.close()
