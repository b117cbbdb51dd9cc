"""The generated client token is the same at every start, kept in a private file beside the state."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from adapters.runtime.client_token_file import TOKEN_FILE_NAME, client_token_path, keep_generated_token
from adapters.runtime.settings import load_settings


def _start(tmp_path: Path, state: str, **environ: str) -> tuple[str, bool]:
    """What one start of a gateway gets as its client token (a fresh random one is made each time)."""
    settings = load_settings(environ={"KIRO_STATE": state, **environ}, cwd=tmp_path)
    kept = keep_generated_token(settings, environ={"XDG_STATE_HOME": str(tmp_path / "xdg"), **environ})
    return kept.client_token, kept.client_token_generated


def test_two_starts_with_sqlite_state_get_the_same_token_from_a_private_file(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/data/state.db"
    (tmp_path / "data").mkdir()
    first, generated = _start(tmp_path, state)
    second, _ = _start(tmp_path, state)
    assert first == second and first.startswith("kiro-") and generated  # still printed at start
    path = tmp_path / "data" / TOKEN_FILE_NAME
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no partial file left


@pytest.mark.parametrize("state", ["memory://", "redis://localhost:6379/0"])
def test_without_a_local_state_file_the_token_lives_in_the_users_state_directory(tmp_path: Path, state: str) -> None:
    first, _ = _start(tmp_path, state)
    assert _start(tmp_path, state)[0] == first
    path = tmp_path / "xdg" / "kiro2api" / "client-token"
    assert path.read_text().strip() == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_default_location_is_under_home(tmp_path: Path) -> None:
    assert client_token_path("memory://", {"HOME": str(tmp_path)}) == tmp_path / ".local/state/kiro2api/client-token"
    assert client_token_path("sqlite:///./kiro2api-state.db", {}) == Path(".") / TOKEN_FILE_NAME
    assert client_token_path("sqlite:////srv/kiro/state.db", {}) == Path("/srv/kiro") / TOKEN_FILE_NAME


def test_a_configured_token_is_left_alone_and_nothing_is_written(tmp_path: Path) -> None:
    token, generated = _start(tmp_path, "memory://", KIRO_CLIENT_TOKEN="configured-token-1234")
    assert token == "configured-token-1234" and not generated
    assert not (tmp_path / "xdg").exists()


def test_a_mangled_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "kiro2api" / "client-token"
    path.parent.mkdir(parents=True)
    path.write_text("two words\n")
    token, _ = _start(tmp_path, "memory://")
    assert token != "two words" and path.read_text().strip() == token


def test_an_unwritable_place_keeps_this_runs_token_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = load_settings(environ={"KIRO_STATE": "memory://"}, cwd=tmp_path)
    kept = keep_generated_token(settings, environ={"XDG_STATE_HOME": str(blocker)})
    assert kept.client_token == settings.client_token
    assert "cannot keep the generated client token" in caplog.text and settings.client_token not in caplog.text
