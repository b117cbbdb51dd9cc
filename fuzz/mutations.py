"""Structured mutation of a JSON value, shared by the OpenAI-dialect request fuzz targets."""

from __future__ import annotations

from typing import Any

__all__ = ["mutate"]


def mutate(value: Any, path: list[int], replacement: Any, key: str | None) -> Any:
    """Replace the node reached by following ``path`` (indexes into children) with
    ``replacement``; at the last object on the way, sometimes set ``key`` instead."""
    if not path:
        return replacement
    if isinstance(value, dict) and value:
        out = dict(value)
        if key is not None and path[0] % 5 == 0:
            out[key] = replacement
            return out
        k = list(value)[path[0] % len(value)]
        out[k] = mutate(value[k], path[1:], replacement, key)
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        i = path[0] % len(out_list)
        out_list[i] = mutate(out_list[i], path[1:], replacement, key)
        return out_list
    return replacement

