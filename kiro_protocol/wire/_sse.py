"""Server-sent events: the wire format.

Each event is ``event: <type>\\n`` + ``data: <one line of compact JSON>\\n\\n`` (WHATWG HTML
§9.2 "server-sent events"; the ``event`` name always equals ``data.type``, which Claude Code and
the SDKs rely on). JSON escapes every newline inside strings, so one ``data:`` line is always
enough; U+2028/U+2029 need no escaping because SSE splits lines only at CR and LF.
"""

from __future__ import annotations


__all__ = ["SSE_MEDIA_TYPE", "SSE_HEADERS", "sse_event"]

SSE_MEDIA_TYPE = "text/event-stream; charset=utf-8"

#: Response headers for an SSE stream: no caching, and no buffering by reverse proxies
#: (nginx honours ``X-Accel-Buffering``), so each event reaches the client when it is written.
SSE_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", SSE_MEDIA_TYPE),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)


def sse_event(event_type: str, data: bytes) -> bytes:
    """One SSE event. ``data`` must be a single line (compact JSON is)."""
    return b"event: " + event_type.encode("ascii") + b"\ndata: " + data + b"\n\n"
