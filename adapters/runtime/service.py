"""``KiroService``: the endpoints backed by Kiro accounts, and the service's start and stop.

``/v1/messages`` and ``/v1/chat/completions`` each build one ``ModelCall`` (the core: parse,
convert, account pool, translation, commit point) and hand it to ``call_runner.run_call``, which
does the IO it asks for. ``count_tokens`` and ``/health`` are answered here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from kiro_protocol import (
    __version__,
    AccountConfig,
    CallIds,
    CallSetup,
    ConversionConfig,
    count_input_tokens,
    Dialect,
    Endpoints,
    HealthFacts,
    health_reply,
    ModelCall,
    model_refusal,
    parse_accounts,
    parse_anthropic_request,
    parse_strategy,
    PoolSettings,
)

from .ids import random_hex, random_uuid
from .account_registry import AccountRegistry
from .admin_face import AdminFace, open_admin
from .app import Request, RequestContext, Responder, send_reply
from .basic_service import BasicService, model_entries
from .call_runner import run_call
from .client_keys import KeyRing
from .images import image_transform
from .json_codec import install_json_codec
from .pool_driver import PoolDriver
from .settings import Settings
from .state_cipher import open_sealed_store
from .stores import StateStore, StoreUnavailable, open_store
from .telemetry import Telemetry
from .upstream import UpstreamClient
from .usage_log import UsageLog

__all__ = ["KiroService", "Prepared", "prepare", "open_service"]

log = logging.getLogger("kiro2api.service")

_JSON = (("content-type", "application/json"),)
# Bodies larger than this are parsed and converted in a worker thread.
_OFF_LOOP_BODY = 256 * 1024
# Seconds a client key's concurrency slot outlives the longest stream (see KeyRing).
_SLOT_MARGIN = 60.0
# Connections per account beyond KIRO_MAX_CONNECTIONS_PER_ACCOUNT, for the background calls.
_SMALL_CALL_HEADROOM = 4


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
        new_hex: Callable[[], str] = random_hex,
        health_details: Callable[[], dict[str, object]] | None = None,
        telemetry: Telemetry | None = None,
        registry: AccountRegistry | None = None,
        admin: AdminFace | None = None,
    ) -> None:
        super().__init__(
            models=model_entries(settings.model_map), health_details=health_details or (lambda: {}), admin=admin
        )
        #: The live account list (accounts added or switched at run time); None: the driver's, fixed.
        self._registry = registry
        self._accounts_version = registry.version if registry is not None else 0
        self._settings = settings
        #: METRICS_ENABLED: whether ``App`` serves ``/metrics`` (with the admin token).
        self.metrics_enabled = settings.metrics_enabled
        #: Usage records and metrics of this service's requests (``App`` reports to it).
        self.telemetry = telemetry or Telemetry(driver=driver)
        self._driver = driver
        # Process-wide, like the settings it comes from; every codec gives the same results.
        install_json_codec(settings.json_codec)
        self._setup = CallSetup(
            accounts=driver.accounts,
            pool=driver.settings,
            conversion=ConversionConfig(
                max_tool_description_length=settings.max_tool_description_length,
                model_overrides=dict(settings.model_map),
                image_transform=image_transform(),
            ),
            ping_interval=settings.ping_interval,
            buffered=settings.disable_stream,
        )
        self._monotonic = monotonic
        self._new_hex = new_hex
        #: The named client keys of the driver's store (``App`` authenticates with them). A
        #: concurrency slot outlives the longest request a little, then lapses by itself.
        self.client_keys = KeyRing(driver.store, hold=settings.stream_request_timeout + _SLOT_MARGIN)

    def _admin_changed(self) -> None:
        self._follow_registry()

    def _follow_registry(self) -> None:
        """Serve the registry's accounts from the next request on, if they changed."""
        registry = self._registry
        if registry is None or registry.version == self._accounts_version:
            return
        self._accounts_version = registry.version
        self._driver.accounts = registry.accounts
        self._setup = dataclasses.replace(self._setup, accounts=registry.accounts)

    async def follow_accounts(self, interval: float = 1.0) -> None:
        """Forever: read the store's admin records every ``interval`` seconds, so accounts added,
        disabled or removed through any replica (or the CLI) are served without a restart."""
        registry = self._registry
        if registry is None:
            return
        store_down = False
        while True:
            await anyio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(registry.reload)
            except StoreUnavailable as exc:
                # Said once per outage (the persist writer says when it is back); the accounts
                # read last stay in force meanwhile.
                if not store_down:
                    log.warning("cannot read the accounts of the state store: %s", exc)
                store_down = True
                continue
            except Exception:
                log.exception("could not read the accounts of the state store")
            store_down = False
            self._follow_registry()

    async def health(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        store_unavailable = False
        try:
            counts: dict[str, object] = dict(await self._driver.account_counts())
        except Exception as exc:
            # The state store (Redis, SQLite) is unreachable: say so instead of failing.
            log.warning("health: cannot read the state store: %s", type(exc).__name__)
            counts = {"configured": len(self._driver.accounts), "error": "state store unavailable"}
            store_unavailable = True
        facts = HealthFacts(
            version=__version__,
            shutting_down=ctx.lifecycle.shutting_down.is_set(),
            accounts=counts,
            store_unavailable=store_unavailable,
            admin_enabled=self.admin_token is not None,
            details=self._health_details(),
        )
        await send_reply(respond, health_reply(request.target, facts))

    async def count_tokens(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        parsed = parse_anthropic_request(request.body, count_tokens=True)
        ctx.log.model = parsed.model
        refusal = model_refusal(ctx.key, parsed.model)
        if refusal is not None:
            raise refusal
        tokens = count_input_tokens(parsed)
        ctx.log.input_tokens = tokens
        await respond.send_response(200, _JSON, json.dumps({"input_tokens": tokens}).encode())

    async def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._call(request, respond, ctx, Dialect.ANTHROPIC)

    async def chat_completions(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._call(request, respond, ctx, Dialect.OPENAI)

    async def responses(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        await self._call(request, respond, ctx, Dialect.RESPONSES)

    async def _call(self, request: Request, respond: Responder, ctx: RequestContext, dialect: Dialect) -> None:
        driver = self._driver
        ids = CallIds(
            continuation_id=random_uuid(),
            response_hex=self._new_hex(),
            created=int(time.time()),
            new_id=driver.new_id,
            random=driver.random,
        )

        def build() -> ModelCall:
            return ModelCall(
                dialect=dialect,
                body=request.body,
                session_id=request.header("x-claude-code-session-id"),
                setup=self._setup,
                ids=ids,
            )

        # Parsing and converting costs about 1 ms per 100 KB, and a body that large may carry
        # images to convert (a 12-megapixel photo: a few hundred ms): off the event loop then,
        # so other streams keep moving. Small bodies are cheaper than the thread hop.
        call = await anyio.to_thread.run_sync(build) if len(request.body) > _OFF_LOOP_BODY else build()
        ctx.log.model = call.model
        refusal = model_refusal(ctx.key, call.model)
        if refusal is not None:
            raise refusal
        ctx.log.model_id, ctx.log.stream = call.kiro.model_id, call.streaming
        for repair in call.kiro.repairs:
            log.debug("request repaired: %s", repair)
        settings = self._settings
        await run_call(
            call,
            driver=driver,
            respond=respond,
            lifecycle=ctx.lifecycle,
            record=ctx.log,
            timeout=settings.stream_request_timeout if call.streaming else settings.request_timeout,
            monotonic=self._monotonic,
        )


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
        StoreConfigurationError: KIRO_STATE is not a usable store URL, or KIRO_STATE_KEY does not
            open its secrets (``StateKeyError``).
    """
    accounts = parse_accounts(settings.auth_token_json) if settings.auth_token_json is not None else ()
    pool = PoolSettings(
        strategy=parse_strategy(settings.token_selection_strategy),
        max_account_wait=settings.wait_for_account,
        max_connections_per_account=settings.max_connections_per_account,
        endpoints=Endpoints(
            api_base=settings.upstream_url,
            social_refresh=settings.social_refresh_url,
            idc_refresh=settings.idc_refresh_url,
        ),
    )
    # The admin API keeps accounts in the store: with it on, the store is the operator's even
    # before any account exists.
    store = (
        open_sealed_store(settings.state_url, settings.state_keys)
        if accounts or settings.admin_token
        else open_store("memory://")
    )
    return Prepared(accounts=accounts, store=store, pool=pool)


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings, prepared: Prepared, *, health_details: Callable[[], dict[str, object]] | None = None
) -> AsyncIterator[BasicService]:
    """The service for ``settings``, with its upstream client and background account checks.

    Without accounts it is a ``BasicService`` whose model endpoints say how to configure one.
    """
    if not prepared.accounts and not settings.admin_token:
        try:
            yield BasicService(
                models=model_entries(settings.model_map),
                unavailable=(503, "No Kiro account is configured: set KIRO_AUTH_TOKEN (see docs/accounts.md)."),
                accounts={"configured": 0},
            )
        finally:
            prepared.store.close()
        return
    upstream = UpstreamClient(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        proxy=settings.https_proxy,
        no_proxy=settings.no_proxy,
        # The core caps generate calls; the headroom is for refresh, usage and model calls, so a
        # full account still refreshes its token.
        max_connections_per_account=settings.max_connections_per_account + _SMALL_CALL_HEADROOM,
    )
    registry = AccountRegistry(prepared.accounts, prepared.store, time.time)
    await anyio.to_thread.run_sync(registry.reload)
    driver = PoolDriver(accounts=registry.accounts, settings=prepared.pool, store=prepared.store, upstream=upstream)
    usage = UsageLog(prepared.store, retention_days=settings.usage_retention_days) if settings.usage_retention_days else None
    telemetry = Telemetry(usage=usage, driver=driver)
    checks, writing, following = anyio.CancelScope(), anyio.CancelScope(), anyio.CancelScope()
    reaping = anyio.CancelScope()

    async def reap_connections() -> None:
        with reaping:
            await upstream.run_reaper()

    async def run_checks() -> None:
        with checks:
            await driver.run_background_checks()

    async def write_usage() -> None:
        with writing:
            await telemetry.run_usage_writer()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_checks)
            tg.start_soon(reap_connections)
            tg.start_soon(write_usage)
            tg.start_soon(driver.run_persist_writer)
            try:
                service = KiroService(
                    settings=settings,
                    driver=driver,
                    health_details=health_details or (lambda: {"upstream": "kiro"}),
                    telemetry=telemetry,
                    registry=registry,
                    admin=open_admin(settings, registry, prepared.store),
                )

                async def follow_accounts() -> None:
                    with following:
                        await service.follow_accounts()

                tg.start_soon(follow_accounts)
                yield service
            finally:
                checks.cancel()
                reaping.cancel()
                following.cancel()
                writing.cancel()
                driver.stop_persist_writer()  # the task group then waits for the queued writes
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()
        telemetry.flush_usage()  # what the writer had not taken yet
        prepared.store.close()
