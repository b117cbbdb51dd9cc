"""Kiro's MCP endpoint, as far as web search needs it: the call, its answer, its failures.

The wire (docs/kiro-protocol.md, Web search through MCP): ``POST {api base}/mcp`` with a JSON-RPC
2.0 ``tools/call`` of ``web_search``; a 200 answer carries ``result.content[0].text``, a JSON
*string* that holds ``{"results": [{"title", "url", "snippet", "publishedDate"?}, ...]}``.

Every byte of the answer is untrusted: ``parse_web_search_answer`` either returns the hits or
raises ``RemoteProtocolError`` saying what was wrong, never anything else (fuzz/test_fuzz_mcp.py).
An answer that cannot be read is a failed search, never an empty one: a model told "no results"
answers from memory as if it had searched (docs/web-search.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import ErrorKind, RemoteProtocolError
from ._redaction import redact
from ._upstream_errors import FailureClass, UpstreamFailure, classify_upstream_failure

__all__ = [
    "SearchHit",
    "web_search_call_body",
    "web_search_request_id",
    "parse_web_search_answer",
    "classify_mcp_failure",
    "web_search_failed",
    "SEARCH_FAILED_PREFIX",
    "MAX_SEARCH_HITS",
]

#: How every failed search starts, for the client and the logs.
SEARCH_FAILED_PREFIX = "web search failed"
#: Hits kept from one answer; Kiro sends about ten, more would only bloat the client's context.
MAX_SEARCH_HITS = 20
# Bounds of the text kept per hit (an answer may carry whole pages in its snippets).
_MAX_TITLE = 500
_MAX_URL = 2_000
_MAX_SNIPPET = 2_000
# What of upstream's own words is quoted back.
_MAX_QUOTED = 300
# Failures that are the account's (token, quota, throttling): handled like those of any call.
_ACCOUNT_FAULTS = frozenset({FailureClass.INVALID_TOKEN, FailureClass.QUOTA_EXHAUSTED, FailureClass.THROTTLED})
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit:
    """One search result as Kiro reported it."""

    title: str
    url: str
    snippet: str
    #: When the page was published, as Anthropic's ``page_age`` shows it (``April 30, 2025``).
    page_age: str | None = None


def web_search_request_id(random_hex: str, unix_ms: int) -> str:
    """The JSON-RPC id in the IDE's shape: ``web_search_tooluse_<22 alnum>_<unix ms>_<8 alnum>``.

    ``random_hex`` is at least 30 random hex characters (drawn by the runtime).
    """
    return f"web_search_tooluse_{random_hex[:22]}_{unix_ms}_{random_hex[-8:].lower()}"


def web_search_call_body(query: str, request_id: str) -> bytes:
    """The JSON-RPC ``tools/call`` of ``web_search`` for ``query``."""
    call = {
        "id": request_id,
        "jsonrpc": "2.0",
        "method": "tools/call",
        "params": {"name": "web_search", "arguments": {"query": query}},
    }
    return json.dumps(call, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def web_search_failed(detail: str) -> RemoteProtocolError:
    """The client's error for a search that failed: 502 ``api_error``, ``web search failed: ...``."""
    return RemoteProtocolError(f"{SEARCH_FAILED_PREFIX}: {detail}", kind=ErrorKind.API, status_hint=502)


def _quote(text: str) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def classify_mcp_failure(status: int, body: bytes, *, secrets: Iterable[str | None] = ()) -> UpstreamFailure:
    """Classify a non-200 answer of ``/mcp``.

    401/403 (the token), 402 (the quota), 408/429 (throttling) are the account's, as for any
    call: refresh, cool down, move on. Anything else is the search's: answered at once with 502
    ``web search failed: ...`` (another account would search the same index the same way).
    """
    failure = classify_upstream_failure(status, body, secrets=secrets)
    if failure.failure_class in _ACCOUNT_FAULTS:
        return failure
    detail = f"Kiro's MCP endpoint answered HTTP {status}" + (f": {failure.message}" if failure.message else "")
    return UpstreamFailure(
        failure_class=FailureClass.BAD_REQUEST,
        status=status,
        message=failure.message,
        reason=failure.reason,
        client_error=web_search_failed(detail),
    )


def _page_age(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value == value and 0 < value < 32503680000000:
        # Milliseconds since the epoch (Kiro's ``publishedDate``), shown as a UTC date.
        days, _ = divmod(int(value) // 1000, 86400)
        year, month, day = _civil_from_days(days)
        return f"{_MONTHS[month - 1]} {day}, {year}"
    if isinstance(value, str) and value.strip():
        return value.strip()[:64]
    return None


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; no clock, no
    locale: the core formats dates itself)."""
    days += 719468
    era, doe = divmod(days, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _text(value: object, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _json(text: str | bytes, what: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise web_search_failed(f"{what} is not JSON") from None


def parse_web_search_answer(body: bytes) -> tuple[SearchHit, ...]:
    """The hits of a 200 answer of ``/mcp`` (at most ``MAX_SEARCH_HITS``; hits without a URL
    are left out).

    Raises:
        RemoteProtocolError: 502 ``web search failed: ...``: the answer is not JSON-RPC, holds
            a JSON-RPC ``error``, a tool error (``isError``), an ``error`` in its results, or
            no readable results.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise web_search_failed("Kiro's MCP answer is not UTF-8") from None
    answer = _json(text, "Kiro's MCP answer")
    if not isinstance(answer, dict):
        raise web_search_failed("Kiro's MCP answer is not a JSON-RPC object")
    error = answer.get("error")
    if error is not None:
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            label = f"error {code}" if isinstance(code, int) and not isinstance(code, bool) else "an error"
            said = f": {_quote(message)}" if isinstance(message, str) and message.strip() else ""
            raise web_search_failed(f"Kiro's MCP endpoint answered {label}{said}")
        raise web_search_failed("Kiro's MCP endpoint answered an error")
    result = answer.get("result")
    if not isinstance(result, dict):
        raise web_search_failed("Kiro's MCP answer has no result")
    content = result.get("content")
    first = content[0] if isinstance(content, list) and content else None
    payload = first.get("text") if isinstance(first, dict) else None
    if result.get("isError") is True:
        said = f": {_quote(payload)}" if isinstance(payload, str) and payload.strip() else ""
        raise web_search_failed(f"Kiro's web_search tool reported an error{said}")
    if not isinstance(payload, str):
        raise web_search_failed("Kiro's MCP answer has no text content")
    document = _json(payload, "the search result text")
    if not isinstance(document, dict):
        raise web_search_failed("the search result text is not a JSON object")
    problem = document.get("error")
    if isinstance(problem, str) and problem.strip():
        raise web_search_failed(f"Kiro's search reported: {_quote(problem)}")
    items = document.get("results", [])
    if not isinstance(items, list):
        raise web_search_failed("the search results are not a list")
    hits: list[SearchHit] = []
    for item in items:
        if len(hits) == MAX_SEARCH_HITS:
            break
        if not isinstance(item, dict):
            continue
        url = _text(item.get("url"), _MAX_URL)
        if not url:
            continue
        hits.append(
            SearchHit(
                title=_text(item.get("title"), _MAX_TITLE) or url,
                url=url,
                snippet=_text(item.get("snippet"), _MAX_SNIPPET),
                page_age=_page_age(item.get("publishedDate")),
            )
        )
    return tuple(hits)
