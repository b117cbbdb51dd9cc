"""Every setting of the Go original is honoured here or announced at start-up, never silently ignored.

The names are those of the Go kiro2api's README (its configuration sections) and of its settings
table in ../shared/spec/protocol.md §13.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from adapters.runtime.logging import configure_logging
from adapters.runtime.settings import IGNORED_GO_SETTINGS, SETTINGS, SettingsError, load_settings

#: The Go original's settings, as its README and protocol.md §13 list them.
GO_SETTINGS = (
    "KIRO_AUTH_TOKEN", "KIRO_CLIENT_TOKEN", "PORT", "GIN_MODE", "LOG_LEVEL", "LOG_FORMAT", "LOG_FILE", "LOG_CONSOLE",
    "DEBUG", "LOG_ENABLE_CALLER", "LOG_CALLER_SKIP", "MAX_TOOL_DESCRIPTION_LENGTH", "TOKEN_SELECTION_STRATEGY",
    "DISABLE_STREAM", "REQUEST_TIMEOUT_MINUTES", "SIMPLE_REQUEST_TIMEOUT_MINUTES", "STREAM_REQUEST_TIMEOUT_MINUTES",
    "SERVER_READ_TIMEOUT_MINUTES", "SERVER_WRITE_TIMEOUT_MINUTES", "MAX_CONCURRENT_SESSIONS",
    "SESSION_TIMEOUT_MINUTES", "METRICS_ENABLED",
)

HONOURED = {spec.env for spec in SETTINGS} | {alias for spec in SETTINGS for alias in spec.aliases}


def _load(tmp_path: Path, **environ: str) -> object:
    return load_settings(environ={"KIRO_CLIENT_TOKEN": "t" * 20, **environ}, cwd=tmp_path)


@pytest.mark.parametrize("name", GO_SETTINGS)
def test_each_go_setting_is_honoured_or_announced(name: str) -> None:
    assert (name in HONOURED) != (name in IGNORED_GO_SETTINGS), name


@pytest.mark.parametrize("name", sorted(IGNORED_GO_SETTINGS))
def test_an_ignored_go_setting_is_announced_with_its_reason(name: str, tmp_path: Path) -> None:
    settings = load_settings(environ={name: "debug"}, cwd=tmp_path)
    (notice,) = settings.notices
    assert notice.startswith(f"{name} is recognised") and "no effect here" in notice
    assert load_settings(environ={}, cwd=tmp_path).notices == ()
    assert "TLS verification" in IGNORED_GO_SETTINGS["GIN_MODE"]


def test_the_two_go_timeouts_map_onto_the_deadlines(tmp_path: Path) -> None:
    settings = load_settings(environ={"SIMPLE_REQUEST_TIMEOUT_MINUTES": "2", "SESSION_TIMEOUT_MINUTES": "60"}, cwd=tmp_path)
    assert settings.request_timeout == 120 and settings.stream_request_timeout == 3600
    # Ours win when both are set.
    both = load_settings(
        environ={"SIMPLE_REQUEST_TIMEOUT_MINUTES": "2", "REQUEST_TIMEOUT_MINUTES": "15",
                 "SESSION_TIMEOUT_MINUTES": "60", "STREAM_REQUEST_TIMEOUT_MINUTES": "30"},
        cwd=tmp_path,
    )
    assert both.request_timeout == 900 and both.stream_request_timeout == 1800
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"SESSION_TIMEOUT_MINUTES": "soon"}, cwd=tmp_path)
    assert info.value.problems == ["SESSION_TIMEOUT_MINUTES: expected a number, got 'soon'"]


@pytest.mark.parametrize(("raw", "value"), [("false", False), ("FALSE", False), ("0", False), ("No", False),
                                            ("off", False), ("True", True), ("1", True), ("YES", True)])
def test_booleans_in_every_spelling(raw: str, value: bool, tmp_path: Path) -> None:
    settings = load_settings(environ={"METRICS_ENABLED": raw, "LOG_CONSOLE": raw, "LOG_FILE": "x.log"}, cwd=tmp_path)
    assert settings.metrics_enabled is value and settings.log_console is value


def test_log_console_false_without_a_file_is_said(tmp_path: Path) -> None:
    (notice,) = load_settings(environ={"LOG_CONSOLE": "false"}, cwd=tmp_path).notices
    assert notice.startswith("LOG_CONSOLE=false has no effect without LOG_FILE")


def test_log_console_false_sends_lines_to_the_file_only(tmp_path: Path) -> None:
    console = io.StringIO()
    log_file = tmp_path / "kiro.log"
    try:
        configure_logging(file=str(log_file), stream=console, console=False)
        logging.getLogger("kiro2api.test").warning("to the file only")
        configure_logging(stream=console, console=False)  # no file: the console stays
        logging.getLogger("kiro2api.test").warning("to the console")
    finally:
        configure_logging()
    assert "to the file only" in log_file.read_text() and "to the file only" not in console.getvalue()
    assert "to the console" in console.getvalue()


def test_start_up_says_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import argparse

    from adapters.runtime.command_line import settings_from_arguments

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KIRO_CLIENT_TOKEN", "t" * 20)
    monkeypatch.setenv("GIN_MODE", "release")
    try:
        settings = settings_from_arguments(argparse.Namespace(host=None, port=None, env_file=None))
    finally:
        configure_logging()
    assert settings is not None
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(line.startswith("GIN_MODE is recognised") and "Gin" in line for line in lines), lines
