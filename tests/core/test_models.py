"""The model table and family matching."""

from __future__ import annotations

import pytest

from kiro_protocol._errors import ErrorKind, LocalProtocolError
from kiro_protocol.requests._models import PUBLIC_MODELS, list_models, resolve_model


@pytest.mark.parametrize(
    ("name", "kiro_id", "window"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5", 200_000),
        ("claude-sonnet-4-5", "claude-sonnet-4.5", 200_000),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5", 200_000),
        ("claude-haiku-4-5", "claude-haiku-4.5", 200_000),
        ("claude-opus-4-5-20251101", "claude-opus-4.5", 200_000),
        ("claude-sonnet-4-6", "claude-sonnet-4.6", 1_000_000),
        ("claude-opus-4-6", "claude-opus-4.6", 1_000_000),
        ("claude-sonnet-4-20250514", "claude-sonnet-4", 200_000),
        ("claude-sonnet-4-0", "claude-sonnet-4", 200_000),
        ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet", 200_000),
        ("claude-3-7-sonnet-latest", "claude-3.7-sonnet", 200_000),
        ("claude-opus-4-1-20250805", "claude-opus-4.5", 200_000),
        ("claude-3-5-haiku-latest", "claude-haiku-4.5", 200_000),
        ("CLAUDE-SONNET-4-5", "claude-sonnet-4.5", 200_000),
    ],
)
def test_table(name: str, kiro_id: str, window: int) -> None:
    info = resolve_model(name)
    assert (info.kiro_id, info.context_window) == (kiro_id, window)
    assert info.name == name  # the client's spelling is kept for echoing back


@pytest.mark.parametrize(
    ("name", "kiro_id"),
    [
        ("claude-opus-4-8", "claude-opus-4.8"),  # Claude Code's default in the samples
        ("claude-opus-5-5", "claude-opus-4.8"),  # newer than the table: newest opus
        ("claude-sonnet-4-7-20260101", "claude-sonnet-4.6"),  # unknown minor: newest not newer
        ("claude-sonnet-5", "claude-sonnet-4.6"),
        ("claude-haiku-9-1", "claude-haiku-4.5"),
        ("claude-opus-3", "claude-opus-4.5"),  # older than anything: oldest of the family
        ("claude-opus", "claude-opus-4.8"),
        ("claude-3-8-sonnet-20990101", "claude-3.7-sonnet"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4.5"),
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),  # a Kiro id given directly
        ("claude-sonnet-4-5-thinking", "claude-sonnet-4.5"),
        ("claude-opus-4-6-thinking", "claude-opus-4.6"),
        # Version first without a minor version: the Claude 3 names.
        ("claude-3-opus-20240229", "claude-opus-4.5"),
        ("claude-3-haiku-20240307", "claude-haiku-4.5"),
        ("claude-3-sonnet-20240229", "claude-3.7-sonnet"),
        ("claude-3-opus-latest", "claude-opus-4.5"),
    ],
)
def test_family_matching(name: str, kiro_id: str) -> None:
    assert resolve_model(name).kiro_id == kiro_id


def test_every_table_entry_resolves_to_itself() -> None:
    for name, kiro_id in PUBLIC_MODELS.items():
        assert resolve_model(name).kiro_id == kiro_id


def test_overrides_win_and_extend() -> None:
    overrides = {"claude-sonnet-4-5": "claude-sonnet-4.6", "deepseek": "deepseek-3.2"}
    assert resolve_model("claude-sonnet-4-5", overrides).kiro_id == "claude-sonnet-4.6"
    assert resolve_model("claude-sonnet-4-5", overrides).context_window == 1_000_000
    info = resolve_model("DeepSeek", overrides)
    assert info.kiro_id == "deepseek-3.2" and info.context_window == 200_000
    names = [m.name for m in list_models(overrides)]
    assert names[:2] == ["claude-sonnet-4-5", "deepseek"]
    assert names.count("claude-sonnet-4-5") == 1


@pytest.mark.parametrize("name", ["gpt-4o", "gemini-pro", "claude", "claude-instant-1", ""])
def test_unknown_model_is_not_found_and_lists_names(name: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        resolve_model(name)
    assert err.value.kind is ErrorKind.NOT_FOUND and err.value.status_hint == 404
    assert "claude-sonnet-4-5" in err.value.message and err.value.param == "model"


def test_list_models_covers_the_table() -> None:
    models = list_models()
    assert {m.name for m in models} == set(PUBLIC_MODELS)
    assert all(m.display_name for m in models)


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("claude-3-5-haiku-20241022", "Claude Haiku 3.5"),  # served by Haiku 4.5, named as asked
        ("claude-opus-4-20250514", "Claude Opus 4"),
        ("claude-opus-4-1", "Claude Opus 4.1"),
        ("claude-sonnet-4-0", "Claude Sonnet 4"),
        ("claude-3-7-sonnet-latest", "Claude Sonnet 3.7"),
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
        ("claude-opus-4-8", "Claude Opus 4.8"),
    ],
)
def test_display_name_is_the_public_names_own(name: str, display: str) -> None:
    assert resolve_model(name).display_name == display
    assert {m.name: m.display_name for m in list_models()}[name] == display


def test_display_name_of_an_override_without_a_version_is_the_kiro_models() -> None:
    overrides = {"my-claude": "claude-sonnet-4.6", "deepseek": "deepseek-3.2"}
    assert resolve_model("my-claude", overrides).display_name == "Claude Sonnet 4.6"
    assert resolve_model("deepseek", overrides).display_name == "deepseek"


def test_parse_model_map() -> None:
    from kiro_protocol.requests._models import parse_model_map

    assert parse_model_map("") == {}
    assert parse_model_map(' {"a": " claude-opus-4.6 "} ') == {"a": "claude-opus-4.6"}
    for bad in ("[1]", "{", '{"a": 1}', '{"a": ""}', '{"": "x"}'):
        with pytest.raises(ValueError, match="KIRO_MODEL_MAP"):
            parse_model_map(bad)
