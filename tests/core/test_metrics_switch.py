"""METRICS_ENABLED=false: ``/metrics`` is 404 at the front door, even with the admin token."""

from __future__ import annotations

import json

from kiro_protocol import ClientAuth, ReplyNow, RequestHead, Serve, ServerState, front_door

ADMIN = "admin-token-0123456789abcdef"


def _door(*, metrics: bool) -> ReplyNow | Serve:
    head = RequestHead(method="GET", target="/metrics", headers=(("x-api-key", ADMIN),))
    return front_door(head, ClientAuth("client-token-0123456789", admin_token=ADMIN), ServerState(metrics=metrics), "ab")


def test_metrics_switched_off_is_not_found_whatever_the_token() -> None:
    decision = _door(metrics=False)
    assert isinstance(decision, ReplyNow) and decision.reply.status == 404
    error = json.loads(decision.reply.body)["error"]
    assert error["type"] == "not_found_error" and "METRICS_ENABLED=false" in error["message"]
    assert isinstance(_door(metrics=True), Serve)
