"""The standalone server on anyio with h11 and h2 (``kiro2api serve``).

``Server`` accepts connections and runs an HTTP/1.1 (h11) or HTTP/2 (h2) pump per connection;
both pumps drive one shared handler (``App``: the core's front door, then an ``ApiService``).
"""

from ._common import ConnectionLimits
from adapters.runtime.basic_service import BasicService, ModelEntry
from adapters.runtime.app import (
    ApiService,
    App,
    Handler,
    Lifecycle,
    Request,
    RequestBody,
    RequestContext,
    RequestHead,
    RequestLog,
    Responder,
    whole_request,
)
from ._main import build_server, run, serve_settings
from ._server import Server, handle_signals, make_ssl_context

__all__ = [
    "ApiService",
    "App",
    "BasicService",
    "ConnectionLimits",
    "Handler",
    "Lifecycle",
    "ModelEntry",
    "Request",
    "RequestBody",
    "RequestContext",
    "RequestHead",
    "RequestLog",
    "Responder",
    "Server",
    "build_server",
    "handle_signals",
    "make_ssl_context",
    "run",
    "serve_settings",
    "whole_request",
]
