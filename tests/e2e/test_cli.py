"""``kiro2api`` / ``python -m adapters.anyio_server`` as a process: help, bad settings, serve, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from adapters.cli import build_parser, main
from adapters.runtime.settings import SETTINGS
from kiro_protocol import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_option_and_setting(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["serve", "--help"], ["--help"]):
        with pytest.raises(SystemExit) if argv else contextlib.nullcontext():
            main(argv)
        out = capsys.readouterr().out
        for spec in SETTINGS:
            assert spec.env in out, (argv, spec.env)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    serve_help = capsys.readouterr().out
    for flag in ("--host", "--port", "--env-file"):
        assert flag in serve_help
    main([])
    assert "simulator" in capsys.readouterr().out


def test_invalid_settings_stop_start_up(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_LEVEL", "shouty")
    monkeypatch.setenv("KIRO_CLIENT_TOKEN", "x" * 20)
    assert main(["serve", "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert "PORT" in err and "LOG_LEVEL" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int, target: str = "/health") -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_until_healthy(proc: subprocess.Popen[str], port: int, seconds: float) -> None:
    """Poll /health?live until the server answers; the server process must stay up meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            assert _health(port, "/health?live") == (200, {"status": "alive", "version": __version__})
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)


def _serve_once(tmp_path: Path, env: dict[str, str], port: int) -> str:
    """Start ``python -m adapters.anyio_server``, check it, SIGTERM it; its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.anyio_server", "--env-file", str(tmp_path / "custom.env")],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_healthy(proc, port, 20)
        # No account and no simulator (python -m adapters.anyio_server never starts one): alive, not ready.
        status, health = _health(port)
        assert status == 503 and health["status"] == "not_ready" and "KIRO_AUTH_TOKEN" in str(health["reason"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    return proc.stderr.read()


@pytest.mark.timeout(90)
def test_serve_as_a_process_then_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "custom.env").write_text(f"PORT={port}\nLOG_FORMAT=json\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_"))}
    env.update(KIRO_STATE="memory://", XDG_STATE_HOME=str(tmp_path / "state"))
    tokens = []
    for _ in range(2):
        err = _serve_once(tmp_path, env, port)
        token_lines = [line for line in err.splitlines() if line.startswith("  kiro-")]
        assert len(token_lines) == 1  # the generated token, printed once
        assert token_lines[0].strip() not in err.replace(token_lines[0], "")  # and in no log line
        assert "SIGTERM" in err and "NO KIRO ACCOUNTS CONFIGURED" in err
        tokens.append(token_lines[0].strip())
    # The same token after a restart, kept in a file only its owner reads.
    assert tokens[0] == tokens[1]
    kept = tmp_path / "state" / "kiro2api" / "client-token"
    assert kept.read_text().strip() == tokens[0] and kept.stat().st_mode & 0o777 == 0o600


@pytest.mark.timeout(60)
def test_serve_with_the_gevent_adapter(tmp_path: Path) -> None:
    """``kiro2api serve --adapter gevent`` runs the WSGI app on pywsgi and answers like serve."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "PORT", "HOST", "LOG_"))}
    env.update(KIRO_STATE="memory://", KIRO_CLIENT_TOKEN="cli-test-token", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from adapters.cli import main; sys.exit(main())",
         "serve", "--adapter", "gevent", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_healthy(proc, port, 30)
        assert _health(port)[1]["status"] == "ok"  # the built-in simulator stands in: ready
        body = json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/messages", data=body, headers={"x-api-key": "cli-test-token"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            message = json.loads(response.read())
        assert message["type"] == "message" and message["content"][0]["type"] == "text"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
