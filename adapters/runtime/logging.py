"""Logging for the adapters: setup, a request id on every line, the access-log line, masking.

The request id lives in a ``ContextVar``: an adapter sets it when a request starts
(``request_context``), and every record logged from that task, or from tasks it starts, carries
it. The core never logs (style R17); what it reports arrives here as values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from contextvars import ContextVar, Token
from typing import TextIO

__all__ = [
    "LOGGER_NAME",
    "ACCESS_LOGGER_NAME",
    "request_id_var",
    "request_context",
    "configure_logging",
    "mask_secret",
    "access_log",
    "RequestIdFilter",
    "JsonFormatter",
    "TextFormatter",
    "set_worker",
]

LOGGER_NAME = "kiro2api"
ACCESS_LOGGER_NAME = "kiro2api.access"

#: The id of the request being served by the current task ("-" outside a request).
request_id_var: ContextVar[str] = ContextVar("kiro2api_request_id", default="-")


def request_context(request_id: str) -> contextlib.AbstractContextManager[None]:
    """Tag every record logged inside the block (and in tasks started from it) with ``request_id``."""
    return _RequestContext(request_id)


class _RequestContext:
    """``request_context``'s block. A class rather than a generator: one lives as long as each
    request, and a generator with its context manager is four times the size (issue 17 item 4)."""

    __slots__ = ("_request_id", "_token")

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id
        self._token: Token[str] | None = None

    def __enter__(self) -> None:
        self._token = request_id_var.set(self._request_id)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            request_id_var.reset(self._token)
            self._token = None


def mask_secret(value: str | None, *, keep: int = 4) -> str:
    """A loggable stand-in for a secret: ``abcd…wxyz`` for long values, ``****`` for short ones.

    Short secrets are hidden entirely: showing 8 characters of a 12-character token would leave
    too little to guess.
    """
    if not value:
        return "<unset>"
    if len(value) < 4 * keep:
        return "****"
    return f"{value[:keep]}…{value[-keep:]}"


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the context (handlers' filter, so foreign loggers get it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


#: Which process of ``kiro2api serve --workers N`` logs: 0 the supervisor, 1..N a worker; None alone.
_worker: int | None = None


def set_worker(worker: int | None) -> None:
    """Tag every line this process logs from now on with ``worker`` (None: no tag, a lone server)."""
    global _worker
    _worker = worker


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, request_id, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            **({} if _worker is None else {"worker": _worker}),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "message": record.getMessage(),
        }
        obj.update(_extra_fields(record))
        if record.exc_info:
            obj["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``ts LEVEL [request id] logger: message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={_text_value(v)}" for k, v in _extra_fields(record).items())
        line = (
            f"{_timestamp(record.created)} {record.levelname:<7} {'' if _worker is None else f'w{_worker} '}"
            f"[{getattr(record, 'request_id', request_id_var.get())}] {record.name}: {record.getMessage()}"
        )
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c.isspace() or c in '"=' for c in text)) else text


_installed: list[logging.Handler] = []


def configure_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    file: str | None = None,
    stream: TextIO | None = None,
    console: bool = True,
) -> None:
    """Install the kiro2api handlers on the root logger (idempotent: a second call replaces them).

    Args:
        level: a ``logging`` level name (settings normalise ``warn`` etc.).
        fmt: ``text`` or ``json``.
        file: also append to this file.
        stream: where console lines go (default stderr).
        console: False (LOG_CONSOLE=false): with ``file``, no console lines (without, they stay).
    """
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handlers: list[logging.Handler] = []
    if console or not file:
        handlers.append(logging.StreamHandler(stream if stream is not None else sys.stderr))
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        _installed.append(handler)
    root.setLevel(level)
    # Library chatter (h2's frame logs, httpcore's trace) only when asked for.
    for noisy in ("hpack", "h2", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def access_log(
    *,
    method: str,
    path: str,
    status: int,
    duration: float,
    protocol: str = "HTTP/1.1",
    ttfb: float | None = None,
    account: str | None = None,
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    client: str | None = None,
    error: str | None = None,
    key: str | None = None,
) -> None:
    """Write the one access-log line of a finished request (logger ``kiro2api.access``).

    Args:
        duration: seconds from the request head to the last byte sent.
        ttfb: seconds from the request head to the first response body byte, if any was sent.
        account: an account label; pass it already masked or as a description, never a token.
        key: the name of the client key that opened the route, never the key.
    """
    fields: dict[str, object] = {
        "method": method,
        "path": path,
        "status": status,
        "protocol": protocol,
        "duration_ms": round(duration * 1000, 1),
    }
    optional: dict[str, object | None] = {
        "ttfb_ms": None if ttfb is None else round(ttfb * 1000, 1),
        "account": account,
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "client": client,
        "error": error,
        "key": key,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    logging.getLogger(ACCESS_LOGGER_NAME).info("request", extra=fields)
