"""kiro_protocol: the Sans-IO core of kiro2api.

No I/O, no async, no threads, no clocks, no environment, no logging handlers: every function
consumes bytes and data (time is passed in as ``now``, ids and random numbers as arguments) and
returns events, decisions and bytes. Adapters under ``adapters/`` move the bytes.

The pipeline, one stage per group below:

1. client request -> ``parse_anthropic_request`` / ``parse_openai_request`` -> ``ChatRequest``
   -> ``convert_request`` -> ``KiroRequest`` (body checked by the linter, ``ResponsePlan``);
2. the account pool's ``Exchange`` decides which account, when to refresh, what to retry;
3. upstream bytes -> ``EventStreamDecoder`` -> ``parse_message`` -> typed upstream events;
4. ``ResponseTranslator`` (tracker + encoder) -> Anthropic or OpenAI SSE / JSON bytes.

This module is the whole public API; everything else is private.
"""

# errors and plain values
from ._error_bodies import anthropic_error_body, error_body_for, openai_error_body
from ._errors import ErrorKind, LocalProtocolError, ProtocolError, RemoteProtocolError
from ._http import HttpRequest, HttpResponse
from ._plan import ResponsePlan
from ._util import NEED_DATA, NeedData, NeedDataType
from ._version import __version__

# routing, auth, CORS
from ._routing import (
    CORS_HEADERS,
    REQUEST_ID_HEADER,
    Dialect,
    Endpoint,
    ErrorAnswer,
    MethodNotAllowed,
    Route,
    authenticate,
    dialect_for_path,
    error_answer,
    extract_client_token,
    format_request_id,
    preflight_headers,
    route_request,
    sane_request_id,
    split_target,
)

# client requests -> the internal request model -> the Kiro request
from ._request_model import (
    ImageBlock,
    OutputFormat,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolKind,
    ToolResultBlock,
    ToolUseBlock,
)
from ._request_model import Message as ChatMessage
from ._request_model import Request as ChatRequest
from ._anthropic_request import parse_anthropic_request
from ._openai_request import parse_openai_request
from ._conversion import ConversionConfig, KiroRequest, convert_request
from ._models import KIRO_MODELS, ModelInfo, list_models, parse_model_map, resolve_model
from ._linter import RULES, THINKING_PREFIX_MARKER, LintLimits, Violation, lint_kiro_body
from ._token_estimator import count_input_tokens, estimate_text_tokens

# the EventStream wire format and typed upstream events
from ._eventstream import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    END_OF_STREAM,
    ChecksumMismatch,
    EndOfStream,
    EndOfStreamType,
    EventStreamDecoder,
    EventStreamError,
    Header,
    HeaderType,
    HeaderValue,
    InvalidLength,
    MalformedHeader,
    TruncatedMessage,
    decode_all,
    encode_message,
)
from ._eventstream import Message as EventStreamMessage
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
from ._upstream_parse import UpstreamPayloadError, encode_upstream_event, parse_message
from ._upstream_errors import (
    PROMPT_TOO_LONG_PREFIX,
    FailureClass,
    UpstreamFailure,
    classify_stream_failure,
    classify_upstream_failure,
    connection_failure,
    stream_interrupted,
)

# the response: lifecycle events, encoders, the translator facade
from ._lifecycle_events import (
    ContentBlockStarted,
    ContentBlockStopped,
    LifecycleEvent,
    MessageDelta,
    MessageStarted,
    MessageStopped,
    Ping,
    ResponseEncoder,
    SignatureDelta,
    StopReason,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    Usage,
)
from ._lifecycle_events import ContentBlock as StartedContentBlock
from ._lifecycle_events import RedactedThinkingBlock as StartedRedactedThinkingBlock
from ._lifecycle_events import TextBlock as StartedTextBlock
from ._lifecycle_events import ThinkingBlock as StartedThinkingBlock
from ._lifecycle_events import ToolUseBlock as StartedToolUseBlock
from ._tracker import ResponseTracker
from ._sse import SSE_HEADERS, SSE_MEDIA_TYPE, AnthropicStreamEncoder
from ._anthropic_response import AnthropicMessageEncoder
from ._openai_response import OpenAIChunkEncoder, OpenAICompletionEncoder, openai_encoder
from ._translator import DEFAULT_PING_INTERVAL, ResponseTranslator

# the account pool
from ._credentials import AccountConfig, AuthMethod, ConfigurationError, parse_accounts
from ._kiro_identity import ClientVersions, Endpoints, machine_id
from ._refresh import RefreshedToken, RefreshFailure, build_refresh_request, parse_refresh_response
from ._usage_limits import UsageLimits, build_usage_limits_request, parse_usage_limits, remaining_credits
from ._pool import AccountState, NoAccountAvailableError, PoolSettings, Strategy, parse_strategy, unavailable_reason
from ._pool_status import pool_status
from ._pool_checks import AccountCheck, checks_due
from ._pool_decisions import (
    AcquireLease,
    CheckUsage,
    Decision,
    Done,
    LoadState,
    Persist,
    Refresh,
    Respond,
    Retry,
    SendUpstream,
    StartStream,
    Wait,
)
from ._exchange import Exchange, ExchangePhase

__all__ = [
    "__version__",
    # errors and values
    "ErrorKind", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    "anthropic_error_body", "openai_error_body", "error_body_for",
    "HttpRequest", "HttpResponse", "ResponsePlan", "NEED_DATA", "NeedData", "NeedDataType",
    # routing
    "Endpoint", "Dialect", "Route", "MethodNotAllowed", "route_request", "split_target",
    "dialect_for_path", "authenticate", "extract_client_token", "CORS_HEADERS",
    "preflight_headers", "REQUEST_ID_HEADER", "sane_request_id", "format_request_id",
    "ErrorAnswer", "error_answer",
    # requests
    "ChatRequest", "ChatMessage", "TextBlock", "ImageBlock", "ToolUseBlock", "ToolResultBlock",
    "ThinkingBlock", "RedactedThinkingBlock", "Tool", "ToolKind", "ToolChoice", "ThinkingConfig",
    "OutputFormat", "parse_anthropic_request", "parse_openai_request", "ConversionConfig",
    "KiroRequest", "convert_request", "ModelInfo", "resolve_model", "list_models",
    "parse_model_map", "KIRO_MODELS", "lint_kiro_body", "THINKING_PREFIX_MARKER", "LintLimits", "Violation", "RULES",
    "estimate_text_tokens", "count_input_tokens",
    # wire
    "EventStreamDecoder", "EventStreamMessage", "Header", "HeaderType", "HeaderValue",
    "END_OF_STREAM", "EndOfStream", "EndOfStreamType", "EventStreamError", "ChecksumMismatch",
    "InvalidLength", "MalformedHeader", "TruncatedMessage", "DEFAULT_MAX_MESSAGE_LENGTH",
    "encode_message", "decode_all", "parse_message", "encode_upstream_event",
    "UpstreamPayloadError",
    # upstream events and failures
    "AssistantResponse", "ToolUse", "ReasoningContent", "Metering", "ContextUsage", "TokenUsage",
    "MessageMetadata", "MessageStop", "InvalidState", "IgnoredUpstreamEvent",
    "UpstreamException", "UpstreamError", "UnknownUpstreamEvent", "UpstreamEvent",
    "FailureClass", "UpstreamFailure", "classify_upstream_failure", "classify_stream_failure",
    "connection_failure", "stream_interrupted", "PROMPT_TOO_LONG_PREFIX",
    # response
    "LifecycleEvent", "MessageStarted", "ContentBlockStarted", "TextDelta", "ThinkingDelta",
    "SignatureDelta", "ToolInputDelta", "ContentBlockStopped", "MessageDelta", "MessageStopped",
    "StreamFailed", "Ping", "StopReason", "Usage", "StartedContentBlock", "StartedTextBlock",
    "StartedThinkingBlock", "StartedRedactedThinkingBlock", "StartedToolUseBlock",
    "ResponseEncoder", "ResponseTracker", "AnthropicStreamEncoder", "AnthropicMessageEncoder",
    "SSE_HEADERS", "SSE_MEDIA_TYPE", "OpenAIChunkEncoder", "OpenAICompletionEncoder",
    "openai_encoder", "ResponseTranslator", "DEFAULT_PING_INTERVAL",
    # accounts
    "AccountConfig", "AuthMethod", "ConfigurationError", "parse_accounts", "ClientVersions",
    "Endpoints", "machine_id", "RefreshedToken", "RefreshFailure", "build_refresh_request",
    "parse_refresh_response", "UsageLimits", "build_usage_limits_request", "parse_usage_limits",
    "remaining_credits", "PoolSettings", "Strategy", "parse_strategy", "AccountState",
    "NoAccountAvailableError", "unavailable_reason", "pool_status", "AccountCheck", "checks_due", "Exchange",
    "ExchangePhase", "Decision", "LoadState", "AcquireLease", "Wait", "Refresh", "CheckUsage",
    "Persist", "Retry", "SendUpstream", "StartStream", "Respond", "Done",
]
