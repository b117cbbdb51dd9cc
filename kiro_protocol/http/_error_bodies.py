"""Render an error into each client dialect's JSON shape.

One pure function per dialect so that every adapter answers errors byte-for-byte alike.
"""

from __future__ import annotations

import json

from .._errors import ErrorKind, ProtocolError
from ..pool._upstream_errors import PROMPT_TOO_LONG_PREFIX

__all__ = ["anthropic_error_body", "openai_error_body", "responses_error_code", "responses_error_body", "error_body_for"]

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


# The Responses API's codes where they differ from Chat Completions': the Codex CLI acts on these
# three (context_length_exceeded -> "context window exceeded", not retried; server_is_overloaded;
# rate_limit_exceeded with "try again in N s"), everything else it retries or shows as it is.
_RESPONSES_CODES: dict[ErrorKind, str] = {
    **_OPENAI_CODES,
    ErrorKind.API: "server_error",
    ErrorKind.OVERLOADED: "server_is_overloaded",
}


def responses_error_code(kind: ErrorKind, message: str) -> str:
    """The Responses API ``code`` of an error: an over-long conversation is
    ``context_length_exceeded`` (what Codex matches to offer compaction), else by kind."""
    if kind is ErrorKind.INVALID_REQUEST and message.startswith(PROMPT_TOO_LONG_PREFIX):
        return "context_length_exceeded"
    return _RESPONSES_CODES[kind]


def responses_error_body(kind: ErrorKind, message: str, *, param: str | None = None) -> bytes:
    """``{"error":{"message","type","param","code"}}`` for ``/v1/responses`` (OpenAI's shape,
    the Responses API's codes)."""
    return _dumps(
        {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES[kind],
                "param": param,
                "code": responses_error_code(kind, message),
            }
        }
    )


def error_body_for(error: ProtocolError, *, dialect: str) -> bytes:
    """The body for ``error`` in ``dialect`` (``"anthropic"``, ``"openai"`` or ``"responses"``)."""
    if dialect == "responses":
        return responses_error_body(error.kind, error.message, param=error.param)
    if dialect == "openai":
        return openai_error_body(error.kind, error.message, param=error.param)
    return anthropic_error_body(error.kind, error.message)
