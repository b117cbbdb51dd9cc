"""Fuzz target for the MCP web-search answer (invariants in fuzz/README.md, "Web search answers").

Seeds: a real-shaped answer (JSON-RPC ``result`` whose ``content[0].text`` is a JSON string of
results), mutated by replacing subtrees with arbitrary JSON, both in the outer document and in
the inner one; plus arbitrary bytes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kiro_protocol import ErrorKind, RemoteProtocolError
from kiro_protocol.pool._mcp import MAX_SEARCH_HITS, SearchHit, parse_web_search_answer
from kiro_protocol.call._web_search import search_summary

from .test_fuzz_accounts import json_values, mutated

INNER_SEED = {
    "results": [
        {"title": "Kiro", "url": "https://kiro.dev/", "snippet": "An IDE.", "publishedDate": 1_746_000_000_000,
         "domain": "kiro.dev"},
        {"title": "Notes", "url": "https://example.com/n", "snippet": "Notes."},
    ],
    "totalResults": 2,
    "query": "kiro",
}  # fmt: skip


def _outer(text: object) -> dict[str, Any]:
    return {"id": "web_search_tooluse_x", "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": text}], "isError": False}}


def _check(body: bytes) -> None:
    try:
        hits = parse_web_search_answer(body)
    except RemoteProtocolError as exc:
        assert exc.kind is ErrorKind.API and exc.status_hint == 502
        assert exc.message.startswith("web search failed: ")
        return
    assert isinstance(hits, tuple) and len(hits) <= MAX_SEARCH_HITS
    for hit in hits:
        assert isinstance(hit, SearchHit) and hit.url and isinstance(hit.title, str) and hit.title
        assert isinstance(hit.snippet, str) and (hit.page_age is None or isinstance(hit.page_age, str))
    # Whatever was accepted makes a summary for the client.
    assert isinstance(search_summary("q", hits), str)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_hits_or_a_failed_search(data: bytes) -> None:
    _check(data)


@given(mutated(_outer(json.dumps(INNER_SEED))))
def test_a_mutated_answer_gives_hits_or_a_failed_search(doc: Any) -> None:
    _check(json.dumps(doc).encode())


@given(mutated(INNER_SEED), st.sampled_from(["json", "value"]))
def test_a_mutated_result_text_gives_hits_or_a_failed_search(inner: Any, how: str) -> None:
    text = json.dumps(inner) if how == "json" else inner
    _check(json.dumps(_outer(text)).encode())


@given(json_values)
def test_any_json_value_gives_hits_or_a_failed_search(value: Any) -> None:
    _check(json.dumps(value).encode())
    _check(json.dumps(_outer(json.dumps(value))).encode())
