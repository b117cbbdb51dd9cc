"""The gateway's own HTTP face: routing, client authentication, CORS, request ids, error bodies and plain request/response values.

This module is the public API of ``kiro_protocol.http``; its modules are private.
"""

from ._error_bodies import (
    anthropic_error_body,
    error_body_for,
    openai_error_body,
)
from ._messages import (
    HttpRequest,
    HttpResponse,
)
from ._routing import (
    authenticate,
    CORS_HEADERS,
    Dialect,
    dialect_for_path,
    Endpoint,
    error_answer,
    ErrorAnswer,
    extract_client_token,
    format_request_id,
    MethodNotAllowed,
    preflight_headers,
    REQUEST_ID_HEADER,
    Route,
    route_request,
    sane_request_id,
    split_target,
)

__all__ = [
    "anthropic_error_body",
    "error_body_for",
    "openai_error_body",
    "HttpRequest",
    "HttpResponse",
    "authenticate",
    "CORS_HEADERS",
    "Dialect",
    "dialect_for_path",
    "Endpoint",
    "error_answer",
    "ErrorAnswer",
    "extract_client_token",
    "format_request_id",
    "MethodNotAllowed",
    "preflight_headers",
    "REQUEST_ID_HEADER",
    "Route",
    "route_request",
    "sane_request_id",
    "split_target",
]
