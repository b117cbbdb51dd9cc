"""The handler vocabulary the pumps speak (defined once, in ``adapters.runtime.app``).

The pumps hand a ``RequestHead``, a ``RequestBody`` and a ``Responder`` to the ``Handler``; in
the gateway that is the shared ``App`` (the core's front door, then the endpoint), so no protocol
decision lives in the pumps.
"""

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

__all__ = [
    "ApiService", "App", "Handler", "Lifecycle", "Request", "RequestBody", "RequestContext", "RequestHead",
    "RequestLog", "Responder", "whole_request",
]
