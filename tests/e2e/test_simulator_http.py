"""The simulator through real sockets on 127.0.0.1, driven by the core's own request builders."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpcore
import pytest

from adapters.simulator import (
    DEMO_IDC_CLIENT_ID,
    DEMO_IDC_CLIENT_SECRET,
    DEMO_IDC_REFRESH_TOKEN,
    DEMO_PROFILE_ARN,
    DEMO_REFRESH_TOKEN,
    SimulatorConfig,
    SimulatorHandle,
    gateway_environment,
    start_simulator,
)
from kiro_protocol.pool._credentials import AccountConfig, parse_accounts
from kiro_protocol.wire._eventstream import EventStreamDecoder
from kiro_protocol.wire._eventstream_errors import EventStreamError
from kiro_protocol.http._messages import HttpRequest, HttpResponse
from kiro_protocol.pool._kiro_identity import ClientVersions, Endpoints, generate_headers
from kiro_protocol.pool._refresh import RefreshedToken, RefreshFailure, build_refresh_request, parse_refresh_response
from kiro_protocol.pool._upstream_errors import FailureClass, classify_upstream_failure
from kiro_protocol.responses._upstream_events import AssistantResponse, ContextUsage, ToolUse, UpstreamEvent, UpstreamException
from kiro_protocol.responses._upstream_parse import parse_all, parse_message
from kiro_protocol.pool._usage_limits import build_usage_limits_request, parse_usage_limits
from tests.runtime.test_simulator_script import BASH, kiro_body

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
VERSIONS = ClientVersions()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[SimulatorHandle]:
    async with anyio.create_task_group() as tg:
        handle = await start_simulator(tg, config=SimulatorConfig(pace_ms=config.pop("pace_ms", 0), **config))
        try:
            yield handle
        finally:
            handle.stop()


class Client:
    """A small httpcore client that sends what the core builds, Host and Content-Length added."""

    def __init__(self, sim: SimulatorHandle) -> None:
        self.sim = sim
        self.pool = httpcore.AsyncConnectionPool()
        self.endpoints = Endpoints(api_base=sim.url, social_refresh=f"{sim.url}/refreshToken", idc_refresh=f"{sim.url}/token")

    def _headers(self, request: HttpRequest) -> list[tuple[str, str]]:
        headers = list(request.headers)
        names = {k.lower() for k, _ in headers}
        if "host" not in names:
            headers.append(("Host", f"127.0.0.1:{self.sim.port}"))
        if request.body and "content-length" not in names:
            headers.append(("Content-Length", str(len(request.body))))
        return headers

    async def send(self, request: HttpRequest) -> HttpResponse:
        response = await self.pool.request(
            request.method, request.url, headers=self._headers(request), content=request.body or None
        )
        headers = tuple((k.decode().lower(), v.decode()) for k, v in response.headers)
        return HttpResponse(status=response.status, headers=headers, body=response.content)

    async def call(
        self, method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
    ) -> HttpResponse:
        default = [("Content-Type", "application/json")] if body else []
        return await self.send(HttpRequest(method=method, url=self.sim.url + path, headers=tuple(default) + tuple(headers), body=body))

    async def json(self, method: str, path: str, body: object = None) -> Any:
        response = await self.call(method, path, b"" if body is None else json.dumps(body).encode())
        assert response.status == 200, response.body
        return json.loads(response.body)

    async def refresh(self, account: AccountConfig, token: str | None = None) -> RefreshedToken | RefreshFailure:
        request = build_refresh_request(
            account,
            refresh_token=token or account.refresh_token,
            versions=VERSIONS,
            endpoints=self.endpoints,
            invocation_id="0b0c4a7e-0000-4000-8000-000000000001",
        )
        return parse_refresh_response(await self.send(request), now=time.time(), previous_refresh_token=token or account.refresh_token)

    async def access_token(self, account: AccountConfig) -> str:
        refreshed = await self.refresh(account)
        assert isinstance(refreshed, RefreshedToken), refreshed
        return refreshed.access_token

    def generate_request(self, account: AccountConfig, access_token: str, body: dict[str, Any] | bytes) -> HttpRequest:
        url = self.endpoints.generate_url("us-east-1")
        headers = generate_headers(
            account=account, access_token=access_token, url=url, invocation_id="inv-1", versions=VERSIONS
        )
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return HttpRequest(method="POST", url=url, headers=headers, body=raw)

    async def generate(self, account: AccountConfig, access_token: str, body: dict[str, Any] | bytes) -> HttpResponse:
        return await self.send(self.generate_request(account, access_token, body))

    async def requests(self) -> list[dict[str, Any]]:
        document = await self.json("GET", "/_sim/requests")
        records: list[dict[str, Any]] = document["requests"]
        return records

    async def aclose(self) -> None:
        await self.pool.aclose()


@contextlib.asynccontextmanager
async def running(**config: Any) -> AsyncIterator[Client]:
    async with simulator(**config) as sim:
        client = Client(sim)
        try:
            yield client
        finally:
            await client.aclose()


def social(token: str = DEMO_REFRESH_TOKEN) -> AccountConfig:
    return parse_accounts(json.dumps([{"auth": "Social", "refreshToken": token}]))[0]


def idc(token: str = DEMO_IDC_REFRESH_TOKEN, secret: str = DEMO_IDC_CLIENT_SECRET) -> AccountConfig:
    entry = {"auth": "IdC", "refreshToken": token, "clientId": DEMO_IDC_CLIENT_ID, "clientSecret": secret}
    return parse_accounts(json.dumps([entry]))[0]


def events(body: bytes) -> list[UpstreamEvent]:
    return parse_all(body)


def text(evs: list[UpstreamEvent]) -> str:
    return "".join(e.content for e in evs if isinstance(e, AssistantResponse))


# -- refresh, usage, models ----------------------------------------------------------------------


async def test_social_refresh_usage_and_generate_end_to_end() -> None:
    async with running() as client:
        account = social()
        refreshed = await client.refresh(account)
        assert isinstance(refreshed, RefreshedToken)
        assert refreshed.profile_arn == DEMO_PROFILE_ARN
        assert refreshed.refresh_token is not None and refreshed.refresh_token.startswith(DEMO_REFRESH_TOKEN)
        assert 3590 < refreshed.expires_at - time.time() <= 3600

        usage = await client.send(
            build_usage_limits_request(
                account,
                access_token=refreshed.access_token,
                profile_arn=refreshed.profile_arn,
                versions=VERSIONS,
                endpoints=client.endpoints,
                invocation_id="inv-2",
            )
        )
        assert usage.status == 200
        limits = parse_usage_limits(usage.body)
        assert limits.remaining == 550 and limits.subscription_title == "KIRO PRO" and limits.next_reset_at

        response = await client.generate(account, refreshed.access_token, kiro_body("Hello simulator"))
        assert response.status == 200
        assert dict(response.headers)["content-type"] == "application/vnd.amazon.eventstream"
        evs = events(response.body)
        assert "Hello simulator" in text(evs) and isinstance(evs[-1], ContextUsage)

        usage = await client.send(
            build_usage_limits_request(
                account,
                access_token=refreshed.access_token,
                profile_arn=None,
                versions=VERSIONS,
                endpoints=client.endpoints,
                invocation_id="inv-3",
            )
        )
        assert parse_usage_limits(usage.body).used == 1  # one generate call counted

        records = await client.requests()
        assert [r["endpoint"] for r in records] == ["refreshToken", "getUsageLimits", "generateAssistantResponse", "getUsageLimits"]
        generate = records[2]
        assert generate["status"] == 200 and generate["outcome"] == "complete"
        assert generate["body"]["conversationState"]["currentMessage"]["userInputMessage"]["content"] == "Hello simulator"
        assert generate["headers"]["x-amzn-kiro-agent-mode"] == "vibe"
        assert "authorization" not in generate["headers"]
        dump = json.dumps(records)
        assert DEMO_REFRESH_TOKEN not in dump and refreshed.access_token not in dump


async def test_rotated_refresh_token_keeps_working_and_revoke_rotated_kills_the_old_one() -> None:
    async with running(revoke_rotated=True) as client:
        account = social()
        first = await client.refresh(account)
        assert isinstance(first, RefreshedToken) and first.refresh_token
        again = await client.refresh(account)  # the original was rotated away
        assert isinstance(again, RefreshFailure) and again.permanent and again.status == 401
        rotated = await client.refresh(account, first.refresh_token)
        assert isinstance(rotated, RefreshedToken)
        assert rotated.refresh_token and rotated.refresh_token != first.refresh_token


async def test_no_rotation_returns_the_same_refresh_token() -> None:
    async with running(rotate_refresh_tokens=False) as client:
        refreshed = await client.refresh(social())
        assert isinstance(refreshed, RefreshedToken) and refreshed.refresh_token is None  # not a rotation


async def test_idc_refresh() -> None:
    async with running() as client:
        refreshed = await client.refresh(idc())
        assert isinstance(refreshed, RefreshedToken) and refreshed.profile_arn is None
        response = await client.generate(idc(), refreshed.access_token, kiro_body("hi"))
        assert response.status == 200
        bad_secret = await client.refresh(idc(secret="an-invalid-client-secret"))
        assert isinstance(bad_secret, RefreshFailure) and bad_secret.permanent and bad_secret.status == 401
        dead = await client.refresh(idc(token="aorAAAAAG-this-one-is-invalid-now"))
        assert isinstance(dead, RefreshFailure) and dead.permanent and dead.status == 400
        assert "invalid_grant" in dead.message
        wrong_grant = await client.call(
            "POST",
            "/token",
            json.dumps(
                {"clientId": "a", "clientSecret": "b", "grantType": "authorization_code", "refreshToken": DEMO_IDC_REFRESH_TOKEN}
            ).encode(),
        )
        assert wrong_grant.status == 400 and json.loads(wrong_grant.body)["error"] == "unsupported_grant_type"
        records = await client.requests()
        assert all(r["body"].get("clientSecret") in ("***", None) for r in records if r["endpoint"] == "token")
        assert DEMO_IDC_CLIENT_SECRET not in json.dumps(records)


async def test_invalid_revoked_and_malformed_social_refresh_tokens() -> None:
    async with running() as client:
        invalid = await client.refresh(social("aorAAAAAG-invalid-refresh-token"))
        assert isinstance(invalid, RefreshFailure) and invalid.permanent
        await client.json("POST", "/_sim/revoke", {"refreshToken": DEMO_REFRESH_TOKEN})
        revoked = await client.refresh(social())
        assert isinstance(revoked, RefreshFailure) and revoked.permanent
        short = await client.call("POST", "/refreshToken", b'{"refreshToken":"too short"}')
        assert short.status == 400
        failure = parse_refresh_response(short, now=0, previous_refresh_token="too short")
        assert isinstance(failure, RefreshFailure) and not failure.permanent
        not_json = await client.call("POST", "/refreshToken", b"{nope")
        assert not_json.status == 400


async def test_models_list_needs_a_token() -> None:
    async with running() as client:
        assert (await client.call("GET", "/ListAvailableModels?origin=AI_EDITOR")).status == 403
        token = await client.access_token(social())
        response = await client.call("GET", "/ListAvailableModels?origin=AI_EDITOR", headers=[("Authorization", f"Bearer {token}")])
        document = json.loads(response.body)
        ids = [m["modelId"] for m in document["models"]]
        assert "claude-sonnet-4.5" in ids and document["defaultModel"]["modelId"] == "auto"
        assert all(m["tokenLimits"]["maxInputTokens"] >= 200_000 for m in document["models"])


async def test_mcp_web_search() -> None:
    async with running() as client:
        call = {
            "id": "web_search_tooluse_abc_1_x",
            "jsonrpc": "2.0",
            "method": "tools/call",
            "params": {"name": "web_search", "arguments": {"query": "kiro gateway"}},
        }
        raw = json.dumps(call).encode()
        assert (await client.call("POST", "/mcp", raw)).status == 403
        token = await client.access_token(social())
        auth = [("Authorization", f"Bearer {token}")]
        answer_body = json.loads((await client.call("POST", "/mcp", raw, auth)).body)
        assert answer_body["id"] == call["id"] and answer_body["jsonrpc"] == "2.0"
        results = json.loads(answer_body["result"]["content"][0]["text"])["results"]
        assert len(results) == 3 and all({"title", "url", "snippet"} <= set(r) for r in results)
        assert "kiro gateway" in results[0]["snippet"]
        call["params"] = {"name": "web_fetch", "arguments": {}}
        wrong = json.loads((await client.call("POST", "/mcp", json.dumps(call).encode(), auth)).body)
        assert wrong["error"]["code"] == -32602 and "result" not in wrong


def _search_call(query: str) -> bytes:
    params = {"name": "web_search", "arguments": {"query": query}}
    return json.dumps({"id": "web_search_tooluse_x", "jsonrpc": "2.0", "method": "tools/call", "params": params}).encode()


async def test_mcp_results_derive_from_the_query_and_carry_kiros_fields() -> None:
    async with running() as client:
        auth = [("Authorization", f"Bearer {await client.access_token(social())}")]
        answer = json.loads((await client.call("POST", "/mcp", _search_call("Kiro Gateway  notes"), auth)).body)
        document = json.loads(answer["result"]["content"][0]["text"])
        first = document["results"][0]
        assert first["url"] == "https://example.com/search/kiro-gateway-notes/1"
        assert first["title"].startswith("Kiro Gateway notes") and isinstance(first["publishedDate"], int)
        assert document["query"] == "Kiro Gateway  notes"


async def test_mcp_failure_markers() -> None:
    async with running() as client:
        auth = [("Authorization", f"Bearer {await client.access_token(social())}")]
        rpc = json.loads((await client.call("POST", "/mcp", _search_call("q [[sim:search-error]]"), auth)).body)
        assert rpc["error"]["code"] == -32603 and "result" not in rpc
        garbage = await client.call("POST", "/mcp", _search_call("q [[sim:search-error:garbage]]"), auth)
        assert garbage.status == 200 and garbage.body.startswith(b"<html>")
        tool = json.loads((await client.call("POST", "/mcp", _search_call("q [[sim:search-error:tool]]"), auth)).body)
        assert tool["result"]["isError"] is True
        inner = json.loads((await client.call("POST", "/mcp", _search_call("q [[sim:search-error:results]]"), auth)).body)
        assert "error" in json.loads(inner["result"]["content"][0]["text"])
        throttled = await client.call("POST", "/mcp", _search_call("q [[sim:throttle:once]]"), auth)
        assert throttled.status == 429 and b"ThrottlingException" in throttled.body
        again = await client.call("POST", "/mcp", _search_call("q [[sim:throttle:once]]"), auth)
        assert again.status == 200
        broken = await client.call("POST", "/mcp", _search_call("q [[sim:server-error]]"), auth)
        assert broken.status == 500


# -- generateAssistantResponse validation ----------------------------------------------------------


async def test_generate_needs_a_valid_unexpired_token() -> None:
    async with running(token_ttl=1.0) as client:
        account = social()
        body = kiro_body("hi")
        missing = await client.call("POST", "/generateAssistantResponse", json.dumps(body).encode())
        for response in (missing, await client.generate(account, "aoa-never-issued", body)):
            assert response.status == 403
            assert classify_upstream_failure(403, response.body).failure_class is FailureClass.INVALID_TOKEN
        token = await client.access_token(account)
        assert (await client.generate(account, token, body)).status == 200
        await anyio.sleep(1.1)
        assert (await client.generate(account, token, body)).status == 403  # expired
        fresh = await client.access_token(account)
        assert (await client.generate(account, fresh, body)).status == 200


async def test_expire_tokens_control_route() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        assert (await client.json("POST", "/_sim/expire-tokens"))["expired"] == 1
        assert (await client.generate(account, token, kiro_body("hi"))).status == 403


async def test_linter_violation_is_improperly_formed_request() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        body = kiro_body("hi")
        body["conversationState"]["history"] = [
            {"userInputMessage": {"content": "a", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
            {"userInputMessage": {"content": "b", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
        ]
        response = await client.generate(account, token, body)
        assert response.status == 400
        assert response.body == b'{"message":"Improperly formed request.","reason":null}'
        record = (await client.requests())[-1]
        assert record["outcome"] == "lint" and {v["rule"] for v in record["violations"]} == {"alternation"}


async def test_oversized_body_is_input_too_long() -> None:
    async with running(max_body_bytes=2_000) as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body("x " * 2_000))
        assert response.status == 400
        assert json.loads(response.body)["reason"] == "CONTENT_LENGTH_EXCEEDS_THRESHOLD"
        assert classify_upstream_failure(400, response.body).failure_class is FailureClass.INPUT_TOO_LONG


async def test_lone_surrogates_are_answered_and_recorded() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        raw = json.dumps(kiro_body("hi SURROGATE there")).replace("SURROGATE", "\\ud800").encode()
        response = await client.generate(account, token, raw)
        assert response.status == 200
        assert "hi \ufffd there" in text(events(response.body))
        record = (await client.requests())[-1]
        assert record["body"]["conversationState"]["currentMessage"]["userInputMessage"]["content"] == "hi \ud800 there"


async def test_bad_json_content_type_and_model() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        assert (await client.generate(account, token, b"{not json")).status == 400
        assert (await client.generate(account, token, b"[1]")).status == 400
        plain = await client.call("POST", "/generateAssistantResponse", b"{}", [("Authorization", f"Bearer {token}")])
        assert plain.status == 400  # linted: no conversationState
        wrong_type = client.generate_request(account, token, kiro_body("hi"))
        headers = tuple(("Content-Type", "text/plain") if k == "Content-Type" else (k, v) for k, v in wrong_type.headers)
        response = await client.send(HttpRequest(method="POST", url=wrong_type.url, headers=headers, body=wrong_type.body))
        assert response.status == 400
        body = kiro_body("hi")
        body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = "gpt-4o"
        response = await client.generate(account, token, body)
        assert response.status == 400 and json.loads(response.body)["reason"] == "INVALID_MODEL_ID"


# -- scenarios ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "status", "failure_class"),
    [
        ("throttle", 429, FailureClass.THROTTLED),
        ("expired-token", 403, FailureClass.INVALID_TOKEN),
        ("quota", 402, FailureClass.QUOTA_EXHAUSTED),
        ("server-error", 500, FailureClass.SERVER_ERROR),
        ("server-error:503", 503, FailureClass.SERVER_ERROR),
        ("input-too-long", 400, FailureClass.INPUT_TOO_LONG),
    ],
)
async def test_http_failure_scenarios(marker: str, status: int, failure_class: FailureClass) -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body(f"hello [[sim:{marker}]]"))
        assert response.status == status
        assert dict(response.headers)["content-type"] == "application/json"
        assert classify_upstream_failure(status, response.body).failure_class is failure_class
        record = (await client.requests())[-1]
        assert record["scenario"] == marker.split(":")[0] and record["status"] == status


async def test_once_fails_the_first_request_and_serves_the_retry() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        body = kiro_body("please answer [[sim:throttle:once]]")
        assert (await client.generate(account, token, body)).status == 429
        assert (await client.generate(account, token, body)).status == 200
        assert (await client.generate(account, token, body)).status == 200
        await client.json("POST", "/_sim/reset")
        token = await client.access_token(account)
        assert (await client.generate(account, token, body)).status == 429


async def test_exception_and_error_frames_mid_stream() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body("hello friend [[sim:exception-mid-stream]]"))
        evs = events(response.body)
        assert response.status == 200 and isinstance(evs[0], AssistantResponse)
        assert isinstance(evs[-1], UpstreamException)
        response = await client.generate(account, token, kiro_body("hello friend [[sim:error-frame]]"))
        assert response.status == 200 and type(events(response.body)[-1]).__name__ == "UpstreamError"


async def test_truncated_tool_call() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body("use the Bash tool [[sim:truncate]]", tools=[BASH]))
        evs = events(response.body)
        calls = [e for e in evs if isinstance(e, ToolUse)]
        assert calls and not any(c.stop for c in calls) and isinstance(evs[-1], ToolUse)


async def test_bad_crc_arrives_mid_stream() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body("hello there friend [[sim:bad-crc]]"))
        assert response.status == 200
        decoder = EventStreamDecoder()
        decoder.receive_data(response.body)
        decoded = []
        with pytest.raises(EventStreamError):
            while True:
                decoded.append(parse_message(decoder.next_event()))  # type: ignore[arg-type]
        assert decoded and all(isinstance(e, AssistantResponse) for e in decoded)


async def test_drop_closes_the_connection_mid_frame() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        request = client.generate_request(account, token, kiro_body("hello there friend [[sim:drop]]"))
        received = b""
        with pytest.raises(httpcore.RemoteProtocolError):
            async with client.pool.stream(request.method, request.url, headers=client._headers(request), content=request.body) as response:
                assert response.status == 200
                async for chunk in response.aiter_stream():
                    received += chunk
        decoder = EventStreamDecoder()
        decoder.receive_data(received)
        decoder.receive_data(b"")
        with pytest.raises(EventStreamError):
            while True:
                parse_message(decoder.next_event())  # type: ignore[arg-type]
        assert (await client.requests())[-1]["outcome"] == "dropped"


async def test_long_unicode_and_pacing() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        response = await client.generate(account, token, kiro_body("[[sim:long:2000]]"))
        texts = [e for e in events(response.body) if isinstance(e, AssistantResponse)]
        assert len(texts) == 2000 and texts[-1].content == "chunk-2000 "
        response = await client.generate(account, token, kiro_body("[[sim:unicode]]"))
        from adapters.simulator import UNICODE_TEXT

        assert text(events(response.body)) == UNICODE_TEXT
        started = time.monotonic()
        response = await client.generate(account, token, kiro_body("hi [[sim:slow:40]]"))
        frames = len(events(response.body))
        assert time.monotonic() - started >= 0.04 * (frames - 1) * 0.9


async def test_stall_pauses_the_stream_once() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        request = client.generate_request(account, token, kiro_body("a question with several words [[sim:stall:600]]"))
        arrivals: list[float] = []
        async with client.pool.stream(request.method, request.url, headers=client._headers(request), content=request.body) as response:
            async for _ in response.aiter_stream():
                arrivals.append(time.monotonic())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert max(gaps) >= 0.55 and sorted(gaps)[-2] < 0.4  # one long pause, not many


async def test_default_pace_spreads_frames_in_time() -> None:
    async with running(pace_ms=20) as client:
        account = social()
        token = await client.access_token(account)
        request = client.generate_request(account, token, kiro_body("a question of some length to answer"))
        arrivals: list[float] = []
        async with client.pool.stream(request.method, request.url, headers=client._headers(request), content=request.body) as response:
            async for _ in response.aiter_stream():
                arrivals.append(time.monotonic())
        assert len(arrivals) > 5 and arrivals[-1] - arrivals[0] >= 0.02 * (len(arrivals) - 2)


async def test_tool_round_trip_is_visible_in_sim_requests() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        first = await client.generate(account, token, kiro_body("Use the Bash tool to run `echo sim-rt`", tools=[BASH]))
        calls = [e for e in events(first.body) if isinstance(e, ToolUse)]
        tid = calls[0].tool_use_id
        assert json.loads("".join(c.input for c in calls)) == {"command": "echo sim-rt"}
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": "Use the Bash tool to run `echo sim-rt`"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "echo sim-rt"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "sim-rt"}]},
        ]
        second = await client.generate(account, token, kiro_body(messages, tools=[BASH]))
        assert "sim-rt" in text(events(second.body))
        records = await client.requests()
        sent = records[-2]["sent"]["toolCalls"]
        assert sent == [{"toolUseId": tid, "name": "Bash", "input": {"command": "echo sim-rt"}}]
        results = records[-1]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
        assert results[0]["toolUseId"] == tid and results[0]["content"] == [{"text": "sim-rt"}]


async def test_account_tags_fail_every_call_of_that_account() -> None:
    async with running() as client:
        throttled = social("aorAAAAAG-sim-throttle-account-0001")
        token = await client.access_token(throttled)
        for _ in range(2):
            assert (await client.generate(throttled, token, kiro_body("hi"))).status == 429
        healthy = social()
        assert (await client.generate(healthy, await client.access_token(healthy), kiro_body("hi"))).status == 200
        quota = social("aorAAAAAG-sim-quota-account-0002")
        quota_token = await client.access_token(quota)
        assert (await client.generate(quota, quota_token, kiro_body("hi"))).status == 402
        usage = await client.call("GET", "/getUsageLimits?origin=AI_EDITOR", headers=[("Authorization", f"Bearer {quota_token}")])
        assert parse_usage_limits(usage.body).remaining == 0
        per_account = (await client.json("GET", "/_sim/requests"))["perAccount"]
        assert sorted(per_account.values()) == [1, 1, 2]
        assert any("[sim-throttle]" in label for label in per_account)


async def test_client_disconnect_is_recorded() -> None:
    async with running(pace_ms=50) as client:
        account = social()
        token = await client.access_token(account)
        request = client.generate_request(account, token, kiro_body("[[sim:long:100]]"))
        async with client.pool.stream(request.method, request.url, headers=client._headers(request), content=request.body) as response:
            async for _ in response.aiter_stream():
                break
        deadline = time.monotonic() + 1.0
        outcome = None
        while time.monotonic() < deadline:
            outcome = (await client.requests())[-1]["outcome"]
            if outcome == "client-disconnected":
                break
            await anyio.sleep(0.05)
        assert outcome == "client-disconnected"


async def test_routes_and_control() -> None:
    async with running() as client:
        assert (await client.json("GET", "/health"))["status"] == "ok"
        assert (await client.call("GET", "/nowhere")).status == 404
        assert (await client.call("GET", "/generateAssistantResponse")).status == 405
        # Any base path works: the operation is the last segment.
        assert (await client.call("POST", "/some/prefix/refreshToken", json.dumps({"refreshToken": DEMO_REFRESH_TOKEN}).encode())).status == 200
        assert (await client.call("POST", "/_sim/revoke", b"{}")).status == 400
        assert len(await client.requests()) == 1
        await client.json("POST", "/_sim/reset")
        document = await client.json("GET", "/_sim/requests")
        assert document["requests"] == [] and document["issuedTokens"] == 0


async def test_history_keeps_the_last_n() -> None:
    async with running(history_size=3) as client:
        for _ in range(5):
            await client.refresh(social())
        records = await client.requests()
        assert [r["id"] for r in records] == [3, 4, 5]


def test_gateway_environment_points_every_url_at_the_simulator() -> None:
    env = gateway_environment("http://127.0.0.1:9999")
    assert env["KIRO_UPSTREAM_URL"] == "http://127.0.0.1:9999"
    assert env["KIRO_SOCIAL_REFRESH_URL"] == "http://127.0.0.1:9999/refreshToken"
    assert env["KIRO_IDC_REFRESH_URL"] == "http://127.0.0.1:9999/token"
    accounts = parse_accounts(env["KIRO_AUTH_TOKEN"])
    assert accounts[0].refresh_token == DEMO_REFRESH_TOKEN


@pytest.mark.timeout(30)
def test_python_m_adapters_simulator_runs_until_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert f"listening on http://127.0.0.1:{port}" in banner
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and b"simulator" in reply
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_command_line_values_exit_2() -> None:
    from adapters.simulator import main

    assert main(["--pace-ms", "-1"]) == 2


async def test_the_gateways_upstream_client_talks_to_the_simulator() -> None:
    from adapters.runtime.upstream import UpstreamClient, UpstreamConnectionError

    async with running() as helper, UpstreamClient() as upstream:
        account = social()
        refresh = build_refresh_request(
            account, refresh_token=account.refresh_token, versions=VERSIONS, endpoints=helper.endpoints, invocation_id="i"
        )
        refreshed = parse_refresh_response(
            await upstream.send(refresh, account=account.account_id), now=time.time(), previous_refresh_token=account.refresh_token
        )
        assert isinstance(refreshed, RefreshedToken)
        request = helper.generate_request(account, refreshed.access_token, kiro_body("Hello through the runtime client"))
        async with upstream.stream(request, account=account.account_id) as answer:
            assert answer.status == 200
            with answer.deadline():
                data = b"".join([chunk async for chunk in answer.chunks])
        assert "Hello through the runtime client" in text(events(data))
        dropped = helper.generate_request(account, refreshed.access_token, kiro_body("hello there friend [[sim:drop]]"))
        with pytest.raises(UpstreamConnectionError):
            async with upstream.stream(dropped, account=account.account_id) as answer:
                assert answer.status == 200
                with answer.deadline():
                    async for _ in answer.chunks:
                        pass


async def test_http2_prior_knowledge_and_drop_as_a_stream_reset() -> None:
    async with running() as client, httpcore.AsyncConnectionPool(http1=False, http2=True) as h2:
        account = social()
        token = await client.access_token(account)
        request = client.generate_request(account, token, kiro_body("hi over h2"))
        response = await h2.request("POST", request.url, headers=client._headers(request), content=request.body)
        assert response.status == 200 and response.extensions["http_version"] == b"HTTP/2"
        assert "hi over h2" in text(events(response.content))
        request = client.generate_request(account, token, kiro_body("hi there friend [[sim:drop]]"))
        with pytest.raises(httpcore.RemoteProtocolError):
            await h2.request("POST", request.url, headers=client._headers(request), content=request.body)
        assert (await client.requests())[-1]["outcome"] == "dropped"


def test_gateway_settings_point_a_settings_object_at_the_simulator() -> None:
    from adapters.runtime.settings import load_settings
    from adapters.simulator import gateway_settings

    settings = load_settings(environ={"KIRO_CLIENT_TOKEN": "client-token-0123456789"})
    pointed = gateway_settings(settings, "http://127.0.0.1:9999")
    assert pointed.upstream_base() == "http://127.0.0.1:9999"
    assert pointed.refresh_url("social") == "http://127.0.0.1:9999/refreshToken"
    assert pointed.refresh_url("idc") == "http://127.0.0.1:9999/token"
    assert pointed.state_url == "memory://" and pointed.client_token == settings.client_token
    assert pointed.auth_token_json is not None
    assert parse_accounts(pointed.auth_token_json)[0].refresh_token == DEMO_REFRESH_TOKEN


async def test_the_gateway_serves_from_simulated_upstream(tmp_path: Path) -> None:
    """``serve`` without accounts: the gateway in front of an in-process simulator (anthropic SDK)."""
    import anthropic

    from adapters.anyio_server import serve_settings
    from adapters.runtime.settings import load_settings
    from adapters.simulator import simulated_upstream

    settings = load_settings(
        environ={"KIRO_CLIENT_TOKEN": "client-token-0123456789", "PORT": "0", "LOG_LEVEL": "warning"}, cwd=tmp_path
    )
    assert settings.auth_token_json is None
    async with simulated_upstream(settings, config=SimulatorConfig(pace_ms=0)) as (sim, demo), anyio.create_task_group() as tg:
        server = await tg.start(lambda task_status: serve_settings(demo, signals=False, task_status=task_status))

        def ask() -> tuple[str, str]:
            client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{server.port}", api_key="client-token-0123456789", max_retries=0)
            message = client.messages.create(
                model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hello gateway"}]
            )
            block = message.content[0]
            return message.stop_reason or "", block.text if block.type == "text" else ""

        stop, answer_text = await anyio.to_thread.run_sync(ask)
        assert stop == "end_turn" and "hello gateway" in answer_text and "simulator" in answer_text
        assert [r["endpoint"] for r in sim.state.records][-1] == "generateAssistantResponse"
        server.shutdown()


async def test_a_free_tier_account_lists_no_opus_and_is_refused_it_like_kiro() -> None:
    from kiro_protocol.pool import build_models_request, parse_available_models

    async with running() as client:
        free = social("aorAAAAAG-sim-free-account-for-tier-tests")
        paid = social()
        catalogue: dict[str, tuple[str, ...] | None] = {}
        for name, account in (("free", free), ("paid", paid)):
            token = await client.access_token(account)
            request = build_models_request(
                account, access_token=token, profile_arn=None, versions=VERSIONS, endpoints=client.endpoints, invocation_id="i"
            )
            catalogue[name] = parse_available_models((await client.send(request)).body)
            usage = await client.send(
                build_usage_limits_request(
                    account, access_token=token, profile_arn=None, versions=VERSIONS, endpoints=client.endpoints, invocation_id="u"
                )
            )
            title = parse_usage_limits(usage.body).subscription_title
            assert title == ("KIRO FREE" if name == "free" else "KIRO PRO")
            body = kiro_body("Hello")
            body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = "claude-opus-4.5"
            answer = await client.generate(account, token, body)
            assert answer.status == (400 if name == "free" else 200)
            if name == "free":
                assert json.loads(answer.body)["reason"] == "INVALID_MODEL_ID"
        assert catalogue["free"] is not None and catalogue["paid"] is not None
        assert not any("opus" in m for m in catalogue["free"]) and "claude-sonnet-4.5" in catalogue["free"]
        assert "claude-opus-4.5" in catalogue["paid"]


async def test_the_throttle_window_answers_429_to_every_account_until_it_ends() -> None:
    async with running() as client:
        account = social()
        token = await client.access_token(account)
        await client.json("POST", "/_sim/throttle", {"seconds": 0.3})
        throttled = await client.generate(account, token, kiro_body("Hello"))
        assert throttled.status == 429 and b"ThrottlingException" in throttled.body
        await anyio.sleep(0.35)
        assert (await client.generate(account, token, kiro_body("Hello"))).status == 200
        assert (await client.call("POST", "/_sim/throttle", b'{"seconds": -1}')).status == 400
