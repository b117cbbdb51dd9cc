"""Usage accounting end to end: a gateway on SQLite records every model request of the official
SDKs; the totals match what the simulator metered and what the clients were told; the records
reach the store in the background, survive a restart, and ``kiro2api usage`` prints them as a
table and as CSV while the server runs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from adapters.runtime.stores import open_store
from kiro_protocol import UsageRecord
from tests.e2e.conformance.conftest import (
    PYTHON, ROOT, SERVERS, TOKEN, Process, base_env, free_port, gateway_env, get, start,
)
from tests.redis_server import fresh_redis, redis_url  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def simulator() -> Iterator[Process]:
    port = free_port()
    process = start(
        "simulator",
        [PYTHON, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0", "--history", "1000",
         "--log-level", "WARNING"],
        port,
        base_env(),
    )
    yield process
    process.stop()


def serve(simulator: Process, state: str, **extra: str) -> Process:
    port = free_port()
    env = gateway_env(simulator, KIRO_STATE=state, **extra)
    return start("serve", [PYTHON, "-m", "adapters.cli", "serve", "--port", str(port)], port, env)


def metered(simulator: Process, marker: str) -> list[dict[str, Any]]:
    _, _, body = get(simulator.port, "/_sim/requests")
    return [
        r["metered"] for r in json.loads(body)["requests"]
        if r.get("endpoint") == "generateAssistantResponse" and marker in json.dumps(r.get("body")) and "metered" in r
    ]


def usage_command(state: str, *args: str) -> str:
    env = base_env()
    env["KIRO_STATE"] = state
    done = subprocess.run([PYTHON, "-m", "adapters.cli", "usage", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for_records(state: str, count: int, timeout: float = 10.0) -> list[UsageRecord]:
    store = open_store(state)
    try:
        deadline = time.monotonic() + timeout
        while True:
            records = store.usage()
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.2)
    finally:
        store.close()


def test_usage_adds_up_to_what_was_metered_and_told(simulator: Process, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    marker = f"usage-{uuid.uuid4().hex[:10]}"
    gateway = serve(simulator, state)
    told: list[tuple[int, int]] = []
    try:
        claude = anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0, timeout=60)
        message = claude.messages.create(model=MODEL, max_tokens=300, messages=[{"role": "user", "content": f"Hi {marker}"}])
        told.append((message.usage.input_tokens, message.usage.output_tokens))
        with claude.messages.stream(model=MODEL, max_tokens=300,
                                    messages=[{"role": "user", "content": f"Tell a story [[sim:long]] {marker}"}]) as stream:
            final = stream.get_final_message()
        told.append((final.usage.input_tokens, final.usage.output_tokens))
        gpt = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=TOKEN, max_retries=0, timeout=60)
        completion = gpt.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"Hello {marker}"}])
        assert completion.usage is not None
        told.append((completion.usage.prompt_tokens, completion.usage.completion_tokens))
        with pytest.raises(anthropic.NotFoundError):
            claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": marker}])
        # The answers are out; their records follow within a second or two (the writer's batch).
        records = wait_for_records(state, 4)
        assert len(records) == 4
        table = usage_command(state)  # while the server runs, on the same KIRO_STATE
    finally:
        gateway.stop()
    sim = metered(simulator, marker)
    assert len(sim) == 3
    ok = [r for r in records if r.status == 200]
    assert sum(r.credits for r in ok) == pytest.approx(sum(m["credits"] for m in sim), abs=1e-9)
    assert sorted((r.input_tokens, r.output_tokens) for r in ok) == sorted(told)
    assert {r.key for r in records} == {"default"}  # KIRO_CLIENT_TOKEN is the built-in key
    assert sorted((r.dialect, r.stream) for r in ok) == [("anthropic", False), ("anthropic", True), ("openai", False)]
    (refused,) = [r for r in records if r.status != 200]
    # Refused before any account was tried; a model the gateway does not know is not kept.
    assert (refused.status, refused.error, refused.model, refused.account) == (404, "not_found_error", None, None)
    assert all(r.account for r in ok) and all(r.ttfb is not None and 0 < r.ttfb <= r.duration for r in ok)
    # The table: a header, the one key, the total.
    lines = table.splitlines()
    assert lines[0].split() == ["key", "requests", "errors", "input_tokens", "output_tokens", "credits", "mean_ttfb_ms",
                                "mean_duration_ms"]
    inputs, outputs = sum(t[0] for t in told), sum(t[1] for t in told)
    assert lines[1].split()[:5] == ["default", "4", "1", str(inputs), str(outputs)]
    assert lines[2].split()[:5] == ["TOTAL", "4", "1", str(inputs), str(outputs)]
    assert float(lines[1].split()[5]) == pytest.approx(sum(m["credits"] for m in sim), abs=1e-4)

    # A restart keeps every record, and the next requests add to them.
    gateway = serve(simulator, state)
    try:
        claude = anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0, timeout=60)
        claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": marker}])
    finally:
        gateway.stop()  # a graceful stop writes what is still queued
    assert len(wait_for_records(state, 5, timeout=0)) == 5
    rows = list(csv.reader(io.StringIO(usage_command(state, "--by", "model", "--csv"))))
    assert rows[0] == ["model", "requests", "errors", "input_tokens", "output_tokens", "credits", "mean_ttfb_ms",
                       "mean_duration_ms"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("-", "1", "1"), ("claude-haiku-4-5", "1", "0"), ("claude-sonnet-4-5", "3", "0"),
    ]


def test_records_past_retention_go_and_zero_days_records_nothing(simulator: Process, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    store = open_store(state)
    now = time.time()
    store.add_usage([UsageRecord(time=now - days * 86400, request_id=f"d{days}", key="old", account=None, model=None,
                                 dialect="anthropic", stream=False, status=200) for days in (9, 2)])
    store.close()
    gateway = serve(simulator, state, KIRO_USAGE_RETENTION_DAYS="5")
    try:
        anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0).messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
        records = wait_for_records(state, 2)
        deadline = time.monotonic() + 5
        while any(r.request_id == "d9" for r in records) and time.monotonic() < deadline:
            time.sleep(0.2)
            records = wait_for_records(state, 2, timeout=0)
    finally:
        gateway.stop()
    assert sorted(r.request_id for r in records if r.key == "old") == ["d2"]
    assert [r.key for r in records if r.key != "old"] == ["default"]

    quiet = f"sqlite:///{tmp_path}/quiet.db"
    gateway = serve(simulator, quiet, KIRO_USAGE_RETENTION_DAYS="0")
    try:
        anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0).messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
    finally:
        gateway.stop()
    assert wait_for_records(quiet, 1, timeout=0) == []
    assert "TOTAL" in usage_command(quiet) and os.path.exists(f"{tmp_path}/quiet.db")


def test_two_replicas_on_one_redis_share_their_usage(simulator: Process, fresh_redis: str) -> None:
    one, two = serve(simulator, fresh_redis), serve(simulator, fresh_redis)
    try:
        for gateway, count in ((one, 2), (two, 3)):
            claude = anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0, timeout=60)
            for _ in range(count):
                claude.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
        records = wait_for_records(fresh_redis, 5)
    finally:
        one.stop()
        two.stop()
    assert len(records) == 5 and len({r.request_id for r in records}) == 5
    rows = list(csv.reader(io.StringIO(usage_command(fresh_redis, "--by", "key,dialect", "--csv"))))
    assert [r[:4] for r in rows[1:]] == [["default", "anthropic", "5", "0"]]


@pytest.mark.parametrize("server", list(SERVERS))
def test_every_way_of_serving_writes_in_the_background_and_at_its_stop(
    simulator: Process, tmp_path: Path, server: str
) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in SERVERS[server][0]]
    gateway = start(server, command, port, gateway_env(simulator, KIRO_STATE=state))
    try:
        claude = anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0, timeout=60)
        for _ in range(3):
            claude.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert len(wait_for_records(state, 3)) == 3  # written by the background task while serving
        claude.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    finally:
        gateway.stop()  # SIGTERM: the last record is written on the way out, not lost
    records = wait_for_records(state, 4, timeout=0)
    assert len(records) == 4 and {(r.key, r.status, r.dialect) for r in records} == {("default", 200, "anthropic")}
