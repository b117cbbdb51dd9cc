"""The official ``anthropic`` SDK (and raw HTTP for what the SDK cannot send) on every way of serving."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from adapters.simulator import UNICODE_TEXT
from tests.sse_checker import check_anthropic_message, check_anthropic_stream
from tests.e2e.conformance.conftest import SERVERS, TOKEN, Gateway, Process, free_port, gateway_env, get, request, start

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"
BASH: Any = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}


def client(gateway: Gateway, *, api_key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=api_key or gateway.token, max_retries=0, timeout=60)


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def raw_stream_request(token: str, text: str, *, max_tokens: int = 64000, close: bool = False) -> bytes:
    """The bytes of a streaming POST /v1/messages asking ``text``, for tests that read the raw socket."""
    payload = json.dumps({"model": MODEL, "max_tokens": max_tokens, "stream": True, "messages": ask(text)}).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        + ("connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()
    return head + payload


def test_text_without_streaming(gateway: Gateway, marker: str) -> None:
    message = client(gateway).messages.create(model=MODEL, max_tokens=200, messages=ask(f"Say hello {marker}"))
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert len(gateway.generate_calls(marker)) == 1


def test_text_streaming(gateway: Gateway, marker: str) -> None:
    # Paced (5 ms between frames): the frames of one read leave as one delta, so an answer that
    # arrives at once is one piece; one that arrives over time is many.
    prompt = f"Say hello {marker} [[sim:slow:5]]"
    with client(gateway).messages.stream(model=MODEL, max_tokens=200, messages=ask(prompt)) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_tool_round_trip(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    messages: list[Any] = ask(f"Please use the Bash tool to run `echo {marker}`")
    with api.messages.stream(model=MODEL, max_tokens=500, messages=messages, tools=[BASH]) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "Bash"
    assert calls[0].input == {"command": f"echo {marker}"}
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": f"{marker}-output"}]},
    ]
    second = api.messages.create(model=MODEL, max_tokens=500, messages=messages, tools=[BASH])
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and f"{marker}-output" in second.content[0].text
    last = gateway.generate_calls(f"{marker}-output")[-1]["body"]
    results = last["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == calls[0].id


def test_parallel_tool_calls(gateway: Gateway, marker: str) -> None:
    message = client(gateway).messages.create(
        model=MODEL, max_tokens=800, messages=ask(f"[[sim:tools:3]] {marker}"), tools=[BASH]
    )
    calls = [b for b in message.content if b.type == "tool_use"]
    assert len(calls) == 3 and len({c.id for c in calls}) == 3
    assert all(isinstance(c.input, dict) and str(c.input["command"]).startswith("echo") for c in calls)


def test_thinking(gateway: Gateway, marker: str) -> None:
    with client(gateway).messages.stream(
        model=MODEL,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=ask(f"Think first {marker}"),
    ) as stream:
        final = stream.get_final_message()
    kinds = [b.type for b in final.content]
    assert kinds[0] == "thinking" and "text" in kinds
    assert final.content[0].type == "thinking" and final.content[0].thinking.strip()
    assert "<thinking>" not in json.dumps([b.model_dump() for b in final.content])


def test_unicode_split_across_frames(gateway: Gateway, marker: str) -> None:
    with client(gateway).messages.stream(model=MODEL, max_tokens=2000, messages=ask(f"[[sim:unicode]] {marker}")) as stream:
        text = "".join(stream.text_stream)
    assert UNICODE_TEXT in text


def test_a_2000_frame_answer_arrives_complete(gateway: Gateway, marker: str) -> None:
    with client(gateway).messages.stream(model=MODEL, max_tokens=64000, messages=ask(f"[[sim:long:2000]] {marker}")) as stream:
        text = "".join(stream.text_stream)
    assert [f"chunk-{i}" for i in range(1, 2001)] == text.split()[-2000:]


def test_stop_reason_max_tokens_only_when_the_answer_was_cut(gateway: Gateway, marker: str) -> None:
    # 300 frames are far more than max_tokens=50 by any estimate, but the answer is complete.
    api = client(gateway)
    with api.messages.stream(model=MODEL, max_tokens=50, messages=ask(f"[[sim:long:300]] {marker} a")) as stream:
        text = "".join(stream.text_stream)
        streamed = stream.get_final_message()
    assert text.split()[-300:] == [f"chunk-{i}" for i in range(1, 301)]
    assert streamed.stop_reason == "end_turn" and streamed.usage.output_tokens > 50
    whole = api.messages.create(model=MODEL, max_tokens=50, messages=ask(f"[[sim:long:300]] {marker} b"))
    assert whole.stop_reason == "end_turn"
    # Kiro's own length cut is the one max_tokens.
    cut = api.messages.create(model=MODEL, max_tokens=64000, messages=ask(f"[[sim:content-length-exceeded]] {marker}"))
    assert cut.stop_reason == "max_tokens" and cut.content


def test_stream_and_non_stream_report_the_same_usage(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    prompt = ask(f"Say hello {marker}")
    with api.messages.stream(model=MODEL, max_tokens=200, messages=prompt) as stream:
        streamed = stream.get_final_message()
    whole = api.messages.create(model=MODEL, max_tokens=200, messages=prompt)
    assert streamed.content[0].type == "text" and whole.content[0].type == "text"
    assert streamed.content[0].text == whole.content[0].text
    assert streamed.usage.model_dump() == whole.usage.model_dump()
    assert streamed.usage.input_tokens > 0


def test_models_and_count_tokens(gateway: Gateway) -> None:
    api = client(gateway)
    ids = [m.id for m in api.models.list()]
    assert MODEL in ids
    count = api.messages.count_tokens(model=MODEL, messages=ask("How many tokens is this?"))
    assert count.input_tokens > 0


def test_auth_failures(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gateway, api_key="wrong-token-0123456789").messages.create(model=MODEL, max_tokens=10, messages=ask("hi"))
    assert caught.value.status_code == 401
    status, _, body = request(gateway.port, "POST", "/v1/messages", b"{}", {"content-type": "application/json"})
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"


def test_malformed_json_and_bad_fields(gateway: Gateway) -> None:
    headers = {"x-api-key": gateway.token, "content-type": "application/json"}
    status, _, body = request(gateway.port, "POST", "/v1/messages?beta=true", b'{"model": ', headers)
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        client(gateway).messages.create(model=MODEL, max_tokens=-1, messages=ask("hi"))


def test_routes_head_options_404(gateway: Gateway) -> None:
    status, headers, _ = request(gateway.port, "HEAD", "/")
    assert status == 200
    status, headers, _ = request(
        gateway.port, "OPTIONS", "/v1/messages", headers={"origin": "http://x", "access-control-request-method": "POST"}
    )
    assert status in (200, 204) and headers["access-control-allow-origin"] == "*"
    status, headers, body = get(gateway.port, "/nowhere", {"x-api-key": gateway.token})
    assert status == 404 and json.loads(body)["type"] == "error"
    assert headers["x-request-id"]
    _, headers, _ = get(gateway.port, "/health", {"x-request-id": "conformance-id-1"})
    assert headers["x-request-id"] == "conformance-id-1"


def test_a_25_mb_body_is_413_and_the_server_stays_healthy(gateway: Gateway) -> None:
    body = b'{"model": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    headers = {"x-api-key": gateway.token, "content-type": "application/json"}
    try:
        status, _, answer = request(gateway.port, "POST", "/v1/messages", body, headers)
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail(f"{gateway.name} reset the connection instead of answering 413")
    assert status == 413 and json.loads(answer)["error"]["type"] == "request_too_large"
    assert get(gateway.port, "/health")[0] == 200


def test_client_disconnect_closes_the_upstream_request(gateway: Gateway, marker: str) -> None:
    raw = raw_stream_request(gateway.token, f"[[sim:long:400]] [[sim:slow:50]] {marker}")
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while b"content_block_delta" not in received:
            received += sock.recv(65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    closed_at = time.monotonic()
    outcome = None
    while time.monotonic() - closed_at < 3:
        calls = gateway.generate_calls(marker)
        outcome = calls[-1].get("outcome") if calls else None
        if outcome != "streaming":
            break
        time.sleep(0.05)
    assert outcome == "client-disconnected"
    assert time.monotonic() - closed_at < 1.5, "the upstream request outlived the client by more than a second"


# --- scenarios that change the account's state run on a gateway of their own -----------------


Launch = Callable[..., Gateway]


@pytest.fixture
def launch(gateway: Gateway) -> Iterator[Launch]:
    """Start another gateway of the same kind with extra settings (stopped after the test)."""
    processes: list[Process] = []

    def run(**settings: str) -> Gateway:
        template, h2c = SERVERS[gateway.name]
        port = free_port()
        command = [part.replace("{port}", str(port)) for part in template]
        process = start(gateway.name, command, port, gateway_env(gateway.simulator, **settings))
        processes.append(process)
        return Gateway(name=gateway.name, process=process, simulator=gateway.simulator, h2c=h2c)

    yield run
    for process in processes:
        process.stop()


@pytest.fixture
def fresh_gateway(launch: Launch) -> Gateway:
    return launch()


def test_a_throttled_account_fails_over_to_the_next(launch: Launch, marker: str) -> None:
    accounts = [
        {"auth": "Social", "refreshToken": f"aorAAAAAG-sim-throttle-{marker}"},
        {"auth": "Social", "refreshToken": f"aorAAAAAG-healthy-{marker}"},
    ]
    fresh = launch(KIRO_AUTH_TOKEN=json.dumps(accounts), TOKEN_SELECTION_STRATEGY="sequential")
    seen = {r["id"] for r in fresh.sim_requests()}
    with client(fresh).messages.stream(model=MODEL, max_tokens=200, messages=ask(f"Say hello {marker}")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    # The throttled call is refused before its body is read, so it is found by account, not by prompt.
    calls = [r for r in fresh.sim_requests() if r["id"] not in seen and r.get("endpoint") == "generateAssistantResponse"]
    assert [("sim-throttle" in str(r.get("account")), r.get("status")) for r in calls] == [(True, 429), (False, 200)]


def test_a_burst_of_429_on_every_account_is_waited_out(launch: Launch, marker: str) -> None:
    # Both accounts throttled for a second (Kiro in a burst): every request waits for the first
    # account to come back instead of failing at once, on every way of serving.
    import concurrent.futures

    accounts = [{"auth": "Social", "refreshToken": f"aorAAAAAG-burst-{i}-{marker}"} for i in range(2)]
    fresh = launch(KIRO_AUTH_TOKEN=json.dumps(accounts), KIRO_WAIT_FOR_ACCOUNT_SECONDS="20")
    with client(fresh).messages.stream(model=MODEL, max_tokens=50, messages=ask(f"warm up {marker}")) as stream:
        stream.get_final_message()  # both tokens fetched before the burst
    status, _, _ = request(fresh.simulator.port, "POST", "/_sim/throttle", json.dumps({"seconds": 1.0}).encode())
    assert status == 200

    def one(i: int) -> str | None:
        message = client(fresh).messages.create(model=MODEL, max_tokens=50, messages=ask(f"burst {i} {marker}"))
        return message.stop_reason

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        reasons = list(pool.map(one, range(8)))
    assert reasons == ["end_turn"] * 8
    served = [c for c in fresh.generate_calls(marker) if "burst" in json.dumps(c["body"]) and c.get("status") == 200]
    assert len(served) == 8


def test_disable_stream_sends_the_whole_answer_at_once(launch: Launch, marker: str) -> None:
    fresh = launch(DISABLE_STREAM="true")
    raw = raw_stream_request(fresh.token, f"[[sim:long:5]] [[sim:slow:100]] {marker}", max_tokens=500, close=True)
    with socket.create_connection(("127.0.0.1", fresh.port), timeout=20) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head_part, _, chunked = received.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head_part.lower()
    size_line, _, rest = chunked.partition(b"\r\n")
    first = rest[: int(size_line, 16)]
    # The whole event stream is the first chunk: nothing was sent while the answer was arriving.
    assert first.startswith(b"event: message_start") and first.rstrip().endswith(b'{"type":"message_stop"}')
    assert check_anthropic_stream(first).success


def _outcome(api: anthropic.Anthropic, text: str, *, stream: bool) -> tuple[str, int | None, str]:
    try:
        if stream:
            with api.messages.stream(model=MODEL, max_tokens=500, messages=ask(text), tools=[BASH]) as s:
                stop_reason = s.get_final_message().stop_reason
        else:
            stop_reason = api.messages.create(model=MODEL, max_tokens=500, messages=ask(text), tools=[BASH]).stop_reason
    except anthropic.APIStatusError as exc:
        body: Any = exc.body
        kind = body.get("error", {}).get("type") if isinstance(body, dict) else None
        return "error", exc.status_code, str(kind)
    return "ok", None, str(stop_reason)


def test_failure_scenarios(fresh_gateway: Gateway, marker: str) -> None:
    api = client(fresh_gateway)
    seen = {}
    for scenario in ("exception-mid-stream", "error-frame", "truncate:always", "bad-crc", "drop"):
        for stream in (True, False):
            seen[scenario, stream] = _outcome(api, f"[[sim:{scenario}]] {marker} {stream}", stream=stream)
    for scenario in ("exception-mid-stream", "error-frame", "truncate:always", "bad-crc", "drop"):
        # Mid-stream: the stream's error event (HTTP 200); without streaming a 5xx answer. (A tool
        # call cut once is asked again, see test_tool_call_recovery.py; cut every time, it fails.)
        assert seen[scenario, True] == ("error", 200, "api_error"), (scenario, seen[scenario, True])
        outcome, status, kind = seen[scenario, False]
        assert outcome == "error" and status is not None and status >= 500 and kind == "api_error", (scenario, status)
    assert _outcome(api, f"[[sim:input-too-long]] {marker}", stream=True) == ("error", 400, "invalid_request_error")
    assert _outcome(api, f"[[sim:improperly-formed]] {marker}", stream=False) == ("error", 400, "invalid_request_error")
    # The only account throttled: a 429 in Anthropic's shape.
    assert _outcome(api, f"[[sim:throttle]] {marker}", stream=True) == ("error", 429, "rate_limit_error")


def test_an_expired_access_token_is_refreshed(fresh_gateway: Gateway, marker: str) -> None:
    api = client(fresh_gateway)
    assert _outcome(api, f"before expiry {marker}", stream=True) == ("ok", None, "end_turn")
    assert request(fresh_gateway.simulator.port, "POST", "/_sim/expire-tokens", b"")[0] == 200
    assert _outcome(api, f"after expiry {marker}", stream=True) == ("ok", None, "end_turn")


def test_raw_streams_pass_the_strict_checker(gateway: Gateway, marker: str) -> None:
    headers = {"x-api-key": gateway.token, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"messages": ask(f"[[sim:tools:2]] {marker}"), "tools": [BASH]}, ["text", "tool_use", "tool_use"]),
        ({"messages": ask(f"Think {marker}"), "thinking": {"type": "enabled", "budget_tokens": 2000}}, ["thinking", "text"]),
    ]
    for extra, kinds in cases:
        body = {"model": MODEL, "max_tokens": 4000, "stream": True, **extra}
        status, answer_headers, data = request(gateway.port, "POST", "/v1/messages?beta=true", json.dumps(body).encode(), headers)
        assert status == 200 and answer_headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in answer_headers
        transcript = check_anthropic_stream(data)
        assert transcript.success and [b["type"] for b in transcript.content] == kinds
        status, _, data = request(gateway.port, "POST", "/v1/messages", json.dumps({**body, "stream": False}).encode(), headers)
        assert status == 200 and [b["type"] for b in check_anthropic_message(data)["content"]] == kinds


def test_sigterm_lets_a_running_stream_finish(fresh_gateway: Gateway, marker: str) -> None:
    raw = raw_stream_request(fresh_gateway.token, f"[[sim:long:30]] [[sim:slow:50]] {marker}", close=True)
    with socket.create_connection(("127.0.0.1", fresh_gateway.port), timeout=20) as sock:
        sock.sendall(raw)
        received = b""
        while b"content_block_delta" not in received:
            received += sock.recv(65536)
        fresh_gateway.process.popen.terminate()
        while chunk := sock.recv(65536):
            received += chunk
    events = received.partition(b"\r\n\r\n")[2]
    assert b"event: message_stop" in events and b"event: error" not in events
    assert b"chunk-30" in events
    # uvicorn re-raises the signal it handled once it is done, so it "dies" of SIGTERM after a clean shutdown.
    assert fresh_gateway.process.popen.wait(15) in (0, -signal.SIGTERM)


def test_without_accounts_answers_from_the_built_in_simulator(gateway: Gateway, marker: str) -> None:
    template, _ = SERVERS[gateway.name]
    port = free_port()
    # No accounts and no admin token (with one, accounts may be added at run time: real Kiro then).
    dropped = ("KIRO_AUTH", "KIRO_UPSTREAM", "KIRO_SOCIAL", "KIRO_IDC", "KIRO_ADMIN")
    env = {k: v for k, v in gateway_env(gateway.simulator).items() if not k.startswith(dropped)}
    process = start(gateway.name, [part.replace("{port}", str(port)) for part in template], port, env)
    try:
        status, _, body = get(port, "/health")
        health = json.loads(body)
        assert status == 200 and health["upstream"] == "simulator" and "simulator" in health["warning"]
        api = anthropic.Anthropic(base_url=process.url, api_key=TOKEN, max_retries=0)
        message = api.messages.create(model=MODEL, max_tokens=200, messages=ask(f"Say hello {marker}"))
        assert message.stop_reason == "end_turn" and message.content[0].type == "text"
        assert not gateway.generate_calls(marker)  # not the shared simulator: the built-in one
    finally:
        process.stop()
    assert "NO KIRO ACCOUNTS CONFIGURED" in process.output()


def test_past_the_shutdown_deadline_a_stream_ends_with_an_error_event(gateway: Gateway, marker: str) -> None:
    if gateway.name in ("uvicorn", "hypercorn"):
        pytest.skip(f"{gateway.name} owns its shutdown deadline (--timeout-graceful-shutdown / --graceful-timeout)")
    template, _ = SERVERS[gateway.name]
    port = free_port()
    env = gateway_env(gateway.simulator, SHUTDOWN_TIMEOUT_SECONDS="1")
    process = start(gateway.name, [part.replace("{port}", str(port)) for part in template], port, env)
    try:
        raw = raw_stream_request(TOKEN, f"[[sim:long:200]] [[sim:slow:50]] {marker}")
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(raw)
            received = b""
            while b"content_block_delta" not in received:
                received += sock.recv(65536)
            t0 = time.monotonic()
            process.popen.terminate()
            while chunk := sock.recv(65536):
                received += chunk
                if b"event: error" in received and received.endswith(b"0\r\n\r\n"):
                    break
        assert b"event: error" in received and b"overloaded_error" in received
        assert b"chunk-200" not in received
        assert time.monotonic() - t0 < 5
        assert process.popen.wait(10) == 0
    finally:
        process.stop()
