"""Start-up failures the configuration causes: one line naming the setting and the cause, exit 2.

A port in use, a privileged port, an unreadable or broken TLS file: no traceback, on every serving
command whose start-up is ours (``kiro2api serve`` alone and with workers, ``python -m
adapters.anyio_server``, ``python -m adapters.wsgi_gevent``).
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.runtime.settings import Settings
from adapters.runtime.startup import StartupError, check_tls, listen_problem

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("KIRO_", "PORT", "HOST", "LOG_", "TLS_", "WORKERS", "SIMULATOR_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIRO_STATE", "memory://")
    monkeypatch.setenv("KIRO_CLIENT_TOKEN", "startup-test-token")


def _sole_line(err: str) -> str:
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("kiro2api:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extra", [{}, {"SIMULATOR_WITHOUT_ACCOUNTS": "false"}, {"WORKERS": "2"}])
def test_a_port_in_use_is_one_line_naming_host_and_port(
    extra: dict[str, str], taken_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", str(taken_port)]) == 2
    err = capsys.readouterr().err
    assert "simulator" not in err  # refused before anything started: nothing else to say
    line = _sole_line(err)
    assert line == f"kiro2api: HOST/PORT: cannot listen on 127.0.0.1:{taken_port}: the address is already in use " \
                   "(another server on this port?)"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", ["adapters.anyio_server", "adapters.wsgi_gevent"])
def test_the_python_m_servers_say_it_alike(module: str, taken_port: int) -> None:
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", module, "--port", str(taken_port)], env=env, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 2
    assert "HOST/PORT: cannot listen on" in _sole_line(done.stderr) and "already in use" in done.stderr


@pytest.mark.timeout(60)
def test_a_broken_tls_file_is_one_line_naming_both_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    monkeypatch.setenv("TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "key.pem"))
    assert main(["serve", "--port", "0"]) == 2
    line = _sole_line(capsys.readouterr().err)
    assert line.startswith("kiro2api: TLS_CERT_FILE/TLS_KEY_FILE: ") and "not a PEM certificate chain" in line


def test_an_unreadable_tls_file_names_its_setting(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    settings = Settings(tls_cert_file=str(cert), tls_key_file=str(key))  # the key went missing after the check
    with pytest.raises(StartupError, match=r"^TLS_KEY_FILE: cannot read '.*key.pem': no such file or directory$"):
        check_tls(settings, lambda c, k: None)
    if os.geteuid() != 0:  # root reads any file
        key.write_text("x")
        key.chmod(0)
        with pytest.raises(StartupError, match=r"^TLS_KEY_FILE: cannot read '.*key.pem': permission denied$"):
            check_tls(settings, lambda c, k: None)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may listen on any port")
def test_a_privileged_port_says_why(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIMULATOR_WITHOUT_ACCOUNTS", "false")
    assert main(["serve", "--port", "81"]) == 2
    line = _sole_line(capsys.readouterr().err)
    assert line.startswith("kiro2api: HOST/PORT: cannot listen on 127.0.0.1:81: permission denied")


@pytest.mark.parametrize(("code", "cause"), [
    (errno.EACCES, "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port above 1023)"),
    (errno.EADDRINUSE, "the address is already in use (another server on this port?)"),
    (errno.EADDRNOTAVAIL, "the address is not one of this machine's"),
    (errno.ENOBUFS, "no buffer space available"),
])
def test_each_bind_cause_in_words(code: int, cause: str) -> None:
    settings = Settings(host="0.0.0.0", port=80)
    error = OSError(code, os.strerror(code))
    assert listen_problem(settings, error) == f"HOST/PORT: cannot listen on 0.0.0.0:80: {cause}"


@pytest.mark.timeout(60)
def test_a_state_store_out_of_reach_at_start_is_one_line_naming_kiro_state(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIRO_STATE", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    monkeypatch.setenv("KIRO_ADMIN_TOKEN", "admin-token-0123456789abcdef")
    assert main(["serve", "--port", "0"]) == 2
    line = _sole_line(capsys.readouterr().err)
    assert line.startswith("kiro2api: KIRO_STATE: the Redis state store is unavailable")


@pytest.mark.timeout(60)
def test_the_gevent_server_refuses_bad_accounts_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items()}
    env.update(PYTHONPATH=str(ROOT), KIRO_AUTH_TOKEN='[{"auth": "Nope"}]')
    done = subprocess.run(
        [sys.executable, "-m", "adapters.wsgi_gevent", "--port", "0"], env=env, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 2
    assert _sole_line(done.stderr).startswith("kiro2api: KIRO_AUTH_TOKEN entry 0:")
