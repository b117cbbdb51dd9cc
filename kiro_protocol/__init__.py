"""kiro_protocol: the Sans-IO core of kiro2api.

No I/O, no async, no threads, no clocks, no environment, no logging handlers: every function
consumes bytes and data (time is passed in as ``now``) and returns events, decisions and bytes.
Adapters under ``adapters/`` move the bytes. This module is the whole public API.
"""

from ._error_bodies import anthropic_error_body, error_body_for, openai_error_body
from ._errors import ErrorKind, LocalProtocolError, ProtocolError, RemoteProtocolError
from ._http import HttpRequest, HttpResponse
from ._plan import ResponsePlan
from ._upstream_events import (
    AssistantResponse,
    ContextUsage,
    IgnoredUpstreamEvent,
    InvalidState,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    TokenUsage,
    ToolUse,
    UnknownUpstreamEvent,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
)
from ._util import NEED_DATA, NeedData, NeedDataType
from ._version import __version__

__all__ = [
    "__version__",
    # errors
    "ErrorKind",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "anthropic_error_body",
    "openai_error_body",
    "error_body_for",
    # values
    "HttpRequest",
    "HttpResponse",
    "ResponsePlan",
    "NEED_DATA",
    "NeedData",
    "NeedDataType",
    # upstream events
    "AssistantResponse",
    "ToolUse",
    "ReasoningContent",
    "Metering",
    "ContextUsage",
    "TokenUsage",
    "MessageMetadata",
    "MessageStop",
    "InvalidState",
    "IgnoredUpstreamEvent",
    "UpstreamException",
    "UpstreamError",
    "UnknownUpstreamEvent",
    "UpstreamEvent",
]
