"""The secret scan (issue 18): no secret leaves the gateway, whatever happens.

Every secret kiro2api holds gets a distinctive value: the refresh tokens of a Social and an IdC
account, of accounts whose refresh fails and of accounts whose every call fails (simulator tags),
the IdC client ids and secrets, the access tokens the upstream issues, the client token, the admin token, the client keys made through the admin API and
the password of ``HTTPS_PROXY``. Then ``kiro2api serve`` and the ASGI app under uvicorn are run at
``LOG_LEVEL=debug`` with ``LOG_FILE`` set, and driven through good requests (every dialect,
streaming and not), bad authentication, upstream failures, refresh failures, an expiry of every
access token, the admin API, the dashboard, ``/metrics``, ``/health`` and ``/v1/models``.

Everything that came out (every response head and body, the process's stdout and stderr, the log
file) is searched for each secret and for its middle and last 12 characters. There must be no hit
(a new client key is shown once, in the answer that made it).

The simulator runs in this process (a thread of its own) so that its access tokens carry a marker
and the exact tokens it issued can be searched for too.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from anyio.from_thread import start_blocking_portal

from adapters.anyio_server import Lifecycle, Server
from adapters.simulator import SimulatorApp, SimulatorConfig, SimulatorState, gateway_environment

from .conformance.conftest import SERVERS, Process, base_env, free_port, request, start
from .conformance.conftest import request as http_request

pytestmark = pytest.mark.slow

MODEL = "claude-sonnet-4-5"
#: Markers that break the answer after its start (asked for as streams).
STREAM_FAILURES = ("exception-mid-stream", "error-frame", "drop", "bad-crc", "content-length-exceeded", "truncate")
#: Every upstream failure the exercise goes through (``[[sim:...]]`` markers, docs/simulator.md).
UPSTREAM_FAILURES = ("improperly-formed", "input-too-long", *STREAM_FAILURES, "server-error:503", "server-error",
                     "throttle")
#: Refresh-token tags of accounts whose every call fails that way (docs/simulator.md).
ACCOUNT_FAILURES = ("sim-quota", "sim-suspended", "sim-forbidden", "sim-throttle")


def _marker(kind: str) -> str:
    """A secret nobody could confuse with anything else: its kind, then 32 random hex digits."""
    return f"{kind}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Secrets:
    """The values planted in every secret of one run."""

    social_refresh: str = field(default_factory=lambda: "aorAAAAAG-" + _marker("RTsocial"))
    idc_refresh: str = field(default_factory=lambda: "aorAAAAAG-" + _marker("RTidc"))
    idc_client_id: str = field(default_factory=lambda: _marker("IDCclient"))
    idc_client_secret: str = field(default_factory=lambda: _marker("IDCsecret"))
    # Refused by the simulator ("invalid" in it): the refresh fails with invalid_grant.
    failing_refresh: str = field(default_factory=lambda: "aorAAAAAG-invalid-" + _marker("RTfail"))
    # An IdC account whose client secret is refused (invalid_client).
    bad_secret_refresh: str = field(default_factory=lambda: "aorAAAAAG-" + _marker("RTbadsecret"))
    bad_client_secret: str = field(default_factory=lambda: "invalid-" + _marker("IDCbadsecret"))
    tagged_refresh: tuple[str, ...] = field(
        default_factory=lambda: tuple(f"aorAAAAAG-{tag}-" + _marker("RTtagged") for tag in ACCOUNT_FAILURES))
    added_refresh: str = field(default_factory=lambda: "aorAAAAAG-" + _marker("RTadded"))
    access_marker: str = field(default_factory=lambda: _marker("ATissued"))
    client_token: str = field(default_factory=lambda: _marker("CLIENTtoken"))
    admin_token: str = field(default_factory=lambda: _marker("ADMINtoken"))
    proxy_password: str = field(default_factory=lambda: _marker("PROXYpass"))

    def values(self) -> dict[str, str]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "tagged_refresh"}
        return found | {f"tagged_refresh {i}": value for i, value in enumerate(self.tagged_refresh)}

    def accounts(self) -> list[dict[str, object]]:
        tagged: list[dict[str, object]] = [
            {"auth": "Social", "refreshToken": token, "description": f"scan tagged {i}"}
            for i, token in enumerate(self.tagged_refresh)
        ]
        return [
            {"auth": "Social", "refreshToken": self.social_refresh, "description": "scan social"},
            {"auth": "IdC", "refreshToken": self.idc_refresh, "clientId": self.idc_client_id,
             "clientSecret": self.idc_client_secret, "description": "scan idc"},
            {"auth": "Social", "refreshToken": self.failing_refresh, "description": "scan refused"},
            {"auth": "IdC", "refreshToken": self.bad_secret_refresh, "clientId": self.idc_client_id,
             "clientSecret": self.bad_client_secret, "description": "scan bad client"},
            *tagged,
        ]


def fragments(secret: str) -> list[str]:
    """The secret and its obvious pieces: the middle, the start and the end (12 characters each)."""
    middle = len(secret) // 2 - 6
    return [secret, secret[middle:middle + 12], secret[-12:]]


@dataclass
class Answer:
    """One response as the client saw it."""

    label: str
    status: int
    headers: dict[str, str]
    body: bytes
    #: Secrets this answer may show (a new client key is shown once, in the answer that made it).
    shows: frozenset[str] = frozenset()

    def text(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return head + "\n\n" + self.body.decode("utf-8", "replace")


@dataclass
class Transcript:
    """Everything one gateway said during the exercise."""

    server: str
    answers: list[Answer]
    #: name -> text of each log (stdout and stderr of the process, the LOG_FILE).
    logs: dict[str, str]
    #: Every secret planted or made: its name -> its value.
    secrets: dict[str, str]
    #: Access tokens the simulator issued during the run.
    issued: list[str]
    #: The failure scenarios that reached the simulator.
    scenarios: set[str]


@pytest.fixture(scope="module")
def planted() -> Secrets:
    return Secrets()


@dataclass
class Upstream:
    """The simulator, in a thread of this process."""

    url: str
    #: The access tokens it issued so far.
    tokens: Callable[[], list[str]]
    #: The failure scenarios it answered so far (``[[sim:...]]`` markers that reached it).
    scenarios: Callable[[], set[str]]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def upstream(planted: Secrets) -> Iterator[Upstream]:
    """The simulator, whose every access token starts with ``planted.access_marker``."""

    def new_secret(size: int) -> str:
        return planted.access_marker + secrets.token_urlsafe(size)

    state = SimulatorState(SimulatorConfig(pace_ms=0, history_size=5000), new_secret=new_secret)
    server = Server(handler=SimulatorApp(state), lifecycle=Lifecycle(), host="127.0.0.1", port=0,
                    shutdown_timeout=2.0, terminate_grace=0.5)
    with start_blocking_portal() as portal:
        future, _ = portal.start_task(server.serve)
        try:
            yield Upstream(
                url=f"http://127.0.0.1:{server.port}",
                tokens=lambda: portal.call(lambda: list(state.tokens)),
                scenarios=lambda: portal.call(lambda: {str(r["scenario"]) for r in state.records if r.get("scenario")}),
            )
        finally:
            portal.call(server.shutdown)
            future.result(timeout=20)


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def exercise(port: int, sim_port: int, planted: Secrets) -> tuple[list[Answer], dict[str, str]]:
    """Drive the gateway on ``port`` through every path that touches a secret; the answers and the
    client keys made on the way (name -> value)."""
    answers: list[Answer] = []
    made: dict[str, str] = {}
    anthropic = {"x-api-key": planted.client_token, "content-type": "application/json",
                 "anthropic-version": "2023-06-01"}
    openai = {"authorization": f"Bearer {planted.client_token}", "content-type": "application/json"}
    admin = {"authorization": f"Bearer {planted.admin_token}", "content-type": "application/json"}

    def call(label: str, method: str, path: str, body: object = None, headers: dict[str, str] | None = None,
             *, raw: bytes | None = None, shows: frozenset[str] = frozenset()) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        status, head, got = request(port, method, path, data, headers or {}, timeout=60)
        answer = Answer(label, status, head, got, shows)
        answers.append(answer)
        return answer

    def messages(label: str, text: str, *, stream: bool = False, headers: dict[str, str] | None = None) -> Answer:
        body = {"model": MODEL, "max_tokens": 256, "stream": stream, "messages": _ask(text)}
        return call(label, "POST", "/v1/messages", body, headers or anthropic)

    def chat(label: str, text: str, *, stream: bool = False) -> Answer:
        return call(label, "POST", "/v1/chat/completions", {"model": MODEL, "stream": stream, "messages": _ask(text)},
                    openai)

    def responses(label: str, text: str, *, stream: bool = False) -> Answer:
        return call(label, "POST", "/v1/responses", {"model": MODEL, "stream": stream, "input": text}, openai)

    # The accounts that fail every call wait, switched off, for the end.
    listed = json.loads(call("admin accounts at the start", "GET", "/admin/api/accounts", headers=admin).body)
    tagged = [a["id"] for a in listed["accounts"] if a["description"].startswith("scan tagged")]
    for account_id in tagged:
        switched = call("admin disable tagged", "POST", f"/admin/api/accounts/{account_id}/disable", headers=admin)
        assert switched.status == 200, switched.text()

    # Good requests, every dialect, streaming and not.
    for stream in (False, True):
        assert messages(f"messages stream={stream}", "Say hello", stream=stream).status == 200
        assert chat(f"chat stream={stream}", "Say hello", stream=stream).status == 200
        assert responses(f"responses stream={stream}", "Say hello", stream=stream).status == 200
    assert messages("tool calls", "[[sim:tools:2]] [[sim:thinking]] list files", stream=True).status == 200
    for path in ("/v1/models", "/health", "/metrics"):
        call(f"GET {path} as client", "GET", path, headers=anthropic)
    assert call("GET /metrics as admin", "GET", "/metrics", headers=admin).status == 200
    call("GET /v1/models as openai", "GET", "/v1/models", headers=openai)

    # Bad authentication: none, a near miss of each token, the admin token on a model endpoint.
    near_client = planted.client_token[:-1] + ("0" if planted.client_token[-1] != "0" else "1")
    near_admin = planted.admin_token[:-1] + ("0" if planted.admin_token[-1] != "0" else "1")
    messages("no key", "hi", headers={"content-type": "application/json"})
    messages("near-miss key", "hi", headers={**anthropic, "x-api-key": near_client})
    messages("admin token as key", "hi", headers={**anthropic, "x-api-key": planted.admin_token})
    call("near-miss bearer", "POST", "/v1/chat/completions", {"model": MODEL, "messages": _ask("hi")},
         {**openai, "authorization": f"Bearer {near_client}"})
    call("refresh token as key", "GET", "/v1/models", headers={"x-api-key": planted.social_refresh})
    call("client token on admin", "GET", "/admin/api/accounts",
         headers={"authorization": f"Bearer {planted.client_token}"})
    call("near-miss admin", "GET", "/admin/api/accounts", headers={"authorization": f"Bearer {near_admin}"})
    call("bad json", "POST", "/v1/messages", headers=anthropic, raw=b'{"model": "' + planted.client_token.encode())

    # Every access token expires at once: the gateway gets 403 and refreshes.
    status, _, _ = request(sim_port, "POST", "/_sim/expire-tokens", b"", {})
    assert status == 200
    assert messages("after expiry", "Say hello again").status == 200
    assert chat("after expiry (openai)", "Say hello again", stream=True).status == 200

    # The admin API: accounts (one added and removed), client keys (made, used, disabled, removed).
    call("admin accounts", "GET", "/admin/api/accounts", headers=admin)
    added = call("admin add account", "POST", "/admin/api/accounts",
                 {"auth": "Social", "refreshToken": planted.added_refresh, "description": "scan added"}, admin)
    assert added.status == 201, added.text()
    call("admin add account again", "POST", "/admin/api/accounts",
         {"auth": "Social", "refreshToken": planted.added_refresh}, admin)
    call("admin add bad account", "POST", "/admin/api/accounts",
         {"auth": "IdC", "refreshToken": planted.added_refresh + "x", "clientSecret": planted.idc_client_secret}, admin)
    call("admin accounts after add", "GET", "/admin/api/accounts", headers=admin)
    account_id = json.loads(added.body)["id"]
    call("admin disable account", "POST", f"/admin/api/accounts/{account_id}/disable", headers=admin)
    call("admin remove account", "DELETE", f"/admin/api/accounts/{account_id}", headers=admin)
    key_answer = call("admin make key", "POST", "/admin/api/keys", {"name": "scan-key", "concurrency": 8}, admin)
    assert key_answer.status == 201, key_answer.text()
    key = json.loads(key_answer.body)["key"]
    made["api_key"] = key
    key_answer.shows = frozenset({key})
    # A new key opens the gateway within a second or so (the key store is re-read): wait for it.
    for _ in range(100):
        if messages("with the new key", "Say hello", headers={**anthropic, "x-api-key": key}).status != 401:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the new client key was never accepted")
    assert answers[-1].status == 200, answers[-1].text()
    call("with the new key (openai)", "POST", "/v1/responses", {"model": MODEL, "input": "hi", "stream": True},
         {**openai, "authorization": f"Bearer {key}"})
    call("admin disable key", "POST", "/admin/api/keys/scan-key/disable", headers=admin)
    messages("with the disabled key", "hi", headers={**anthropic, "x-api-key": key})
    call("admin keys", "GET", "/admin/api/keys", headers=admin)
    call("admin usage", "GET", "/admin/api/usage?by=key,account,model&since=7d", headers=admin)
    call("admin requests", "GET", "/admin/api/requests?limit=200", headers=admin)
    call("admin audit", "GET", "/admin/api/audit?limit=200", headers=admin)
    call("admin unknown", "GET", "/admin/api/nothing", headers=admin)
    call("admin remove key", "DELETE", "/admin/api/keys/scan-key", headers=admin)
    messages("with the removed key", "hi", headers={**anthropic, "x-api-key": key})

    # The dashboard: login page, a wrong login, a session, every form.
    form = {"content-type": "application/x-www-form-urlencoded"}
    call("dashboard login page", "GET", "/admin")
    call("dashboard wrong login", "POST", "/admin/login", raw=urlencode({"token": near_admin}).encode(), headers=form)
    call("dashboard client-token login", "POST", "/admin/login",
         raw=urlencode({"token": planted.client_token}).encode(), headers=form)
    login = call("dashboard login", "POST", "/admin/login", raw=urlencode({"token": planted.admin_token}).encode(),
                 headers=form)
    assert login.status == 303, login.text()
    session = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
    page = call("dashboard", "GET", "/admin", headers=session)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.body.decode())
    assert found is not None, page.text()
    csrf = found.group(1)
    posted = {**session, **form}
    made_page = call("dashboard make key", "POST", "/admin/keys",
                     raw=urlencode({"name": "scan-form", "csrf": csrf}).encode(), headers=posted)
    form_key = re.search(r'<code id="new-key">([^<]+)</code>', made_page.body.decode())
    assert form_key is not None, made_page.text()
    made["form_key"] = form_key.group(1)
    made_page.shows = frozenset({form_key.group(1)})
    call("dashboard add account", "POST", "/admin/accounts", headers=posted, raw=urlencode({
        "csrf": csrf, "auth": "IdC", "refreshToken": planted.added_refresh + "-form", "clientId": planted.idc_client_id,
        "clientSecret": planted.idc_client_secret, "description": "scan form"}).encode())
    call("dashboard add bad account", "POST", "/admin/accounts", headers=posted, raw=urlencode({
        "csrf": csrf, "auth": "IdC", "refreshToken": "short", "clientSecret": planted.idc_client_secret}).encode())
    call("dashboard forged form", "POST", "/admin/keys", raw=urlencode({"name": "forged"}).encode(), headers=posted)
    call("dashboard after", "GET", "/admin", headers=session)

    # Upstream failures, in every dialect. Some cool every account down or mark it invalid:
    # switching the accounts off and on again, and waiting out a cooldown, readies the next one.
    accounts = json.loads(call("admin accounts before failures", "GET", "/admin/api/accounts", headers=admin).body)
    accounts["accounts"] = [a for a in accounts["accounts"] if a["id"] not in tagged]
    for scenario in UPSTREAM_FAILURES:
        stream = scenario in STREAM_FAILURES
        messages(f"upstream {scenario}", f"[[sim:{scenario}]] hi", stream=stream)
        responses(f"upstream {scenario} (responses)", f"[[sim:{scenario}]] hi", stream=stream)
        chat(f"upstream {scenario} (openai)", f"[[sim:{scenario}]] hi", stream=stream)
        for account in accounts["accounts"]:
            for switch in ("disable", "enable"):
                request(port, "POST", f"/admin/api/accounts/{account['id']}/{switch}", None, admin)
        hello = json.dumps({"model": MODEL, "max_tokens": 64, "messages": _ask("hi")}).encode()
        for _ in range(100):
            if request(port, "POST", "/v1/messages", hello, anthropic)[0] == 200:
                break
            time.sleep(0.1)
    # The accounts that fail every call, alone: every other one is switched off.
    for account in accounts["accounts"]:
        call(f"admin disable {account['description']}", "POST", f"/admin/api/accounts/{account['id']}/disable",
             headers=admin)
    for account_id in tagged:
        call("admin enable tagged", "POST", f"/admin/api/accounts/{account_id}/enable", headers=admin)
    for attempt in range(3):
        messages(f"tagged accounts {attempt}", "Say hello")
        chat(f"tagged accounts {attempt} (openai)", "Say hello", stream=True)
    call("admin accounts at the end", "GET", "/admin/api/accounts", headers=admin)
    call("admin requests at the end", "GET", "/admin/api/requests?limit=200", headers=admin)
    call("admin audit at the end", "GET", "/admin/api/audit?limit=200", headers=admin)
    call("metrics at the end", "GET", "/metrics", headers=admin)
    call("health at the end", "GET", "/health")
    call("dashboard at the end", "GET", "/admin", headers=session)
    return answers, made


@pytest.fixture(scope="module", params=["serve", "uvicorn"])
def transcript(request: pytest.FixtureRequest, planted: Secrets,
               upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Transcript:
    name: str = request.param
    sim_url, sim_port = upstream.url, upstream.port
    http_request(sim_port, "POST", "/_sim/reset", b"", {})  # this gateway's tokens and scenarios only
    log_file = tmp_path_factory.mktemp(f"scan-{name}") / "kiro2api.log"
    env = base_env()
    env.update(gateway_environment(sim_url, accounts=planted.accounts()))
    env.update({
        "KIRO_CLIENT_TOKEN": planted.client_token,
        "KIRO_ADMIN_TOKEN": planted.admin_token,
        "KIRO_STATE": "memory://",
        "LOG_LEVEL": "debug",
        "LOG_FILE": str(log_file),
        # Only https:// upstreams go through the proxy: the simulator is reached directly, but the
        # proxy URL and its password are read, checked and may be logged.
        "HTTPS_PROXY": f"http://scan:{planted.proxy_password}@127.0.0.1:9",
        "KIRO_WAIT_FOR_ACCOUNT_SECONDS": "1",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
    })
    port = free_port()
    template, _ = SERVERS[name]
    command = [part.replace("{port}", str(port)) for part in template]
    if name == "uvicorn":
        command = [part.replace("warning", "debug") for part in command]
    process: Process = start(f"scan-{name}", command, port, env)
    try:
        answers, made = exercise(port, sim_port, planted)
    finally:
        process.stop()
    logs = {"stdout and stderr": process.log.read_text(errors="replace"),
            "LOG_FILE": log_file.read_text(errors="replace") if log_file.exists() else ""}
    return Transcript(server=name, answers=answers, logs=logs, secrets={**planted.values(), **made},
                      issued=upstream.tokens(), scenarios=upstream.scenarios())


def _hits(text: str, transcript: Transcript, allowed: frozenset[str] = frozenset()) -> list[str]:
    found = []
    for name, value in [*transcript.secrets.items(), *(("access token", t) for t in transcript.issued)]:
        if value in allowed:
            continue
        for piece in fragments(value):
            if piece in text:
                found.append(f"{name} ({piece!r})")
                break
    return found


def test_the_exercise_reached_every_path(transcript: Transcript) -> None:
    """The scan only means something if the secrets were used: tokens were issued and rotated,
    refreshes failed, and the log file was written."""
    assert len(transcript.issued) >= 2
    statuses = {a.status for a in transcript.answers}
    assert {200, 401}.issubset(statuses) and any(s >= 500 or s == 429 for s in statuses)
    listed = next(a for a in transcript.answers if a.label == "admin accounts at the end")
    failed = {a["description"] for a in json.loads(listed.body)["accounts"] if a["counters"].get("refresh_failures")}
    assert failed >= {"scan refused", "scan bad client"}, listed.text()
    assert "kiro2api.access" in transcript.logs["LOG_FILE"] and "status=401" in transcript.logs["LOG_FILE"]
    assert "api_key" in transcript.secrets
    reached = {s.split(":")[0] for s in transcript.scenarios}
    assert reached >= {s.split(":")[0] for s in UPSTREAM_FAILURES} | set(ACCOUNT_FAILURES), reached
    assert len(transcript.issued) > 3  # refreshed after the expiry and after each re-enabling
    # The search finds what it looks for: the answer that made a key holds it.
    made = next(a for a in transcript.answers if a.label == "admin make key")
    assert _hits(made.text(), transcript) == [f"api_key ({transcript.secrets['api_key']!r})"]


def test_no_secret_in_any_answer(transcript: Transcript) -> None:
    leaks = [f"{a.label} -> {hit}" for a in transcript.answers for hit in _hits(a.text(), transcript, a.shows)]
    assert leaks == [], "\n".join(leaks)


@pytest.mark.parametrize("log", ["stdout and stderr", "LOG_FILE"])
def test_no_secret_in_any_log(transcript: Transcript, log: str) -> None:
    text = transcript.logs[log]
    leaks = []
    for hit in _hits(text, transcript):
        piece = hit.split("(", 1)[1].rstrip(")").strip("'")
        line = next((ln for ln in text.splitlines() if piece in ln), "")
        leaks.append(f"{hit}: {line[:300]}")
    assert leaks == [], "\n".join(leaks)

