"""kiro2api mounted inside a Starlette application beside the host's own route, under uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.conformance.conftest import PYTHON, TOKEN, Process, free_port, gateway_env, get, start

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def host(simulator: Process) -> Iterator[Process]:
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "tests.e2e.conformance.starlette_host:app", "--port", str(port), "--log-level", "warning"]
    process = start("starlette", command, port, gateway_env(simulator), ready_path="/kiro/health")
    yield process
    process.stop()


def test_the_host_route_and_kiro2api_both_answer(host: Process) -> None:
    status, _, body = get(host.port, "/hello")
    assert status == 200 and json.loads(body) == {"hello": "from the host application"}
    status, _, body = get(host.port, "/kiro/health")
    assert status == 200 and json.loads(body)["accounts"]["usable"] == 1
    status, _, _ = get(host.port, "/v1/models", {"x-api-key": TOKEN})
    assert status == 404  # kiro2api lives under /kiro only


def test_sdks_through_the_mount(host: Process) -> None:
    api = anthropic.Anthropic(base_url=f"{host.url}/kiro", api_key=TOKEN, max_retries=0)
    with api.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Hi from a mount"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.stop_reason == "end_turn"
    chat = openai.OpenAI(base_url=f"{host.url}/kiro/v1", api_key=TOKEN, max_retries=0)
    completion = chat.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi again"}])
    assert completion.choices[0].message.content
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=f"{host.url}/kiro", api_key="wrong-token-0123456789", max_retries=0).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
