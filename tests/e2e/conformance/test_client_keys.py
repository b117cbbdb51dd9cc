"""Named client keys and their limits through the official SDKs, on every way of serving.

Each server shares a SQLite ``KIRO_STATE`` with the ``kiro2api keys`` command, so these tests
also prove the CLI works beside a running server and that a new key opens it within a second.
Two replicas on one redis-server share keys and limits.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from adapters.runtime.stores import open_store
from kiro_protocol import make_client_key
from tests.e2e.conformance.conftest import PYTHON, ROOT, SERVERS, TOKEN, Process, base_env, free_port, gateway_env, start
from tests.redis_server import redis_url  # noqa: F401  (fixture)

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"


@dataclass
class KeyedGateway:
    name: str
    process: Process
    state: str

    @property
    def url(self) -> str:
        return self.process.url

    def keys(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``kiro2api keys ARGS`` on this gateway's KIRO_STATE."""
        env = base_env()
        env["KIRO_STATE"] = self.state
        return subprocess.run(
            [PYTHON, "-m", "adapters.cli", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=check, timeout=60
        )

    def add_key(self, name: str, *flags: str) -> str:
        done = self.keys("add", name, *flags)
        key = done.stdout.strip().splitlines()[-1]
        assert key.startswith("k2a_") and done.stdout.count(key) == 1
        return key


def _start(name: str, simulator: Process, state: str) -> Process:
    template, _ = SERVERS[name]
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in template]
    # INFO: the access log lines are checked for the key's name.
    return start(name, command, port, gateway_env(simulator, KIRO_STATE=state, LOG_LEVEL="INFO"))


@pytest.fixture(scope="module", params=list(SERVERS))
def keyed(request: pytest.FixtureRequest, simulator: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedGateway]:
    state = f"sqlite:///{tmp_path_factory.mktemp('keys')}/state.db"
    process = _start(request.param, simulator, state)
    yield KeyedGateway(name=request.param, process=process, state=state)
    process.stop()


def anthropic_client(url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=60)


def ask(url: str, key: str, text: str = "Say hello", model: str = MODEL) -> Any:
    return anthropic_client(url, key).messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": text}])


def wait_until_open(url: str, key: str) -> float:
    """Seconds until ``key`` is accepted (a server reads the keys again every second)."""
    t0 = time.monotonic()
    while True:
        try:
            ask(url, key)
            return time.monotonic() - t0
        except anthropic.AuthenticationError:
            if time.monotonic() - t0 > 5:
                raise
            time.sleep(0.05)


def test_a_key_added_by_the_cli_opens_the_running_server_within_a_second(keyed: KeyedGateway) -> None:
    key = keyed.add_key("alice")
    assert wait_until_open(keyed.url, key) < 1.5
    message = ask(keyed.url, key)
    assert message.content[0].text.strip()
    # KIRO_CLIENT_TOKEN keeps working beside named keys.
    assert ask(keyed.url, TOKEN).content[0].text.strip()
    # The access log names the key, never the key itself (its line is written once the answer is out).
    deadline = time.monotonic() + 5
    while True:
        output = keyed.process.log.read_text(errors="replace")
        if ("key=alice" in output and "key=default" in output) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "key=alice" in output and "key=default" in output
    assert key not in output


def test_disabled_and_removed_keys_are_refused_with_401(keyed: KeyedGateway) -> None:
    key = keyed.add_key("bob")
    wait_until_open(keyed.url, key)
    keyed.keys("disable", "bob")
    time.sleep(1.2)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        ask(keyed.url, key)
    assert caught.value.status_code == 401
    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "API key 'bob' is disabled."}}
    keyed.keys("enable", "bob")
    wait_until_open(keyed.url, key)
    keyed.keys("remove", "bob")
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=keyed.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.status_code == 401
    assert refused.value.body == {"message": "Invalid API key.", "type": "authentication_error", "param": None, "code": "invalid_api_key"}
    listed = json.loads(keyed.keys("list", "--json").stdout)
    assert "bob" not in [k["name"] for k in listed]


def test_an_expired_key_is_refused_with_401_naming_the_moment(keyed: KeyedGateway) -> None:
    now = time.time()
    record, key = make_client_key("carol", random_bytes=bytes(range(32)) + keyed.name.encode(), now=now, expires_at=now + 3)
    store = open_store(keyed.state)
    try:
        store.add_key(record)
    finally:
        store.close()
    wait_until_open(keyed.url, key)
    time.sleep(max(0.0, record.expires_at - time.time()) + 0.1)  # type: ignore[operator]
    with pytest.raises(anthropic.AuthenticationError) as caught:
        ask(keyed.url, key)
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith("API key 'carol' expired at ") and message.endswith("Z.")


def test_a_model_outside_the_keys_list_is_403(keyed: KeyedGateway) -> None:
    key = keyed.add_key("sonnet-only", "--models", "claude-sonnet-4-5*")
    wait_until_open(keyed.url, key)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        ask(keyed.url, key, model="claude-opus-4-5")
    assert caught.value.status_code == 403
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "permission_error", "message": "Key 'sonnet-only' may not use model 'claude-opus-4-5'; it may use: claude-sonnet-4-5*."},
    }
    chat = openai.OpenAI(base_url=keyed.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert denied.value.status_code == 403 and denied.value.body["code"] == "permission_denied"  # type: ignore[index]
    assert chat.chat.completions.create(model="claude-sonnet-4-5-20250929", messages=[{"role": "user", "content": "hi"}]).choices


def test_over_the_rate_is_429_with_retry_after(keyed: KeyedGateway) -> None:
    key = keyed.add_key("rpm2", "--rpm", "2")
    wait_until_open(keyed.url, key)  # the first request of the minute
    ask(keyed.url, key)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(keyed.url, key)
    response = caught.value.response
    assert response.status_code == 429
    assert 50 <= int(response.headers["retry-after"]) <= 60
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.body["error"]["message"].startswith("Rate limit of key 'rpm2' reached: 2 requests per minute; retry in ")  # type: ignore[index]
    # The OpenAI dialect gets the same refusal in its own shape; refused requests do not count.
    with pytest.raises(openai.RateLimitError) as limited:
        openai.OpenAI(base_url=keyed.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.status_code == 429 and limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert int(limited.value.response.headers["retry-after"]) <= 60


def test_over_the_concurrency_is_429_and_a_finished_request_frees_its_slot(keyed: KeyedGateway) -> None:
    key = keyed.add_key("one-at-a-time", "--concurrency", "1")
    wait_until_open(keyed.url, key)
    started = threading.Event()
    result: list[str] = []

    def slow() -> None:
        client = anthropic_client(keyed.url, key)
        with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hello [[sim:slow:400]]"}]) as stream:
            for _event in stream:
                started.set()
            result.append(stream.get_final_message().content[0].text)  # type: ignore[union-attr]

    worker = threading.Thread(target=slow)
    worker.start()
    assert started.wait(30)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(keyed.url, key)
    assert caught.value.response.headers["retry-after"] == "1"
    assert "Concurrency limit of key 'one-at-a-time' reached: 1 request at once" in caught.value.body["error"]["message"]  # type: ignore[index]
    worker.join(60)
    assert result and result[0].strip()
    assert ask(keyed.url, key).content[0].text.strip()


def test_a_used_up_daily_token_quota_is_429_naming_the_reset(keyed: KeyedGateway) -> None:
    key = keyed.add_key("tiny", "--tokens-per-day", "1")
    wait_until_open(keyed.url, key)  # under the quota: served, and its tokens counted
    # The tokens are counted once the answer has been sent: give the write a moment.
    time.sleep(0.5)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(keyed.url, key)
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith("The daily token quota of key 'tiny' (1 tokens) is used up; it resets at ")
    assert message.endswith("T00:00:00Z.")
    retry = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry <= 86400
    listed = {k["name"]: k for k in json.loads(keyed.keys("list", "--json").stdout)}
    assert listed["tiny"]["tokens_today"] > 1 and listed["tiny"]["tokens_this_month"] == listed["tiny"]["tokens_today"]


def test_two_replicas_on_one_redis_share_keys_and_limits(simulator: Process, redis_url: str) -> None:  # noqa: F811
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    replicas = [_start("serve", simulator, redis_url), _start("gevent", simulator, redis_url)]
    try:
        gateway = KeyedGateway(name="replicas", process=replicas[0], state=redis_url)
        key = gateway.add_key("shared", "--rpm", "3", "--concurrency", "1")
        for replica in replicas:
            wait_until_open(replica.url, key)  # one request each: 2 of 3
        ask(replicas[0].url, key)  # 3 of 3
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(replicas[1].url, key)
        assert "3 requests per minute" in caught.value.body["error"]["message"]  # type: ignore[index]
        assert ask(replicas[0].url, TOKEN).content  # the built-in key has no limits

        other = gateway.add_key("shared-slots", "--concurrency", "1")
        for replica in replicas:
            wait_until_open(replica.url, other)
        started = threading.Event()

        def slow() -> None:
            with anthropic_client(replicas[0].url, other).messages.stream(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hello [[sim:slow:400]]"}]
            ) as stream:
                for _event in stream:
                    started.set()

        worker = threading.Thread(target=slow)
        worker.start()
        assert started.wait(30)
        with pytest.raises(anthropic.RateLimitError) as busy:
            ask(replicas[1].url, other)
        assert "Concurrency limit of key 'shared-slots'" in busy.value.body["error"]["message"]  # type: ignore[index]
        worker.join(60)
        assert ask(replicas[1].url, other).content
    finally:
        for replica in replicas:
            replica.stop()


def test_the_cli_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    gateway = KeyedGateway(name="cli", process=None, state=f"sqlite:///{tmp_path}/state.db")  # type: ignore[arg-type]
    gateway.add_key("dave")
    taken = gateway.keys("add", "dave", check=False)
    assert taken.returncode == 1 and "exists already" in taken.stderr and "Traceback" not in taken.stderr
    for args in (("add", "default"), ("add", "bad name"), ("add", "eve", "--expires", "yesterday"), ("add", "eve", "--rpm", "-1")):
        done = gateway.keys(*args, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == "", args
    missing = gateway.keys("disable", "nobody", check=False)
    assert missing.returncode == 1 and "no key named 'nobody'" in missing.stderr
    table = gateway.keys("list").stdout
    assert "dave" in table and "active" in table
