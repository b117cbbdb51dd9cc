"""HTTP/2 in cleartext (prior knowledge) on the servers that speak it: ``kiro2api serve`` and hypercorn."""

from __future__ import annotations

import json
import socket
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from tests.e2e.conformance.conftest import Gateway
from tests.openai_checker import check_openai_stream
from tests.sse_checker import check_anthropic_stream

pytestmark = pytest.mark.timeout(60)

MODEL = "claude-sonnet-4-5"


def h2_requests(port: int, requests: list[tuple[str, str, dict[str, str], bytes]]) -> list[tuple[int, bytes]]:
    """Send ``requests`` as concurrent streams on one connection; (status, body) of each."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    results: dict[int, dict[str, Any]] = {}
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for method, path, headers, body in requests:
            stream_id = conn.get_next_available_stream_id()
            pseudo = [(":method", method), (":path", path), (":scheme", "http"), (":authority", f"127.0.0.1:{port}")]
            conn.send_headers(stream_id, pseudo + list(headers.items()), end_stream=not body)
            if body:
                conn.send_data(stream_id, body, end_stream=True)
            results[stream_id] = {"status": 0, "body": bytearray(), "done": False}
        sock.sendall(conn.data_to_send())
        while not all(r["done"] for r in results.values()):
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = next(v for k, v in event.headers if k in (":status", b":status"))
                    results[event.stream_id]["status"] = int(status)
                elif isinstance(event, h2.events.DataReceived):
                    results[event.stream_id]["body"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    results[event.stream_id]["done"] = True
            sock.sendall(conn.data_to_send())
    return [(r["status"], bytes(r["body"])) for _, r in sorted(results.items())]


def test_concurrent_streams_over_h2c(gateway: Gateway, marker: str) -> None:
    if not gateway.h2c:
        pytest.skip(f"{gateway.name} serves HTTP/1.1 only")
    auth = {"x-api-key": gateway.token, "content-type": "application/json"}
    anthropic_body = {"model": MODEL, "max_tokens": 500, "stream": True, "messages": [{"role": "user", "content": f"Hi {marker}"}]}
    openai_body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"Hello {marker}"}]}
    answers = h2_requests(
        gateway.port,
        [
            ("POST", "/v1/messages", auth, json.dumps(anthropic_body).encode()),
            ("POST", "/v1/chat/completions", auth, json.dumps(openai_body).encode()),
            ("GET", "/health", {}, b""),
        ],
    )
    (status_a, body_a), (status_o, body_o), (status_h, body_h) = answers
    assert status_a == 200 and check_anthropic_stream(body_a).success
    assert status_o == 200 and check_openai_stream(body_o).success
    assert status_h == 200 and json.loads(body_h)["status"] == "ok"
