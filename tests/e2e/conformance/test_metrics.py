"""``GET /metrics`` on every way of serving: the admin token opens it (a client key, a wrong
token or none are 401; without an admin token it is off, 404), and after known traffic
prometheus-client's own parser reads the expected series."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conformance.conftest import SERVERS, TOKEN, Process, free_port, gateway_env, get, request, start

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ADMIN = "conformance-admin-token-0123456789"
MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module", params=list(SERVERS))
def metered_gateway(request: pytest.FixtureRequest, simulator: Process) -> Iterator[Process]:
    """A gateway of each kind with the admin token set, whose only traffic is this module's."""
    name: str = request.param
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in SERVERS[name][0]]
    process = start(f"{name}-metrics", command, port, gateway_env(simulator, KIRO_ADMIN_TOKEN=ADMIN))
    yield process
    process.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_need_the_admin_token(metered_gateway: Process) -> None:
    for headers in ({}, {"x-api-key": TOKEN}, {"authorization": f"Bearer {TOKEN}"}, {"authorization": "Bearer nope"}):
        status, head, body = get(metered_gateway.port, "/metrics", headers)
        assert status == 401, headers
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == "authentication_error"
        assert ADMIN not in body.decode() and "kiro2api_" not in body.decode()
    status, head, body = get(metered_gateway.port, "/metrics", {"authorization": f"Bearer {ADMIN}"})
    assert status == 200 and head["content-type"].startswith("text/plain; version=0.0.4")
    status, head, body = request(metered_gateway.port, "HEAD", "/metrics", headers={"x-api-key": ADMIN})
    assert status == 200 and body == b""
    status, _, _ = request(metered_gateway.port, "POST", "/metrics", b"", headers={"x-api-key": ADMIN})
    assert status == 405


def test_the_series_after_known_traffic(metered_gateway: Process, simulator: Process, marker: str) -> None:
    url = metered_gateway.url
    claude = anthropic.Anthropic(base_url=url, api_key=TOKEN, max_retries=0, timeout=60)
    told: list[tuple[int, int]] = []
    message = claude.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"Hi {marker}"}])
    told.append((message.usage.input_tokens, message.usage.output_tokens))
    with claude.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"Hey {marker}"}]) as s:
        final = s.get_final_message()
    told.append((final.usage.input_tokens, final.usage.output_tokens))
    gpt = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=60)
    completion = gpt.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"Yo {marker}"}])
    assert completion.usage is not None
    told.append((completion.usage.prompt_tokens, completion.usage.completion_tokens))
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": marker}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=url, api_key="not-a-key", max_retries=0).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": marker}])
    status, _, _ = get(metered_gateway.port, "/v1/models", {"x-api-key": TOKEN})
    assert status == 200

    status, _, body = get(metered_gateway.port, "/metrics", {"x-api-key": ADMIN})
    assert status == 200
    values = samples(body.decode())

    def value(name: str, **labels: str) -> float:
        return values.get((name, tuple(sorted(labels.items()))), 0.0)

    kiro = "claude-sonnet-4.5"
    assert value("kiro2api_requests_total", endpoint="messages", status="200", model=kiro, key="default") == 2
    assert value("kiro2api_requests_total", endpoint="chat_completions", status="200", model=kiro, key="default") == 1
    assert value("kiro2api_requests_total", endpoint="messages", status="404", model="none", key="default") == 1
    assert value("kiro2api_requests_total", endpoint="messages", status="401", model="none", key="none") == 1
    assert value("kiro2api_requests_total", endpoint="models", status="200", model="none", key="default") == 1
    # No label holds what a client chose: the unknown model and the wrong key appear nowhere.
    assert "no-such-model" not in body.decode() and "not-a-key" not in body.decode()

    assert value("kiro2api_tokens_total", direction="input", model=kiro, key="default") == sum(t[0] for t in told)
    assert value("kiro2api_tokens_total", direction="output", model=kiro, key="default") == sum(t[1] for t in told)
    _, _, sim_body = get(simulator.port, "/_sim/requests")
    metered: list[dict[str, Any]] = [
        r["metered"] for r in json.loads(sim_body)["requests"]
        if r.get("endpoint") == "generateAssistantResponse" and marker in json.dumps(r.get("body")) and "metered" in r
    ]
    assert len(metered) == 3
    assert value("kiro2api_credits_total", model=kiro, key="default") == pytest.approx(sum(m["credits"] for m in metered))
    upstream = {dict(labels)["outcome"]: v for (name, labels), v in values.items() if name == "kiro2api_upstream_calls_total"}
    assert upstream == {"200": 3}

    assert value("kiro2api_request_duration_seconds_count", endpoint="messages") == 3
    assert value("kiro2api_request_duration_seconds_count", endpoint="chat_completions") == 1
    assert value("kiro2api_time_to_first_byte_seconds_count", endpoint="messages") == 3
    assert value("kiro2api_time_to_first_byte_seconds_bucket", endpoint="messages", le="+Inf") == 3

    assert value("kiro2api_accounts", state="usable") == 1
    assert value("kiro2api_accounts", state="disabled") == 0
    assert value("kiro2api_open_streams") == 0
    assert value("kiro2api_requests_waiting_for_account") == 0
    assert value("kiro2api_active_requests") == 0
    assert value("kiro2api_recovered_streams_total") == 0


def test_metrics_are_off_without_an_admin_token(simulator: Process) -> None:
    port = free_port()
    env = gateway_env(simulator)
    env.pop("KIRO_ADMIN_TOKEN", None)
    process = start("serve-no-admin", [part.replace("{port}", str(port)) for part in SERVERS["serve"][0]], port, env)
    try:
        status, _, body = get(port, "/metrics", {"x-api-key": TOKEN})
        assert status == 404 and json.loads(body)["error"]["type"] == "not_found_error"
        assert b"KIRO_ADMIN_TOKEN" in body
    finally:
        process.stop()
