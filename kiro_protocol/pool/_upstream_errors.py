"""What an upstream (Kiro) HTTP failure means: for the account pool, and for the client.

One classifier, two consumers: the account pool reads ``failure_class`` to decide what happens
to the account and whether the request moves elsewhere (docs/kiro-protocol.md, Answers before
the stream; docs/accounts.md, Failure rules); the adapters answer the client with
``client_error`` when no retry is left. Both come from the same parse of the same body, so they
cannot disagree.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass

from .._errors import ErrorKind, ProtocolError, RemoteProtocolError
from ._redaction import redact

__all__ = [
    "FailureClass",
    "UpstreamFailure",
    "classify_upstream_failure",
    "connection_failure",
    "classify_stream_failure",
    "stream_interrupted",
    "is_content_length_exception",
    "PROMPT_TOO_LONG_PREFIX",
]

#: Anthropic's own wording for an over-long input; Claude Code recognises this prefix and
#: offers to compact the conversation instead of showing a generic failure.
PROMPT_TOO_LONG_PREFIX = "prompt is too long"

# Long upstream bodies are cut when quoted back to the client or a log.
_MAX_QUOTED = 500


class FailureClass(enum.Enum):
    """Why an upstream call failed, in the terms the account pool acts on."""

    #: 401/403: the access token is invalid or expired -> refresh once, retry the same request.
    INVALID_TOKEN = "invalid_token"
    #: 402 or ``MONTHLY_REQUEST_COUNT``: the account's quota is used up until its reset.
    QUOTA_EXHAUSTED = "quota_exhausted"
    #: 429 (and 408): throttled -> cool the account down, try another; never disable it.
    THROTTLED = "throttled"
    #: 5xx: upstream trouble -> the request moves to another account.
    SERVER_ERROR = "server_error"
    #: No HTTP answer at all (connect/read failure, timeout) -> another account.
    CONNECTION_FAILED = "connection_failed"
    #: 400 ``CONTENT_LENGTH_EXCEEDS_THRESHOLD`` / ``Input is too long``: the client's fault.
    INPUT_TOO_LONG = "input_too_long"
    #: 400 ``Improperly formed request``: the body broke an upstream rule (our linter missed it).
    MALFORMED_REQUEST = "malformed_request"
    #: Any other 4xx: not retried.
    BAD_REQUEST = "bad_request"
    #: Kiro cut the answer inside a tool call (its arguments never completed). Not the account's
    #: fault, and another account would cut it the same way: the call asks again, differently.
    TOOL_CALL_CUT = "tool_call_cut"

    @property
    def retry_elsewhere(self) -> bool:
        """Whether another account may succeed where this one failed."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        FailureClass.INVALID_TOKEN,
        FailureClass.QUOTA_EXHAUSTED,
        FailureClass.THROTTLED,
        FailureClass.SERVER_ERROR,
        FailureClass.CONNECTION_FAILED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamFailure:
    #: How the pool should treat it.
    failure_class: FailureClass
    #: The upstream HTTP status (0 for a connection failure).
    status: int
    #: Upstream's own message (``message`` field, or the body text), cut to a sane length.
    message: str
    #: Upstream's machine-readable ``reason`` (``CONTENT_LENGTH_EXCEEDS_THRESHOLD`` ...), if any.
    reason: str | None
    #: What the client is told when this failure is final.
    client_error: ProtocolError


def _quote(text: str, secrets: Iterable[str | None] = ()) -> str:
    # Redacted before the cut, so a cut cannot leave the head of a token unrecognisable.
    text = " ".join(redact(text, secrets).split())
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _parse_body(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, reason, exception type) from an upstream error body, tolerating any shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text) if text else None
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return text, None, None
    inner = obj.get("error") if isinstance(obj.get("error"), dict) else None
    message = obj.get("message", obj.get("Message"))
    reason = obj.get("reason")
    type_ = obj.get("__type")
    if inner is not None:
        message = message if message is not None else inner.get("message")
        reason = reason if reason is not None else inner.get("reason")
    return (
        message if isinstance(message, str) else text,
        reason if isinstance(reason, str) else None,
        type_ if isinstance(type_, str) else None,
    )


def _error(kind: ErrorKind, message: str, status: int | None = None) -> ProtocolError:
    return RemoteProtocolError(message, kind=kind, status_hint=status if status is not None else kind.default_status)


def classify_upstream_failure(status: int, body: bytes, *, secrets: Iterable[str | None] = ()) -> UpstreamFailure:
    """Classify a non-200 answer of ``generateAssistantResponse``.

    Args:
        status: the upstream HTTP status (anything but 200).
        body: the upstream response body (JSON or text; any bytes are tolerated).
        secrets: the account's token values, never quoted (token-shaped text is masked anyway,
            see ``_redaction``).
    """
    secrets = tuple(secrets)
    message, reason, type_ = _parse_body(body)
    message = redact(message, secrets)
    reason = redact(reason, secrets) if reason is not None else None
    quoted = _quote(message) or f"HTTP {status}"
    haystack = f"{message} {reason or ''} {body[:4096].decode('utf-8', 'replace')}"

    if "MONTHLY_REQUEST_COUNT" in haystack or status == 402:
        cls = FailureClass.QUOTA_EXHAUSTED
        err = _error(ErrorKind.RATE_LIMIT, f"The Kiro account's monthly request quota is exhausted ({quoted}).")
    elif status in (401, 403):
        cls = FailureClass.INVALID_TOKEN
        err = _error(
            ErrorKind.API,
            f"Kiro rejected the account's access token (HTTP {status}: {quoted}).",
            502,
        )
    elif status in (408, 429):
        cls = FailureClass.THROTTLED
        err = _error(ErrorKind.RATE_LIMIT, f"Kiro is throttling requests (HTTP {status}: {quoted}).")
    elif status >= 500:
        cls = FailureClass.SERVER_ERROR
        if status == 500:
            err = _error(ErrorKind.API, f"Kiro failed with an internal error (HTTP 500: {quoted}).")
        else:
            err = _error(ErrorKind.OVERLOADED, f"Kiro is unavailable (HTTP {status}: {quoted}).")
    elif (
        reason == "CONTENT_LENGTH_EXCEEDS_THRESHOLD"
        or "CONTENT_LENGTH_EXCEEDS_THRESHOLD" in haystack
        or "Input is too long" in haystack
    ):
        cls = FailureClass.INPUT_TOO_LONG
        err = _error(
            ErrorKind.INVALID_REQUEST,
            f"{PROMPT_TOO_LONG_PREFIX}: the conversation exceeds what Kiro accepts for this model "
            f"(Kiro: {quoted}). Compact or shorten the conversation.",
            400,
        )
    elif "Improperly formed request" in haystack:
        cls = FailureClass.MALFORMED_REQUEST
        err = _error(ErrorKind.INVALID_REQUEST, f"Kiro rejected the request as malformed: {quoted}", 400)
    else:
        cls = FailureClass.BAD_REQUEST
        label = f"{_quote(type_, secrets)}: " if type_ else ""
        err = _error(ErrorKind.INVALID_REQUEST, f"Kiro rejected the request (HTTP {status}: {label}{quoted}).", 400)
    return UpstreamFailure(failure_class=cls, status=status, message=_quote(message), reason=reason, client_error=err)


def connection_failure(message: str) -> UpstreamFailure:
    """A failure with no HTTP answer: connect error, reset, timeout. ``message`` must hold no secret."""
    return UpstreamFailure(
        failure_class=FailureClass.CONNECTION_FAILED,
        status=0,
        message=_quote(message),
        reason=None,
        client_error=_error(ErrorKind.OVERLOADED, f"Could not reach Kiro: {_quote(message)}"),
    )


def is_content_length_exception(exception_type: str, message: str = "") -> bool:
    """Whether a mid-stream exception means "the answer was cut for length"
    (docs/kiro-protocol.md, Exception and error frames).

    Matches ``ContentLengthExceededException`` and anything naming ``CONTENT_LENGTH_EXCEEDS``.
    """
    return exception_type == "ContentLengthExceededException" or "CONTENT_LENGTH_EXCEEDS" in (
        f"{exception_type} {message}"
    )


# Exception type (header ``:exception-type`` / ``:error-code``) -> (pool class, client kind).
# Throttling and internal errors in a 200 stream are failures (``overloaded_error`` /
# ``api_error``; docs/kiro-protocol.md, Exception and error frames); the pool may still retry
# them on another account if nothing reached the client yet.
_STREAM_EXCEPTIONS: dict[str, tuple[FailureClass, ErrorKind]] = {
    "ThrottlingException": (FailureClass.THROTTLED, ErrorKind.OVERLOADED),
    "ServiceQuotaExceededException": (FailureClass.QUOTA_EXHAUSTED, ErrorKind.RATE_LIMIT),
    "InternalServerException": (FailureClass.SERVER_ERROR, ErrorKind.API),
    "ServiceUnavailableException": (FailureClass.SERVER_ERROR, ErrorKind.OVERLOADED),
    "AccessDeniedException": (FailureClass.INVALID_TOKEN, ErrorKind.API),
    "ExpiredTokenException": (FailureClass.INVALID_TOKEN, ErrorKind.API),
    "ValidationException": (FailureClass.MALFORMED_REQUEST, ErrorKind.INVALID_REQUEST),
    "ResourceNotFoundException": (FailureClass.BAD_REQUEST, ErrorKind.INVALID_REQUEST),
    "ConflictException": (FailureClass.BAD_REQUEST, ErrorKind.INVALID_REQUEST),
}


def classify_stream_failure(exception_type: str, message: str) -> UpstreamFailure:
    """Classify an exception or error frame that arrived inside a 200 EventStream
    (docs/kiro-protocol.md, Exception and error frames).

    Args:
        exception_type: the ``:exception-type`` (or ``:error-code``) of the frame, e.g.
            ``ThrottlingException``; ``invalidStateEvent`` for an invalid-state event.
        message: upstream's message (payload ``message`` or ``:error-message``).

    The client message always says that Kiro failed *during* the response and quotes upstream.
    A content-length exception classified here is one that arrived before any output (after
    output began it is a ``max_tokens`` stop, decided by the response tracker, not an error).
    """
    quoted = _quote(message) or "no message"
    label = exception_type or "UnknownException"
    if is_content_length_exception(exception_type, message):
        cls, kind = FailureClass.INPUT_TOO_LONG, ErrorKind.INVALID_REQUEST
        text = (
            f"{PROMPT_TOO_LONG_PREFIX}: Kiro ended the response for length before any output "
            f"({label}: {quoted}). Compact or shorten the conversation."
        )
    elif "MONTHLY_REQUEST_COUNT" in message:
        cls, kind = FailureClass.QUOTA_EXHAUSTED, ErrorKind.RATE_LIMIT
        text = f"The Kiro account's monthly request quota is exhausted ({label}: {quoted})."
    elif exception_type == "invalidStateEvent":
        cls, kind = FailureClass.MALFORMED_REQUEST, ErrorKind.INVALID_REQUEST
        text = f"Kiro reported an invalid conversation state: {quoted}"
    else:
        cls, kind = _STREAM_EXCEPTIONS.get(exception_type, (FailureClass.SERVER_ERROR, ErrorKind.API))
        text = f"Kiro failed during the response ({label}: {quoted})."
    return UpstreamFailure(
        failure_class=cls,
        status=200,
        message=_quote(message),
        reason=None,
        client_error=_error(kind, text),
    )


def stream_interrupted(message: str) -> UpstreamFailure:
    """The 200 response could not be read to its end: corrupt EventStream bytes, a truncated
    frame, or a connection that broke. ``message`` says which and must hold no secret."""
    return UpstreamFailure(
        failure_class=FailureClass.CONNECTION_FAILED,
        status=200,
        message=_quote(message),
        reason=None,
        client_error=_error(ErrorKind.API, _quote(message), 502),
    )
