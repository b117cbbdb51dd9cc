"""``KIRO_JSON_CODEC``: auto, stdlib or orjson; a service installs it into the core."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.runtime import json_codec
from adapters.runtime.json_codec import install_json_codec
from adapters.runtime.settings import SettingsError, load_settings
from kiro_protocol import json_codec_name


@pytest.fixture(autouse=True)
def _restore_codec() -> Iterator[None]:
    previous = json_codec_name()
    yield
    install_json_codec(previous)


def _settings(tmp_path: Path, **env: str) -> str:
    return load_settings(environ=env, cwd=tmp_path, token_factory=lambda: "generated-token-xyz").json_codec


def test_choices(tmp_path: Path) -> None:
    assert _settings(tmp_path) == "auto"
    assert _settings(tmp_path, KIRO_JSON_CODEC="stdlib") == "stdlib"
    assert _settings(tmp_path, KIRO_JSON_CODEC="ORJSON") == "orjson"
    with pytest.raises(SettingsError, match="KIRO_JSON_CODEC"):
        _settings(tmp_path, KIRO_JSON_CODEC="simdjson")


def test_orjson_asked_for_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_codec, "orjson", None)
    with pytest.raises(SettingsError, match=r"KIRO_JSON_CODEC.*orjson is not installed"):
        _settings(tmp_path, KIRO_JSON_CODEC="orjson")
    assert install_json_codec("auto") == "stdlib"  # auto without it: the standard library
    with pytest.raises(RuntimeError, match="orjson is not installed"):
        install_json_codec("orjson")


def test_auto_takes_orjson_when_installed() -> None:
    pytest.importorskip("orjson")
    assert install_json_codec("auto") == "orjson" == json_codec_name()
    assert install_json_codec("stdlib") == "stdlib" == json_codec_name()
