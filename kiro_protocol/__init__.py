"""kiro_protocol: the Sans-IO core of kiro2api.

No I/O, no async, no threads, no clocks, no environment, no logging handlers: every function
consumes bytes and data (time is passed in as ``now``, ids and random numbers as arguments) and
returns events, decisions and bytes. Adapters under ``adapters/`` move the bytes.

The pipeline, one subpackage per stage (docs/architecture.md walks one request through it):

- ``http``: the gateway's own HTTP face: routing, auth, CORS, request ids, error answers;
- ``keys``: named client keys, their limits and quotas;
- ``requests``: a client body (Anthropic or OpenAI) -> the internal request -> the Kiro body,
  checked against Kiro's limits by the linter;
- ``pool``: which account, when to refresh, what to retry (``Exchange``, ``AccountCheck``);
- ``wire``: AWS EventStream framing and server-sent events;
- ``responses``: Kiro's events -> the response tracker -> Anthropic or OpenAI SSE / JSON.

This module is what adapters and embedders import; each subpackage's ``__init__`` has the rest
of its stage's API.
"""

from ._errors import ErrorKind, LocalProtocolError, ProtocolError, RemoteProtocolError
from ._json_codec import JsonCodec, json_codec_name, use_json_codec
from ._version import __version__
from .accounting import GROUPINGS as USAGE_GROUPINGS
from .accounting import MODEL_ENDPOINTS, endpoint_label
from .accounting import UsageRecord, UsageTotals, clip_label, parse_since, retention_cutoff, summarize_usage
from .call import Answer, CallIds, CallSetup, ClientOutput, ModelCall
from .http import (
    BodyProblem,
    AdminAction,
    AdminCall,
    AdminSession,
    DashboardDoor,
    ClientAuth,
    Dialect,
    Endpoint,
    HealthFacts,
    HttpRequest,
    HttpResponse,
    Reply,
    ReplyNow,
    RequestHead,
    Route,
    Serve,
    ServerState,
    body_refused,
    endpoint_error,
    front_door,
    health_reply,
    internal_error,
    store_unavailable,
    malformed_request,
    no_response,
    not_started,
)
from .keys import (
    KEY_RATE_WINDOW,
    ClientKey,
    KeyCounts,
    KeyLimits,
    format_time,
    key_admission,
    make_client_key,
    model_refusal,
    parse_expiry,
    parse_models,
    quota_periods,
)
from .pool import (
    AccountCheck,
    AccountConfig,
    AccountState,
    AcquireLease,
    CheckModels,
    CheckUsage,
    ConfigurationError,
    Decision,
    Done,
    Endpoints,
    LoadState,
    Persist,
    PoolSettings,
    Refresh,
    Retry,
    SendUpstream,
    StartStream,
    UpstreamFailure,
    Wait,
    checks_due,
    connection_failure,
    parse_accounts,
    parse_strategy,
    account_status,
    parse_account,
    unavailable_reason,
)
from .requests import (
    KIRO_MODELS,
    THINKING_PREFIX_MARKER,
    ConversionConfig,
    ImageJob,
    ImageTransformError,
    LintLimits,
    count_input_tokens,
    estimate_text_tokens,
    lint_kiro_body,
    list_models,
    parse_anthropic_request,
    parse_model_map,
)
from ._util import NEED_DATA, uuid4_text
from .wire import HttpAnswerReader, ResponseEnd, ResponseHead, UpstreamHttpError, encode_request, may_send_again
from .responses import (
    AssistantResponse,
    ContextUsage,
    MessageMetadata,
    MessageStop,
    Metering,
    ReasoningContent,
    TokenUsage,
    ToolUse,
    UpstreamError,
    UpstreamEvent,
    UpstreamException,
    encode_upstream_event,
)

__all__ = [
    "__version__",
    # errors
    "ErrorKind", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    # the optional JSON accelerator (orjson, installed by the adapters)
    "JsonCodec", "use_json_codec", "json_codec_name",
    # http
    "HttpRequest", "HttpResponse", "Endpoint", "Dialect", "Route",
    # http: the front door and the answers outside the endpoints
    "RequestHead", "ClientAuth", "ServerState", "front_door", "ReplyNow", "Serve", "Reply", "BodyProblem",
    "body_refused", "endpoint_error", "malformed_request", "not_started", "no_response", "internal_error",
    "store_unavailable",
    # http: the admin door (docs/admin.md)
    "AdminAction", "AdminCall", "AdminSession", "DashboardDoor",
    # http: /health, readiness and liveness (docs/deployment.md)
    "HealthFacts", "health_reply",
    # named client keys and their limits
    "ClientKey", "KeyLimits", "KeyCounts", "make_client_key", "parse_expiry", "parse_models", "format_time",
    "key_admission", "model_refusal", "quota_periods", "KEY_RATE_WINDOW",
    # requests
    "parse_anthropic_request", "ConversionConfig", "ImageJob", "ImageTransformError",
    "list_models", "parse_model_map", "KIRO_MODELS", "lint_kiro_body",
    "LintLimits", "THINKING_PREFIX_MARKER", "count_input_tokens", "estimate_text_tokens",
    # pool
    "AccountConfig", "ConfigurationError", "parse_accounts", "parse_account", "account_status", "Endpoints",
    "PoolSettings", "parse_strategy",
    "AccountState", "unavailable_reason", "AccountCheck", "checks_due", "Decision", "LoadState",
    "AcquireLease", "Wait", "Refresh", "CheckModels", "CheckUsage", "Persist", "Retry", "SendUpstream", "StartStream",
    "Done", "UpstreamFailure", "connection_failure",
    # one model request, end to end
    "ModelCall", "CallSetup", "CallIds", "Answer", "ClientOutput",
    # usage accounting
    "UsageRecord", "UsageTotals", "USAGE_GROUPINGS", "summarize_usage", "parse_since", "retention_cutoff", "clip_label",
    "MODEL_ENDPOINTS", "endpoint_label",
    # the upstream connection's HTTP/1.1 framing
    "HttpAnswerReader", "NEED_DATA", "ResponseEnd", "ResponseHead", "UpstreamHttpError", "encode_request",
    "may_send_again",
    # ids: the text of a version-4 UUID from bytes the caller chose
    "uuid4_text",
    # responses (the upstream events are what the simulator encodes)
    "UpstreamEvent",
    "AssistantResponse", "ToolUse", "ReasoningContent", "Metering", "ContextUsage", "TokenUsage",
    "MessageMetadata", "MessageStop", "UpstreamError", "UpstreamException", "encode_upstream_event",
]
