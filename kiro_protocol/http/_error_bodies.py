"""Render an error into each client dialect's JSON shape.

One pure function per dialect so that every adapter answers errors byte-for-byte alike.
"""

from __future__ import annotations

import json

from .._errors import ErrorKind, ProtocolError

__all__ = ["anthropic_error_body", "openai_error_body", "error_body_for"]

# OpenAI's own `type` strings for the same failure classes.
_OPENAI_TYPES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API: "api_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}

_OPENAI_CODES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request",
    ErrorKind.AUTHENTICATION: "invalid_api_key",
    ErrorKind.PERMISSION: "permission_denied",
    ErrorKind.NOT_FOUND: "not_found",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.API: "api_error",
    ErrorKind.OVERLOADED: "overloaded",
}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def anthropic_error_body(kind: ErrorKind, message: str) -> bytes:
    """``{"type":"error","error":{"type":...,"message":...}}`` as Anthropic's API sends it."""
    return _dumps({"type": "error", "error": {"type": kind.value, "message": message}})


def openai_error_body(kind: ErrorKind, message: str, *, param: str | None = None) -> bytes:
    """``{"error":{"message","type","param","code"}}`` as OpenAI's API sends it."""
    return _dumps(
        {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES[kind],
                "param": param,
                "code": _OPENAI_CODES[kind],
            }
        }
    )


def error_body_for(error: ProtocolError, *, dialect: str) -> bytes:
    """The body for ``error`` in ``dialect`` (``"anthropic"`` or ``"openai"``)."""
    if dialect == "openai":
        return openai_error_body(error.kind, error.message, param=error.param)
    return anthropic_error_body(error.kind, error.message)
