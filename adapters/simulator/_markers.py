"""Scenario markers (``[[sim:NAME]]``, ``[[sim:NAME:ARG]]``) in the prompt, and Kiro's error bodies.

A marker in the latest user text selects what the simulator does: fail like Kiro does, shape
the answer (length, pace, unicode, parallel tool calls) or break the stream in a chosen way.
docs/simulator.md lists every marker; ``MARKERS`` here is the same list, so unknown markers can
be reported instead of silently ignored. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Markers",
    "parse_markers",
    "strip_markers",
    "HttpFailure",
    "HTTP_FAILURES",
    "echo_auth_failure",
    "STREAM_FAILURES",
    "SEARCH_FAILURES",
    "MARKERS",
    "kiro_error_body",
    "IMPROPERLY_FORMED",
    "INPUT_TOO_LONG",
    "INVALID_BEARER",
    "INVALID_MODEL",
]

_MARKER = re.compile(r"\[\[sim:([A-Za-z][A-Za-z0-9-]*)((?::[^\]:\s]*)*)\]\]")

#: The largest ``long:N`` and ``tools:N`` accepted (bigger values are clamped).
MAX_LONG_FRAMES = 200_000
MAX_TOOL_CALLS = 64
#: The largest ``slow:MS`` and ``stall:MS`` accepted.
MAX_SLOW_MS = 60_000
MAX_STALL_MS = 600_000


def kiro_error_body(message: str, reason: str | None = None, type_: str | None = None) -> bytes:
    """A Kiro error body: ``{"message": ..., "reason": ...}`` (plus ``__type`` when given)."""
    obj: dict[str, object] = {}
    if type_ is not None:
        obj["__type"] = f"com.amazon.aws.codewhisperer#{type_}"
    obj["message"] = message
    obj["reason"] = reason
    return json.dumps(obj, separators=(",", ":")).encode()


#: The catch-all schema violation answer (docs/kiro-protocol.md, Answers before the stream).
IMPROPERLY_FORMED = kiro_error_body("Improperly formed request.")
#: The exact input-too-long answer (docs/kiro-protocol.md, Answers before the stream).
INPUT_TOO_LONG = kiro_error_body("Input content length exceeds threshold.", "CONTENT_LENGTH_EXCEEDS_THRESHOLD")
#: A missing, unknown or expired access token.
INVALID_BEARER = kiro_error_body("The bearer token included in the request is invalid.")
#: An unknown ``modelId``.
INVALID_MODEL = kiro_error_body("Invalid model. Please select a different model to continue.", "INVALID_MODEL_ID")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFailure:
    """A complete non-200 answer of ``generateAssistantResponse``."""

    status: int
    body: bytes
    #: ``x-amzn-ErrorType`` (AWS names the exception in this header too).
    error_type: str | None = None


def _server_error(args: tuple[str, ...]) -> HttpFailure:
    if args and args[0] == "503":
        body = kiro_error_body("Service is temporarily unavailable.", None, "ServiceUnavailableException")
        return HttpFailure(status=503, body=body, error_type="ServiceUnavailableException")
    message = "Encountered an unexpected error when processing the request, please try again."
    body = kiro_error_body(message, None, "InternalServerException")
    return HttpFailure(status=500, body=body, error_type="InternalServerException")


_SUSPENDED = (
    "Your User ID temporarily is suspended. We've temporarily limited access as a security precaution."
)

#: Markers answered with an HTTP error instead of a stream: name -> answer for the marker's args.
HTTP_FAILURES: dict[str, Callable[[tuple[str, ...]], HttpFailure]] = {
    "throttle": lambda args: HttpFailure(
        status=429,
        body=kiro_error_body("Rate exceeded.", None, "ThrottlingException"),
        error_type="ThrottlingException",
    ),
    "expired-token": lambda args: HttpFailure(status=403, body=INVALID_BEARER, error_type="AccessDeniedException"),
    "suspended": lambda args: HttpFailure(
        status=403,
        body=kiro_error_body(_SUSPENDED, "TEMPORARILY_SUSPENDED", "AccessDeniedException"),
        error_type="AccessDeniedException",
    ),
    "quota": lambda args: HttpFailure(
        status=402,
        body=kiro_error_body(
            "You have reached the limit of requests for this month.", "MONTHLY_REQUEST_COUNT", "ThrottlingException"
        ),
        error_type="ThrottlingException",
    ),
    "server-error": _server_error,
    "input-too-long": lambda args: HttpFailure(status=400, body=INPUT_TOO_LONG, error_type="ValidationException"),
    "improperly-formed": lambda args: HttpFailure(
        status=400, body=IMPROPERLY_FORMED, error_type="ValidationException"
    ),
    # A hostile or broken upstream quoting the request's credentials back (the generate endpoint
    # puts the real Authorization header in; see ``echo_auth_failure``): what the gateway must
    # never relay to its client.
    "echo-auth": lambda args: echo_auth_failure("Bearer <the request's token>"),
}


def echo_auth_failure(authorization: str) -> HttpFailure:
    """``[[sim:echo-auth]]``: a 400 whose message quotes ``authorization`` word for word."""
    message = f"Unexpected header Authorization: {authorization}"
    return HttpFailure(status=400, body=kiro_error_body(message, None, "ValidationException"), error_type="ValidationException")

#: ``search-error``: what the MCP endpoint does with a search for a query holding it (an
#: argument -> the answer; no argument: a JSON-RPC error). Other endpoints ignore it.
SEARCH_FAILURES = frozenset({"rpc", "garbage", "tool", "results"})

#: Markers that answer 200 and then break or end the EventStream in a particular way.
STREAM_FAILURES = frozenset(
    {"exception-mid-stream", "content-length-exceeded", "error-frame", "truncate", "bad-crc", "drop"}
)
_SHAPES = frozenset(
    {"long", "slow", "stall", "unicode", "tools", "tool", "thinking", "reasoning", "token-usage", "context-full", "plan"}
)
#: Every marker name the simulator understands.
MARKERS = frozenset(HTTP_FAILURES) | STREAM_FAILURES | _SHAPES | {"search-error"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Markers:
    """The markers found in one prompt."""

    #: The failure scenario (the first failure marker in the text), if any.
    failure: str | None = None
    #: Its arguments (``server-error:503`` -> ``("503",)``), ``once`` removed.
    failure_args: tuple[str, ...] = ()
    #: ``:once``: the failure fires for the first request with this prompt only.
    once: bool = False
    #: ``long:N``: the text is exactly N frames.
    long: int | None = None
    #: ``slow:MS``: pause between frames.
    slow_ms: int | None = None
    #: ``unicode``: multi-byte text split across frames.
    unicode: bool = False
    #: ``tools:N``: N tool calls.
    tools: int | None = None
    #: ``tool:NAME``: call this tool.
    tool_name: str | None = None
    #: ``thinking``: think even without the thinking-mode prefix.
    thinking: bool = False
    #: ``reasoning``: think in ``reasoningContentEvent`` frames (newer backends) instead of tags.
    reasoning: bool = False
    #: ``token-usage``: end with a ``messageMetadataEvent`` (token usage, stop reason) and a
    #: ``messageStopEvent``, as newer backends do.
    token_usage: bool = False
    #: ``context-full``: the context-usage event reports 100 %.
    context_full: bool = False
    #: ``stall:MS``: one pause of MS milliseconds after the first frames.
    stall_ms: int | None = None
    #: ``search-error[:KIND]``: how a web search for this text fails (``SEARCH_FAILURES``).
    search_error: str | None = None
    #: ``plan:TOOL:TOOL@2:...``: one tool call per turn, in this order, then a text answer
    #: (``@N``: path arguments take the N-th absolute path of the prompt).
    plan: tuple[str, ...] = ()
    #: Markers with a name the simulator does not know (reported in the answer).
    unknown: tuple[str, ...] = ()


def _int_arg(args: tuple[str, ...], default: int, maximum: int) -> int:
    try:
        value = int(args[0]) if args else default
    except ValueError:
        value = default
    return max(0, min(value, maximum))


def parse_markers(text: str) -> Markers:
    """Every ``[[sim:...]]`` marker in ``text``, read into one ``Markers``.

    The first failure marker wins; for the other markers the last occurrence wins.
    """
    failure: str | None = None
    failure_args: tuple[str, ...] = ()
    once = unicode = thinking = reasoning = token_usage = context_full = False
    long: int | None = None
    slow_ms: int | None = None
    stall_ms: int | None = None
    tools: int | None = None
    tool_name: str | None = None
    search_error: str | None = None
    plan: tuple[str, ...] = ()
    unknown: list[str] = []
    for match in _MARKER.finditer(text):
        name = match.group(1).lower()
        args = tuple(match.group(2).split(":")[1:])
        if name not in MARKERS:
            unknown.append(match.group(0))
        elif name in HTTP_FAILURES or name in STREAM_FAILURES:
            if failure is None:
                failure, once = name, "once" in args
                failure_args = tuple(a for a in args if a != "once")
        elif name == "long":
            long = max(1, _int_arg(args, 100, MAX_LONG_FRAMES))
        elif name == "slow":
            slow_ms = _int_arg(args, 200, MAX_SLOW_MS)
        elif name == "stall":
            stall_ms = _int_arg(args, 5_000, MAX_STALL_MS)
        elif name == "tools":
            tools = max(1, _int_arg(args, 2, MAX_TOOL_CALLS))
        elif name == "tool":
            tool_name = args[0] if args and args[0] else tool_name
        elif name == "unicode":
            unicode = True
        elif name == "reasoning":
            reasoning = True
        elif name == "token-usage":
            token_usage = True
        elif name == "context-full":
            context_full = True
        elif name == "search-error":
            search_error = args[0] if args and args[0] in SEARCH_FAILURES else "rpc"
        elif name == "plan":
            plan = tuple(a for a in args if a)[:MAX_TOOL_CALLS]
        else:  # thinking
            thinking = True
    return Markers(
        failure=failure,
        failure_args=failure_args,
        once=once,
        long=long,
        slow_ms=slow_ms,
        unicode=unicode,
        tools=tools,
        tool_name=tool_name,
        thinking=thinking,
        reasoning=reasoning,
        token_usage=token_usage,
        context_full=context_full,
        stall_ms=stall_ms,
        search_error=search_error,
        plan=plan,
        unknown=tuple(unknown),
    )


def strip_markers(text: str) -> str:
    """``text`` without its markers (what the "model" quotes back)."""
    return _MARKER.sub("", text)
