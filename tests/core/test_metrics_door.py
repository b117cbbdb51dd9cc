"""``/metrics`` at the front door: the admin token opens it, nothing else does, and it is off
(404) without one; the endpoint label of a request the front door answered by itself."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import ClientAuth, Endpoint, ReplyNow, RequestHead, Serve, ServerState, endpoint_label, front_door
from kiro_protocol.keys import KeyLimits, make_client_key

CLIENT = "client-token-0123456789"
ADMIN = "admin-token-0123456789abcdef"


def door(headers: tuple[tuple[str, str], ...], *, admin: str | None = ADMIN, method: str = "GET",
         auth: ClientAuth | None = None) -> ReplyNow | Serve:
    head = RequestHead(method=method, target="/metrics?x=1", headers=headers)
    return front_door(head, auth or ClientAuth(CLIENT, admin_token=admin), ServerState(), "ab" * 16)


def error_of(decision: ReplyNow | Serve) -> tuple[int, str, str]:
    assert isinstance(decision, ReplyNow)
    body = json.loads(decision.reply.body)
    return decision.reply.status, body["error"]["type"], body["error"]["message"]


@pytest.mark.parametrize("headers", [(("authorization", f"Bearer {ADMIN}"),), (("x-api-key", ADMIN),)])
def test_the_admin_token_opens_metrics(headers: tuple[tuple[str, str], ...]) -> None:
    decision = door(headers)
    assert isinstance(decision, Serve)
    assert decision.route.endpoint is Endpoint.METRICS and decision.key is None and not decision.session
    head = door(headers, method="HEAD")
    assert isinstance(head, Serve) and head.omit_body


def test_nothing_else_opens_it() -> None:
    status, kind, message = error_of(door(()))
    assert (status, kind) == (401, "authentication_error") and "Missing admin token" in message
    for headers in ((("x-api-key", CLIENT),), (("authorization", f"Bearer {CLIENT}"),), (("x-api-key", "guess"),)):
        status, kind, message = error_of(door(headers))
        assert (status, kind) == (401, "authentication_error")
        assert CLIENT not in message and "guess" not in message
    record, key = make_client_key("alice", random_bytes=bytes(range(32)), now=0.0, limits=KeyLimits())
    named = ClientAuth(CLIENT, keys={record.digest: record}, admin_token=ADMIN)
    assert error_of(door((("x-api-key", key),), auth=named))[:2] == (401, "authentication_error")


def test_metrics_are_off_without_an_admin_token() -> None:
    status, kind, message = error_of(door((("x-api-key", CLIENT),), admin=None))
    assert (status, kind) == (404, "not_found_error") and "set KIRO_ADMIN_TOKEN" in message
    assert error_of(door((), admin=""))[:2] == (404, "not_found_error")


def test_only_get_and_head() -> None:
    status, _, _ = error_of(door((("x-api-key", ADMIN),), method="POST"))
    assert status == 405


@pytest.mark.parametrize(
    ("method", "path", "label"),
    [
        ("POST", "/v1/messages", "messages"),
        ("POST", "/v1/chat/completions", "chat_completions"),
        ("POST", "/v1/responses", "responses"),
        ("GET", "/metrics", "metrics"),
        ("GET", "/health", "health"),
        ("GET", "/v1/messages", "other"),  # a method the path does not serve
        ("GET", "/wp-admin/setup.php", "other"),  # never a path a client chose
    ],
)
def test_endpoint_labels_are_bounded(method: str, path: str, label: str) -> None:
    assert endpoint_label(method, path) == label
