"""The model table: public Anthropic model names -> Kiro model ids.

Lookup order in ``resolve_model``:

1. the operator's overrides (``KIRO_MODEL_MAP``: public name -> Kiro id), exact and
   case-insensitive;
2. the built-in table of public names (dated, undated and ``-latest`` aliases);
3. a Kiro id given directly (``claude-sonnet-4.5``);
4. family matching: the name is read as family (opus / sonnet / haiku) plus version, in either
   Anthropic spelling (``claude-opus-4-8``, ``claude-3-7-sonnet``, ``claude-3-opus``), and mapped to that family's
   Kiro id of the same version, else of the newest version not newer than the one asked for
   (a newer Claude Code release naming ``claude-opus-5-5`` gets the newest Opus Kiro offers).

Anything else is a 404 ``not_found_error`` that lists the supported names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import ErrorKind, LocalProtocolError

__all__ = ["ModelInfo", "KIRO_MODELS", "PUBLIC_MODELS", "resolve_model", "list_models", "parse_model_map"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    #: The public (Anthropic) name.
    name: str
    #: The Kiro ``modelId``.
    kiro_id: str
    #: Context window in tokens.
    context_window: int = 200_000
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class _KiroModel:
    kiro_id: str
    family: str
    version: tuple[int, int]
    context_window: int
    display_name: str


#: The Kiro Claude models: id, family, version, context window (the 4.6+ models have 1M tokens
#: since 2026-03; 4.7/4.8 are assumed to as well).
KIRO_MODELS: tuple[_KiroModel, ...] = (
    _KiroModel("claude-3.7-sonnet", "sonnet", (3, 7), 200_000, "Claude Sonnet 3.7"),
    _KiroModel("claude-sonnet-4", "sonnet", (4, 0), 200_000, "Claude Sonnet 4"),
    _KiroModel("claude-sonnet-4.5", "sonnet", (4, 5), 200_000, "Claude Sonnet 4.5"),
    _KiroModel("claude-sonnet-4.6", "sonnet", (4, 6), 1_000_000, "Claude Sonnet 4.6"),
    _KiroModel("claude-haiku-4.5", "haiku", (4, 5), 200_000, "Claude Haiku 4.5"),
    _KiroModel("claude-opus-4.5", "opus", (4, 5), 200_000, "Claude Opus 4.5"),
    _KiroModel("claude-opus-4.6", "opus", (4, 6), 1_000_000, "Claude Opus 4.6"),
    _KiroModel("claude-opus-4.7", "opus", (4, 7), 1_000_000, "Claude Opus 4.7"),
    _KiroModel("claude-opus-4.8", "opus", (4, 8), 1_000_000, "Claude Opus 4.8"),
)
_BY_KIRO_ID = {m.kiro_id: m for m in KIRO_MODELS}

#: Public names -> Kiro id. Versions Kiro does not serve map to the nearest one it does
#: (Opus 4 / 4.1 -> Opus 4.5, the 3.5 models -> their 4.5 successors).
PUBLIC_MODELS: dict[str, str] = {
    "claude-3-5-haiku-20241022": "claude-haiku-4.5",
    "claude-3-5-haiku-latest": "claude-haiku-4.5",
    "claude-3-5-sonnet-20240620": "claude-sonnet-4.5",
    "claude-3-5-sonnet-20241022": "claude-sonnet-4.5",
    "claude-3-5-sonnet-latest": "claude-sonnet-4.5",
    "claude-3-7-sonnet-20250219": "claude-3.7-sonnet",
    "claude-3-7-sonnet-latest": "claude-3.7-sonnet",
    "claude-sonnet-4-20250514": "claude-sonnet-4",
    "claude-sonnet-4-0": "claude-sonnet-4",
    "claude-sonnet-4": "claude-sonnet-4",
    "claude-opus-4-20250514": "claude-opus-4.5",
    "claude-opus-4-0": "claude-opus-4.5",
    "claude-opus-4": "claude-opus-4.5",
    "claude-opus-4-1-20250805": "claude-opus-4.5",
    "claude-opus-4-1": "claude-opus-4.5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4.5",
    "claude-sonnet-4-5": "claude-sonnet-4.5",
    "claude-sonnet-4-5-latest": "claude-sonnet-4.5",
    "claude-haiku-4-5-20251001": "claude-haiku-4.5",
    "claude-haiku-4-5": "claude-haiku-4.5",
    "claude-haiku-4-5-latest": "claude-haiku-4.5",
    "claude-opus-4-5-20251101": "claude-opus-4.5",
    "claude-opus-4-5": "claude-opus-4.5",
    "claude-opus-4-5-latest": "claude-opus-4.5",
    "claude-sonnet-4-6": "claude-sonnet-4.6",
    "claude-sonnet-4-6-latest": "claude-sonnet-4.6",
    "claude-opus-4-6": "claude-opus-4.6",
    "claude-opus-4-6-latest": "claude-opus-4.6",
    "claude-opus-4-7": "claude-opus-4.7",
    "claude-opus-4-8": "claude-opus-4.8",
}

# Family + version in either spelling: "claude-opus-4-8", "claude-sonnet-4.5-20250929",
# "claude-3-7-sonnet-latest", "us.anthropic.claude-haiku-4-5-20251001-v1:0".
# The version-first spelling may lack the minor version: "claude-3-opus-20240229".
_FAMILY_FIRST = re.compile(r"claude-(opus|sonnet|haiku)(?:-(\d{1,2})(?:[-.](\d{1,2})(?!\d))?)?(?!\d)")
_VERSION_FIRST = re.compile(r"claude-(\d{1,2})(?:[-.](\d{1,2}))?-(opus|sonnet|haiku)")
_SUFFIXES = ("-thinking",)


def _family_version(name: str) -> tuple[str, tuple[int, int] | None] | None:
    """The family and version a lower-case model name spells, in either spelling."""
    m = _VERSION_FIRST.search(name)
    if m is not None:
        return m.group(3), (int(m.group(1)), int(m.group(2) or 0))
    f = _FAMILY_FIRST.search(name)
    if f is None:
        return None
    major, minor = f.group(2), f.group(3)
    return f.group(1), ((int(major), int(minor or 0)) if major is not None else None)


def _display_name(name: str, kiro_model: _KiroModel | None) -> str:
    """What the public name calls itself: ``claude-3-5-haiku-20241022`` is "Claude Haiku 3.5"
    even though Kiro serves it with Haiku 4.5, so the list never names a model that was not asked for."""
    parsed = _family_version(name.lower())
    if parsed is not None and parsed[1] is not None:
        family, (major, minor) = parsed[0], parsed[1]
        return f"Claude {family.capitalize()} {major}" + (f".{minor}" if minor else "")
    return kiro_model.display_name if kiro_model is not None else name


def _info(name: str, kiro_id: str) -> ModelInfo:
    known = _BY_KIRO_ID.get(kiro_id)
    display = _TABLE_DISPLAY_NAMES.get(name) or _display_name(name, known)
    if known is None:
        return ModelInfo(name=name, kiro_id=kiro_id, display_name=display)
    return ModelInfo(name=name, kiro_id=kiro_id, context_window=known.context_window, display_name=display)


def _family_match(name: str) -> str | None:
    parsed = _family_version(name)
    if parsed is None:
        return None
    family, version = parsed
    candidates = sorted((m for m in KIRO_MODELS if m.family == family), key=lambda m: m.version)
    if not candidates:
        return None
    if version is None:
        return candidates[-1].kiro_id
    not_newer = [m for m in candidates if m.version <= version]
    return (not_newer[-1] if not_newer else candidates[0]).kiro_id


# Computed once: the table's names are listed on every GET /v1/models and resolved on most requests.
_TABLE_DISPLAY_NAMES = {name: _display_name(name, _BY_KIRO_ID.get(kiro_id)) for name, kiro_id in PUBLIC_MODELS.items()}


def resolve_model(name: str, overrides: Mapping[str, str] | None = None) -> ModelInfo:
    """Map a client model name to the Kiro model (see the module docstring for the order).

    ``overrides`` maps public names to Kiro ids and wins over everything else. A name ending
    in ``-thinking`` resolves like the name without it (the converter turns thinking on).
    Raises ``LocalProtocolError`` (``not_found_error``, 404) for a name that matches nothing.
    """
    key = name.strip().lower()
    if overrides:
        for public in overrides:
            if public.strip().lower() == key:
                return _info(name, overrides[public])
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    kiro_id: str | None = PUBLIC_MODELS.get(key)
    if kiro_id is None and key in _BY_KIRO_ID:
        kiro_id = key
    if kiro_id is None:
        kiro_id = _family_match(key)
    if kiro_id is None:
        names = ", ".join(m.name for m in list_models(overrides))
        raise LocalProtocolError(
            f"model: {name!r} is not supported. Supported models: {names} "
            "(or any claude opus/sonnet/haiku name)",
            kind=ErrorKind.NOT_FOUND,
            param="model",
        )
    return _info(name, kiro_id)


def list_models(overrides: Mapping[str, str] | None = None) -> tuple[ModelInfo, ...]:
    """Every public model name served (for ``GET /v1/models``), overrides first."""
    seen: set[str] = set()
    out: list[ModelInfo] = []
    for public, kiro_id in list((overrides or {}).items()) + list(PUBLIC_MODELS.items()):
        if public.lower() in seen:
            continue
        seen.add(public.lower())
        out.append(_info(public, kiro_id))
    return tuple(out)


def parse_model_map(text: str) -> dict[str, str]:
    """Parse the ``KIRO_MODEL_MAP`` setting: a JSON object of public name -> Kiro model id.

    Empty text is an empty map. Raises ``ValueError`` with a message fit for a startup error
    when the text is not a JSON object of non-empty strings.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"KIRO_MODEL_MAP is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("KIRO_MODEL_MAP must be a JSON object of public model name -> Kiro model id")
    out: dict[str, str] = {}
    for public, kiro_id in value.items():
        if not isinstance(kiro_id, str) or not kiro_id.strip() or not public.strip():
            raise ValueError(f"KIRO_MODEL_MAP: {public!r} must map to a non-empty Kiro model id string")
        out[public.strip()] = kiro_id.strip()
    return out
