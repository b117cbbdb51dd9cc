"""Logging: request ids on every line, JSON/text formats, the access line, masking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from adapters.runtime.logging import access_log, configure_logging, mask_secret, request_context, request_id_var


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging()  # removes ours
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def test_mask_secret() -> None:
    assert mask_secret(None) == "<unset>"
    assert mask_secret("short") == "****"
    assert mask_secret("abcdefghijklmnopqrstuvwxyz") == "abcd…wxyz"
    assert "efgh" not in mask_secret("abcdefghijklmnopqrstuvwxyz")


def test_json_lines_carry_the_request_id(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(level="debug".upper(), fmt="json", stream=out)
    log = logging.getLogger("kiro2api.test")
    log.info("outside")
    with request_context("req_abc"):
        log.info("inside %d", 1, extra={"account": "acct…1234"})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["request_id"] == "-" and lines[0]["message"] == "outside"
    assert lines[1]["request_id"] == "req_abc" and lines[1]["message"] == "inside 1"
    assert lines[1]["account"] == "acct…1234" and lines[1]["level"] == "info"
    assert request_id_var.get() == "-"


def test_request_id_follows_tasks(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)

    async def child(tag: str) -> None:
        await anyio.sleep(0.01)
        logging.getLogger("kiro2api.test").info(tag)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for rid in ("req_1", "req_2"):
                with request_context(rid):
                    tg.start_soon(child, rid)

    anyio.run(main)
    for line in out.getvalue().splitlines():
        obj = json.loads(line)
        assert obj["request_id"] == obj["message"]


def test_text_format_and_level_filter(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(level="WARNING", fmt="text", stream=out)
    log = logging.getLogger("kiro2api.test")
    log.info("hidden")
    with request_context("req_t"):
        log.warning("shown", extra={"model": "claude sonnet"})
    text = out.getvalue()
    assert "hidden" not in text
    assert "[req_t]" in text and "WARNING" in text and 'model="claude sonnet"' in text


def test_access_log_line(restore_logging: None, tmp_path: Path) -> None:
    out = io.StringIO()
    log_file = tmp_path / "kiro.log"
    configure_logging(fmt="json", stream=out, file=str(log_file))
    with request_context("req_acc"):
        access_log(method="POST", path="/v1/messages", status=200, duration=1.23456, ttfb=0.0456,
                   account="acct…cdef", model="claude-sonnet-4-5", input_tokens=12, output_tokens=34)
    obj = json.loads(out.getvalue())
    assert obj["logger"] == "kiro2api.access" and obj["request_id"] == "req_acc"
    assert obj["status"] == 200 and obj["duration_ms"] == 1234.6 and obj["ttfb_ms"] == 45.6
    assert obj["model"] == "claude-sonnet-4-5" and obj["input_tokens"] == 12 and obj["output_tokens"] == 34
    assert "error" not in obj
    assert json.loads(log_file.read_text())["request_id"] == "req_acc"


def test_reconfigure_replaces_handlers(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    logging.getLogger("kiro2api.test").warning("once")
    assert first.getvalue() == "" and second.getvalue().count("once") == 1
