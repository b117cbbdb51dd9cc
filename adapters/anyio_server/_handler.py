"""The handler vocabulary the pumps speak (defined once, in ``adapters.runtime.app``).

The pumps build a ``Request`` and drive a ``Responder``; the ``Handler`` they call is the shared
``App`` (routing, auth, CORS, limits, access log), so no protocol logic lives in the pumps.
"""

from adapters.runtime.app import ApiService, App, Handler, Lifecycle, Request, RequestContext, RequestLog, Responder

__all__ = ["ApiService", "App", "Handler", "Lifecycle", "Request", "RequestContext", "RequestLog", "Responder"]
