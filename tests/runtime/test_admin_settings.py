"""KIRO_ADMIN_TOKEN and its _FILE twin: on only when set, long enough, never the client token."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.runtime.settings import SettingsError, load_settings

CLIENT = "client-token-0123456789"


def load(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_settings(environ={"KIRO_CLIENT_TOKEN": CLIENT, **env}, cwd=tmp_path)


def test_the_admin_door_is_off_by_default(tmp_path: Path) -> None:
    assert load(tmp_path).admin_token is None


def test_the_token_comes_from_the_variable_or_its_file(tmp_path: Path) -> None:
    assert load(tmp_path, KIRO_ADMIN_TOKEN="admin-token-abcdefgh").admin_token == "admin-token-abcdefgh"
    secret = tmp_path / "admin_token"
    secret.write_text("admin-from-a-file-123456\n")
    settings = load(tmp_path, KIRO_ADMIN_TOKEN_FILE=str(secret))
    assert settings.admin_token == "admin-from-a-file-123456"
    assert "admin-from-a-file" not in repr(settings)


def test_with_an_admin_token_and_no_account_kiro_itself_answers(tmp_path: Path) -> None:
    assert load(tmp_path).answers_from_simulator
    assert not load(tmp_path, KIRO_ADMIN_TOKEN="admin-token-abcdefgh").answers_from_simulator


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"KIRO_ADMIN_TOKEN": "short"}, "KIRO_ADMIN_TOKEN: must be at least 16 characters long"),
        ({"KIRO_ADMIN_TOKEN": CLIENT}, "KIRO_ADMIN_TOKEN: must differ from KIRO_CLIENT_TOKEN"),
        ({"KIRO_ADMIN_TOKEN": "has a space in it ok"}, "KIRO_ADMIN_TOKEN: must not contain spaces or control characters"),
        ({"KIRO_ADMIN_TOKEN": "admin-token-abcdefgh", "KIRO_ADMIN_TOKEN_FILE": "x"},
         "KIRO_ADMIN_TOKEN and KIRO_ADMIN_TOKEN_FILE are both set; set only one"),
    ],
)
def test_unsafe_admin_tokens_stop_the_start(tmp_path: Path, env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, **env)
    assert problem in caught.value.problems
    assert "has a space" not in str(caught.value) and CLIENT not in str(caught.value)


def test_an_empty_or_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")
    with pytest.raises(SettingsError, match="KIRO_ADMIN_TOKEN_FILE"):
        load(tmp_path, KIRO_ADMIN_TOKEN_FILE=str(tmp_path / "empty"))
    with pytest.raises(SettingsError, match="KIRO_ADMIN_TOKEN_FILE"):
        load(tmp_path, KIRO_ADMIN_TOKEN_FILE=str(tmp_path / "missing"))
