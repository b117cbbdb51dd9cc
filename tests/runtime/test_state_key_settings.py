"""KIRO_STATE_KEY, KIRO_STATE_KEY_FILE and KIRO_STATE_KEY_PREVIOUS as settings: parsed into
``Settings.state_keys`` (current first), every mistake named, no key ever quoted or shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.runtime.settings import SettingsError, load_settings
from adapters.runtime.state_cipher import generate_key, parse_state_key


def _load(tmp_path: Path, **env: str) -> object:
    return load_settings(environ={"KIRO_CLIENT_TOKEN": "c" * 20, **env}, cwd=tmp_path)


def test_keys_in_order_current_then_previous(tmp_path: Path) -> None:
    new, old1, old2 = generate_key(), generate_key(), generate_key()
    settings = load_settings(
        environ={"KIRO_STATE_KEY": new, "KIRO_STATE_KEY_PREVIOUS": f"{old1}, {old2}"}, cwd=tmp_path
    )
    assert settings.state_keys == tuple(parse_state_key(k) for k in (new, old1, old2))
    for key in (new, old1, old2):
        assert key not in repr(settings)
    assert load_settings(environ={}, cwd=tmp_path).state_keys == ()


def test_the_key_from_a_file(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / "state.key").write_text(key + "\n")
    settings = load_settings(environ={"KIRO_STATE_KEY_FILE": str(tmp_path / "state.key")}, cwd=tmp_path)
    assert settings.state_keys == (parse_state_key(key),)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KIRO_STATE_KEY": "SECRETVALUE-too-short"}, "KIRO_STATE_KEY:"),
        ({"KIRO_STATE_KEY": generate_key(), "KIRO_STATE_KEY_PREVIOUS": "SECRETVALUE!!"}, "KIRO_STATE_KEY_PREVIOUS"),
        ({"KIRO_STATE_KEY_PREVIOUS": generate_key()}, "without KIRO_STATE_KEY"),
        ({"KIRO_STATE_KEY": generate_key(), "KIRO_STATE_KEY_FILE": "/nonexistent"}, "both set"),
        ({"KIRO_STATE_KEY_FILE": "/nonexistent/SECRETVALUE"}, "KIRO_STATE_KEY_FILE"),
    ],
)
def test_mistakes_are_named_and_never_quoted(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env, cwd=tmp_path)
    message = str(caught.value)
    assert named in message
    if "KIRO_STATE_KEY_FILE" not in env:  # a path is not a secret and is named; a key never is
        assert "SECRETVALUE" not in message
    for value in env.values():
        if value != "/nonexistent" and "KIRO_STATE_KEY_FILE" not in env:
            assert value not in message
