"""The client requests the gateway benchmark sends: what a load of each kind looks like on the wire.

* ``small``: ``"Hello there"``, streamed (the cheapest useful call);
* ``claude-code``: Claude Code's first agent turn (24 tools, system blocks, a mid-conversation
  system message), streamed, at its real size;
* ``non-streaming``: ``"Hello there"`` with ``"stream": false`` (the gateway collects the stream).

The Claude Code request is rebuilt from the capture in ``tests/fixtures/clients/`` (a copy of
``shared/spec/clients/claude-code-requests.json``). The capture keeps the shapes but cuts long
strings (``...[N more chars]``) and empties property schemas; the cost of parsing, converting and
estimating tokens grows with the text, so the cut strings are filled back to their length and the
emptied schemas are given descriptions until the body is as long as the captured
``Content-Length`` (about 76 KB).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchRequest", "REQUESTS", "claude_code_body", "expand"]

_CAPTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "clients" / "claude-code-requests.json"
_CUT = re.compile(r"\.\.\.\[(\d+) more chars\]$")
# Filler prose: words and punctuation like a system prompt's, so the token estimate sees text.
_PROSE = (
    "When the user asks for a change, read the relevant files first, keep edits small, and explain "
    "what was done and why. Prefer the dedicated tools over shell commands where one exists. "
)


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """One kind of request: where it goes and what it carries."""

    name: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    #: A string the end of every good answer holds (checked on the last bytes received).
    expect: bytes


def _fill(visible: str, length: int) -> str:
    text = visible + " " + _PROSE * (length // len(_PROSE) + 1)
    return text[: len(visible) + length]


def expand(value: object) -> object:
    """``value`` with every cut string filled back to its original length."""
    if isinstance(value, str):
        match = _CUT.search(value)
        return _fill(value[: match.start()], int(match.group(1))) if match else value
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


def claude_code_body() -> tuple[dict[str, object], dict[str, str]]:
    """Claude Code's first streamed turn at its captured size: (body, the client's headers)."""
    capture = json.loads(_CAPTURE.read_text())
    sample = next(s for s in capture["samples"] if s["kind"] == "main_turn_stream")
    body = expand(sample["body"])
    assert isinstance(body, dict)
    target_size = int(sample["headers"]["Content-Length"])
    empty = [
        (schema, name)
        for tool in body["tools"]
        for name, schema in tool.get("input_schema", {}).get("properties", {}).items()
        if schema == {}
    ]
    # Describe the emptied properties evenly until the body reaches the captured length.
    missing = target_size - len(_compact(body))
    overhead = len('"type":"string","description":""') + 1
    each = max(0, missing // max(1, len(empty)) - overhead)
    for schema, name in empty:
        schema.update(type="string", description=_fill(f"The {name} argument.", each)[:each])
    wanted = ("anthropic-beta", "anthropic-version", "user-agent", "x-app")
    headers = {k.lower(): v for k, v in sample["headers"].items() if k.lower() in wanted}
    return body, headers


def _small(stream: bool) -> dict[str, object]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": stream,
            "messages": [{"role": "user", "content": "Hello there"}]}


def _compact(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _requests() -> dict[str, BenchRequest]:
    json_headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    cc_body, cc_headers = claude_code_body()
    return {
        "small": BenchRequest("small", "/v1/messages", json_headers, _compact(_small(True)), b"message_stop"),
        "claude-code": BenchRequest(
            "claude-code", "/v1/messages?beta=true", {"content-type": "application/json", **cc_headers},
            _compact(cc_body), b"message_stop",
        ),
        "non-streaming": BenchRequest("non-streaming", "/v1/messages", json_headers, _compact(_small(False)), b'"usage"'),
    }


#: name -> request, in the order the report shows them.
REQUESTS = _requests()
