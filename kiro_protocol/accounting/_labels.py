"""Which requests usage accounting records, and the bounded endpoint label of any request."""

from __future__ import annotations

from .._errors import ProtocolError
from ..http import Endpoint, route_request

__all__ = ["MODEL_ENDPOINTS", "endpoint_label"]

#: The endpoints whose requests are model requests: each one gets a usage record.
MODEL_ENDPOINTS = frozenset({Endpoint.MESSAGES, Endpoint.CHAT_COMPLETIONS, Endpoint.RESPONSES})


def endpoint_label(method: str, path: str) -> str:
    """The endpoint a request answered by the front door itself was for (``messages`` for a
    401 on ``/v1/messages``), ``other`` for a path or method the gateway does not serve: a
    metric label never holds a path a client chose."""
    try:
        return route_request(method, path).endpoint.value
    except ProtocolError:
        return "other"
