"""Bursts of 429 and models per tier, end to end (issue 14 items 3 and 7).

The official ``anthropic`` SDK -> the gateway (``serve_gateway``, what ``kiro2api serve`` runs)
-> the built-in simulator. ``POST /_sim/throttle`` makes every account answer 429 for a moment,
as Kiro does in a burst; a refresh token tagged ``sim-free`` is a free-tier account (no Opus).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import anthropic
import anyio
import pytest

from adapters.compose import serve_gateway
from adapters.runtime.settings import load_settings
from adapters.simulator import SimulatorConfig, SimulatorHandle, start_simulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

TOKEN = "client-token-for-account-wait-tests"
PAID = "aorAAAAAG-paid-account-for-wait-tests-{}"
FREE = "aorAAAAAG-sim-free-account-for-tier-tests-{}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, tokens: list[str], **extra: str
) -> AsyncIterator[tuple[SimulatorHandle, anthropic.AsyncAnthropic]]:
    async with anyio.create_task_group() as tg:
        sim = await start_simulator(tg, port=0, config=SimulatorConfig(pace_ms=0))
        accounts: list[dict[str, object]] = [
            {"auth": "Social", "refreshToken": t, "description": f"acct{i}"} for i, t in enumerate(tokens)
        ]
        environ = {
            "KIRO_CLIENT_TOKEN": TOKEN,
            "PORT": "0",
            "KIRO_STATE": "memory://",
            **sim.gateway_environment(accounts=accounts),
            **extra,
        }
        settings = load_settings(environ=environ, cwd=tmp_path)
        server = await tg.start(lambda task_status: serve_gateway(settings, signals=False, task_status=task_status))
        client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{server.port}", api_key=TOKEN, max_retries=0)
        try:
            yield sim, client
        finally:
            await client.close()
            server.shutdown()
            sim.stop()
            tg.cancel_scope.cancel()


def generate_records(sim: SimulatorHandle, outcome: str | None = None) -> list[dict[str, object]]:
    return [
        r for r in sim.state.records
        if r["endpoint"] == "generateAssistantResponse" and (outcome is None or r.get("outcome") == outcome)
    ]


async def ask(client: anthropic.AsyncAnthropic, text: str, model: str = "claude-sonnet-4-5") -> anthropic.types.Message:
    return await client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": text}])


async def test_a_burst_of_429_on_every_account_is_waited_out_and_20_requests_succeed(tmp_path: Path) -> None:
    async with gateway(tmp_path, [PAID.format(0), PAID.format(1)]) as (sim, client):
        sim.state.throttled_until = sim.state.now() + 1.0
        first: list[anthropic.types.Message] = []
        answers: list[anthropic.types.Message] = []
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, first, ask(client, "first, throttled everywhere"))
            with anyio.fail_after(10):
                while len(generate_records(sim, "throttled")) < 2:
                    await anyio.sleep(0.01)
            # Every account is cooling down now: these 20 wait instead of failing at once.
            for i in range(20):
                tg.start_soon(_collect, answers, ask(client, f"request {i} of the burst"))
        elapsed = time.monotonic() - started
    assert len(first) == 1 and len(answers) == 20
    assert all(m.stop_reason == "end_turn" and m.content for m in first + answers)
    assert len(generate_records(sim, "throttled")) == 2, "no request was sent to an account while it cooled down"
    assert len(generate_records(sim, "complete")) == 21
    assert 2.4 <= elapsed < 30, "they waited for the cooldown, within the budget"


async def test_a_budget_shorter_than_the_cooldown_answers_429_with_retry_after(tmp_path: Path) -> None:
    tokens = [PAID.format(0), PAID.format(1)]
    async with gateway(tmp_path, tokens, KIRO_WAIT_FOR_ACCOUNT_SECONDS="1") as (sim, client):
        sim.state.throttled_until = sim.state.now() + 1.0
        with pytest.raises(anthropic.RateLimitError) as first:
            await ask(client, "first, throttled everywhere")
        started = time.monotonic()
        errors: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(_collect_error, errors, ask(client, f"request {i} of the burst"))
        elapsed = time.monotonic() - started
    assert len(generate_records(sim, "throttled")) == 2 and not generate_records(sim, "complete")
    for exc in [first.value, *errors]:
        assert isinstance(exc, anthropic.RateLimitError), exc
        assert exc.response.status_code == 429 and exc.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert 1 <= int(exc.response.headers["retry-after"]) <= 5
    assert "throttled (HTTP 429" in first.value.message, "the first request says what it met itself"
    assert all("cooling down for" in e.message for e in errors if isinstance(e, anthropic.APIStatusError))
    assert elapsed < 1.0, "a comeback beyond the budget is answered at once, not after waiting"


async def test_a_request_waiting_in_line_stops_when_its_client_leaves(tmp_path: Path) -> None:
    async with gateway(tmp_path, [PAID.format(0)]) as (sim, client):
        sim.state.throttled_until = sim.state.now() + 1.0
        with anyio.move_on_after(1.5):
            await ask(client, "first, throttled, then the client gives up")
        with anyio.fail_after(10):
            answer = await ask(client, "a later request is served once the cooldown is over")
    assert answer.content and len(generate_records(sim, "complete")) == 1
    assert len(generate_records(sim, "throttled")) == 1, "the departed request sent nothing more"


async def test_opus_goes_only_to_the_account_whose_tier_offers_it(tmp_path: Path) -> None:
    free, paid = FREE.format(0), PAID.format(1)
    async with gateway(tmp_path, [free, paid], TOKEN_SELECTION_STRATEGY="round_robin") as (sim, client):
        await ask(client, "a token for the first account")
        await ask(client, "a token for the second account")
        await _until_models_known(sim, 2)
        for i in range(3):
            message = await ask(client, f"opus please {i}", model="claude-opus-4-5")
            assert message.model == "claude-opus-4-5" and message.content
    opus = [r for r in generate_records(sim) if "opus please" in json.dumps(r.get("body"))]
    assert len(opus) == 3 and {r["outcome"] for r in opus} == {"complete"}
    assert {r["account"] for r in opus} == {_label(sim, paid)}, "never sent to the free tier"


async def test_a_model_no_configured_tier_offers_is_a_clear_404(tmp_path: Path) -> None:
    async with gateway(tmp_path, [FREE.format(0)]) as (sim, client):
        await ask(client, "a token for the account")
        await _until_models_known(sim, 1)
        with pytest.raises(anthropic.NotFoundError) as info:
            await ask(client, "opus please", model="claude-opus-4-5")
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "claude-opus-4.5" in info.value.message and "KIRO FREE" in info.value.message
    assert not [r for r in generate_records(sim) if "opus please" in json.dumps(r.get("body"))]


async def _collect(into: list[anthropic.types.Message], call: Awaitable[anthropic.types.Message]) -> None:
    into.append(await call)


async def _collect_error(into: list[BaseException], call: Awaitable[anthropic.types.Message]) -> None:
    try:
        await call
    except anthropic.APIStatusError as exc:
        into.append(exc)


async def _until_models_known(sim: SimulatorHandle, accounts: int) -> None:
    # The background check runs every 5 s; the gateway keeps what it learnt at once.
    with anyio.fail_after(20):
        while len({r["account"] for r in sim.state.records if r["endpoint"] == "ListAvailableModels"}) < accounts:
            await anyio.sleep(0.05)
    await anyio.sleep(0.2)


def _label(sim: SimulatorHandle, refresh_token: str) -> str:
    from adapters.simulator._state import account_label

    return account_label(refresh_token)
