"""The pieces of ``--workers`` that need no process: the setting, the flag, the log tag, the sockets."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import socket
from collections.abc import Iterator

import pytest

from adapters.anyio_server._workers import bind_sockets
from adapters.cli import build_parser, main
from adapters.runtime.command_line import settings_from_arguments
from adapters.runtime.logging import configure_logging, set_worker
from adapters.runtime.settings import SettingsError, load_settings


def test_workers_default_to_one_and_auto_is_one_per_usable_core() -> None:
    assert load_settings(environ={}).workers == 1
    assert load_settings(environ={"WORKERS": "3"}).workers == 3
    assert load_settings(environ={"WORKERS": "AUTO"}).workers == len(os.sched_getaffinity(0))
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(SettingsError, match="WORKERS"):
            load_settings(environ={"WORKERS": bad})


def test_the_serve_flag_overrides_the_setting(monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    monkeypatch.setenv("WORKERS", "4")
    monkeypatch.setenv("KIRO_CLIENT_TOKEN", "workers-test-token")  # no generated token kept in the tree
    args = build_parser().parse_args(["serve", "--workers", "2"])
    settings = settings_from_arguments(args)
    assert settings is not None and settings.workers == 2
    # The commands without the flag (python -m adapters.anyio_server) read the setting.
    settings = settings_from_arguments(argparse.Namespace(host=None, port=None, env_file=None))
    assert settings is not None and settings.workers == 4


def test_gevent_refuses_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--adapter", "gevent", "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    set_worker(None)
    configure_logging()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_line_carries_the_worker_id_once_set(fmt: str, restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(fmt=fmt, stream=out)
    log = logging.getLogger("kiro2api.test")
    log.info("alone")
    set_worker(2)
    log.info("as a worker")
    alone, worker = out.getvalue().splitlines()
    if fmt == "json":
        assert "worker" not in json.loads(alone) and json.loads(worker)["worker"] == 2
    else:
        assert " w2 [-] kiro2api.test: as a worker" in worker and " w" not in alone.split("[")[0][24:]


def test_sockets_share_one_port_and_refuse_a_taken_one() -> None:
    sockets = bind_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1 and ports != {0}
        # Another --workers server cannot join the port (the probe has no SO_REUSEPORT).
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", ports.pop(), 2)
        # Each socket accepts: the kernel spreads connections over them.
        port = sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for s in sockets:
            s.close()
