"""``/health``: readiness (the status code an orchestrator reads) and liveness with ``?live``."""

from __future__ import annotations

import json

import pytest

from kiro_protocol import HealthFacts, health_reply
from kiro_protocol.http import wants_liveness


def _answer(target: str, **facts: object) -> tuple[int, dict[str, object]]:
    reply = health_reply(target, HealthFacts(version="9.9", **facts))  # type: ignore[arg-type]
    assert ("content-type", "application/json") in reply.headers
    return reply.status, json.loads(reply.body)


def test_ready_with_usable_accounts() -> None:
    status, body = _answer("/health", accounts={"configured": 2, "usable": 2})
    assert status == 200 and body["status"] == "ok" and body["version"] == "9.9"
    assert body["accounts"] == {"configured": 2, "usable": 2}


def test_no_account_configured_is_not_ready() -> None:
    status, body = _answer("/health", accounts={"configured": 0})
    assert status == 503 and body["status"] == "not_ready"
    assert "KIRO_AUTH_TOKEN" in str(body["reason"]) and "admin API" not in str(body["reason"])
    status, body = _answer("/health", accounts={"configured": 0, "usable": 0}, admin_enabled=True)
    assert status == 503 and "admin API" in str(body["reason"])


def test_accounts_all_out_for_now_stay_routable() -> None:
    # They come back by themselves (throttling, a refresh): requests wait or get 429 meanwhile.
    status, body = _answer("/health", accounts={"configured": 1, "usable": 0, "unavailable": 1})
    assert status == 200 and body["status"] == "degraded"


def test_shutdown_and_an_unreadable_store_are_503() -> None:
    assert _answer("/health", shutting_down=True, accounts={"configured": 1, "usable": 1})[0] == 503
    status, body = _answer("/health", store_unavailable=True, accounts={"configured": 1, "error": "x"})
    assert status == 503 and body["status"] == "degraded"


def test_a_stand_in_without_accounts_is_ready_and_details_are_added() -> None:
    status, body = _answer("/health", details={"upstream": "simulator"})
    assert status == 200 and body == {"status": "ok", "version": "9.9", "upstream": "simulator"}


@pytest.mark.parametrize("target", ["/health?live", "/health?live=1", "/health?x=1&live", "/health/?live#f"])
def test_liveness_is_200_whenever_the_process_answers(target: str) -> None:
    assert wants_liveness(target)
    status, body = _answer(target, accounts={"configured": 0})
    assert status == 200 and body["status"] == "alive"
    status, body = _answer(target, shutting_down=True)
    assert status == 200 and body["status"] == "shutting_down"


@pytest.mark.parametrize("target", ["/health", "/health?lively", "/health?x=live", "/health#live"])
def test_only_the_live_parameter_asks_for_liveness(target: str) -> None:
    assert not wants_liveness(target)
