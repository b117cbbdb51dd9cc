"""The gateway's own HTTP face: the front door (routing, client authentication, CORS, request ids, limits), error bodies and plain request/response values.

This module is the public API of ``kiro_protocol.http``; its modules are private.
"""

from ._error_bodies import (
    anthropic_error_body,
    error_body_for,
    openai_error_body,
)
from ._front_door import (
    body_refused,
    BodyProblem,
    ClientAuth,
    endpoint_error,
    front_door,
    internal_error,
    malformed_request,
    no_response,
    not_started,
    ReplyNow,
    RequestHead,
    Serve,
    ServerState,
)
from ._messages import (
    Reply,
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
    "body_refused",
    "BodyProblem",
    "ClientAuth",
    "endpoint_error",
    "front_door",
    "internal_error",
    "malformed_request",
    "no_response",
    "not_started",
    "Reply",
    "ReplyNow",
    "RequestHead",
    "Serve",
    "ServerState",
    "HttpRequest",
    "HttpResponse",
    "authenticate",
    "CORS_HEADERS",
    "Dialect",
    "dialect_for_path",
    "Endpoint",
    "error_answer",
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
