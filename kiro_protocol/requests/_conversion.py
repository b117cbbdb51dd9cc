"""The internal ``Request`` -> a Kiro ``generateAssistantResponse`` body.

Kiro's side of it: docs/kiro-protocol.md, The request body.

Shape of the result (compact JSON, keys in this order)::

    {"conversationState": {
        "agentContinuationId": <passed in>, "agentTaskType": "vibe", "chatTriggerType": "MANUAL",
        "conversationId": <stable per conversation>,
        "currentMessage": {"userInputMessage": {"content", "modelId", "origin": "AI_EDITOR",
            "images"?, "userInputMessageContext": {"tools"?, "toolResults"?}}},
        "history": [ user, assistant, user, assistant, ... ]?},
     "profileArn"?: <added by KiroRequest.body()>}

Decisions (all documented in docs/conversion.md):

* The system prompt (plus the thinking instruction, the structured-output and tool_choice
  instructions) is the first history pair, answered by ``I will follow these instructions.``.
* The last user turn is the current message. A trailing assistant message (prefill) stays in
  history and the current message asks the model to continue it (``CONTINUE_PROMPT``): the
  references instead re-send the prefill as if the user had typed it.
* ``conversationId`` (``conversation_id``): a UUID hashed from the client session id (metadata
  or ``X-Claude-Code-Session-Id``) together with the first user message, so one Claude Code
  session (including its sub-agents, whose first messages differ) keeps stable, distinct ids;
  without a session id, from the system prompt, the tool names and the first user message.
* Every repair of ``_linter.RULES`` is applied while building; the finished body is then
  checked with ``lint_kiro_body`` and any violation left (oversized body, too many history
  entries, ...) is a 400 before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._errors import LocalProtocolError
from .._util import uuid4_text
from .._json_codec import codec_dumps
from ..pool._upstream_errors import PROMPT_TOO_LONG_PREFIX
from ._convert_history import AssistantTurn, Turn, UserTurn, build_turns, pair_tools
from ._convert_tools import ToolNames, build_tool_specs
from ._image_fit import ImageFitted, ImageTransform, refit_image
from ._linter import Action, LintLimits, lint_kiro_body
from ._model import ImageBlock, Request, TextBlock, ToolKind
from ._models import resolve_model
from ._plan import ResponsePlan
from ._schema_cache import SchemaCache, schema_keys
from ._token_estimator import EstimateCache, count_added_tokens, count_input_tokens

__all__ = [
    "ConversionConfig",
    "KiroRequest",
    "convert_request",
    "conversation_id",
    "thinking_prefix",
    "CONTINUE_PROMPT",
    "SYSTEM_ACK",
    "MAX_THINKING_BUDGET",
]

#: The assistant half of the system-prompt pair.
SYSTEM_ACK = "I will follow these instructions."
#: The current message when the client ends with an assistant prefill.
CONTINUE_PROMPT = (
    "Continue your previous reply exactly from where it stops, without repeating any of it."
)
#: Upper bound of ``max_thinking_length`` (what the references clamp to).
MAX_THINKING_BUDGET = 24_576
_DEFAULT_BUDGET = 20_000
_ORIGIN = "AI_EDITOR"
# Room left in the size budget for the profileArn added at serialisation time.
_PROFILE_ARN_RESERVE = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionConfig:
    """Operator settings for conversion (built by the adapter from its settings)."""

    #: Tool descriptions longer than this are cut (Kiro's hard limit is 10,240).
    max_tool_description_length: int = 10_000
    #: Remembers the input-token estimate of system prompts and tool definitions, which coding
    #: agents repeat on every turn; one per service (a config built once shares it).
    token_cache: EstimateCache = field(default_factory=EstimateCache, compare=False, repr=False)
    #: Remembers the normalised form of the tool schemas, which coding agents repeat on every
    #: turn (one per service, like ``token_cache``).
    schema_cache: SchemaCache = field(default_factory=SchemaCache, compare=False, repr=False)
    #: Serialised body budget in bytes; larger requests are a 400.
    max_body_bytes: int = 1_200_000
    #: Most history entries sent; more is a 400 (``None``: no limit).
    max_history_entries: int | None = 200
    #: ``KIRO_MODEL_MAP``: public model name -> Kiro model id, consulted before the table.
    model_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Converts and downscales images Kiro would refuse or that are larger than useful (the
    #: runtime's uses Pillow when installed); ``None``: such images are a 400 or sent as they are.
    image_transform: ImageTransform | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KiroRequest:
    """A converted request, ready to send once an account is chosen."""

    conversation_id: str
    #: The ``conversationState`` object (treat as read-only; large, so kept out of the repr).
    conversation_state: Mapping[str, object] = field(repr=False)
    response_plan: ResponsePlan
    model_id: str
    #: What the converter repaired, as ``"<rule code>: <what>"`` lines (for debug logs).
    repairs: tuple[str, ...] = ()
    #: ``type`` of each server tool the client offered (``web_search_20250305``...): not sent
    #: to Kiro, reported so a later stage (web-search emulation, logs) can act on it.
    server_tools: tuple[str, ...] = ()
    #: The images converted or downscaled before sending (also one ``repairs`` line each).
    fitted_images: tuple[ImageFitted, ...] = ()
    _state_json: bytes = field(default=b"", repr=False)

    def body(self, profile_arn: str | None = None) -> bytes:
        """The upstream body: compact JSON, UTF-8, ``profileArn`` at the root when given."""
        out = b'{"conversationState":' + self._state_json
        if profile_arn:
            out += b',"profileArn":' + json.dumps(profile_arn, ensure_ascii=False).encode("utf-8")
        return out + b"}"


def _serialise(value: object) -> bytes:
    # The installed codec (orjson) when there is one and it can promise json's result.
    return codec_dumps(value, _stdlib_serialise)


def _stdlib_serialise(value: object) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN/Infinity in a request handed over already decoded
        raise LocalProtocolError("request contains a number that is not valid JSON (NaN or Infinity)") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (legal in JSON escapes, illegal in UTF-8): fall back to \u escapes.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def thinking_prefix(request: Request) -> str:
    """The prompt-tag instruction that makes Kiro models think in ``<thinking>`` tags
    (docs/kiro-protocol.md, Thinking by prompt tags), or ``""`` when thinking is off or the
    system prompt already carries one."""
    if any("<thinking_mode>" in b.text or "<max_thinking_length>" in b.text for b in request.system):
        return ""
    thinking = request.thinking
    if thinking.type == "adaptive":
        effort = request.effort or "high"
        return f"<thinking_mode>adaptive</thinking_mode><thinking_effort>{effort}</thinking_effort>"
    if thinking.type == "enabled" or request.model.lower().endswith("-thinking"):
        budget = thinking.budget_tokens or _DEFAULT_BUDGET
        budget = min(budget, MAX_THINKING_BUDGET)
        return f"<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
    return ""


def _first_user_text(request: Request) -> str:
    for message in request.messages:
        if message.role == "user":
            return "\n".join(b.text for b in message.content if isinstance(b, TextBlock))
    return ""


def conversation_id(request: Request, session_id_header: str | None = None) -> str:
    """The stable upstream ``conversationId`` of the conversation ``request`` belongs to."""
    session = request.session_id or (session_id_header or "").strip()
    first = _first_user_text(request)
    if session:
        key = "\0".join(("session", session, first))
    else:
        system = "\n".join(b.text for b in request.system)
        tools = ",".join(t.name for t in request.tools)
        key = "\0".join(("conversation", system, tools, first))
    return uuid4_text(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest())


def _instructions(request: Request) -> list[str]:
    parts = []
    choice = request.tool_choice
    offered = any(t.kind is not ToolKind.SERVER for t in request.tools)
    if choice is not None and offered:
        if choice.type == "any":
            parts.append("You must call at least one of the available tools in your reply.")
        elif choice.type == "tool":
            parts.append(f"You must call the tool {choice.name} in your reply.")
        elif choice.type == "none":
            parts.append("Do not call any tools in your reply; answer with text only.")
        if choice.disable_parallel_tool_use and choice.type != "none":
            parts.append("Call at most one tool per reply.")
    if request.output_format is not None:
        schema = json.dumps(request.output_format.schema, ensure_ascii=False, separators=(",", ":"))
        parts.append(
            "Reply with a single JSON value that conforms to this JSON schema, and nothing else "
            f"(no prose, no code fences): {schema}"
        )
    return parts


def _image_json(image: ImageBlock, transform: ImageTransform | None, fitted: list[ImageFitted]) -> dict[str, object]:
    if image.refit is not None:
        image, done = refit_image(image, transform)
        if done is not None:
            fitted.append(done)
    return {"format": image.format, "source": {"bytes": image.data}}


def _user_json(
    turn: UserTurn,
    model_id: str,
    *,
    tools: list[dict[str, object]] | None,
    transform: ImageTransform | None = None,
    fitted: list[ImageFitted] | None = None,
) -> dict[str, object]:
    context: dict[str, object] = {}
    if tools:
        context["tools"] = tools
    if turn.results:
        context["toolResults"] = [
            {
                "toolUseId": r.tool_use_id,
                "content": [{"text": r.text}],
                "status": "error" if r.is_error else "success",
            }
            for r in turn.results
        ]
    msg: dict[str, object] = {"content": turn.content, "modelId": model_id, "origin": _ORIGIN}
    if turn.images:
        done = fitted if fitted is not None else []
        msg["images"] = [_image_json(i, transform, done) for i in turn.images]
    msg["userInputMessageContext"] = context
    return {"userInputMessage": msg}


def _assistant_json(turn: AssistantTurn, names: ToolNames, *, with_thinking: bool) -> dict[str, object]:
    msg: dict[str, object] = {"content": turn.content(with_thinking=with_thinking)}
    if turn.uses:
        msg["toolUses"] = [
            {"toolUseId": u.id, "name": names.upstream(u.name), "input": u.input} for u in turn.uses
        ]
    return {"assistantResponseMessage": msg}


def _system_pair(request: Request, thinking: str, model_id: str) -> list[dict[str, object]]:
    """The leading history pair: thinking instruction, system prompt, extra instructions."""
    parts = [b.text for b in request.system if b.text] + _instructions(request)
    system_text = "\n".join(parts).strip()
    if not thinking and not system_text:
        return []
    lead = f"{thinking}\n{system_text}" if thinking and system_text else thinking or system_text
    return [
        _user_json(UserTurn(texts=[lead]), model_id, tools=None),
        {"assistantResponseMessage": {"content": SYSTEM_ACK}},
    ]


def _estimate_input(
    request: Request,
    config: ConversionConfig,
    thinking: str,
    *,
    messages: int,
    prefill: bool,
    keys: tuple[bytes | None, ...],
) -> int:
    """The input tokens of the conversation as Kiro's model reads it (docs/conversion.md, Token
    estimates): the request's own text, cut tool descriptions, Kiro's message count, and what the
    conversion adds (the instructions and acknowledgement of the system pair, the continuation)."""
    added = [CONTINUE_PROMPT] if prefill else []
    instructions = _instructions(request)
    if thinking or instructions or any(b.text.strip() for b in request.system):
        added += [thinking, *instructions, SYSTEM_ACK]
    estimate = count_input_tokens(
        request,
        cache=config.token_cache,
        description_limit=config.max_tool_description_length,
        messages=messages,
        schema_keys=keys,
    )
    return estimate + count_added_tokens(added, messages=0)


def _history_tool_names(turns: list[Turn]) -> dict[str, None]:
    """Client names of the tools used in ``turns``, in order of first use."""
    names: dict[str, None] = {}
    for turn in turns:
        if isinstance(turn, AssistantTurn):
            for use in turn.uses:
                names.setdefault(use.name, None)
    return names


def _reject(violations: list[str], *, too_long: bool) -> LocalProtocolError:
    text = "; ".join(violations)
    if too_long:
        # Claude Code reacts to this prefix by offering to compact the conversation.
        return LocalProtocolError(f"{PROMPT_TOO_LONG_PREFIX}: {text}", param="messages")
    return LocalProtocolError(f"request cannot be sent to Kiro: {text}", param="messages")


def convert_request(
    request: Request,
    *,
    config: ConversionConfig,
    continuation_id: str,
    session_id_header: str | None = None,
) -> KiroRequest:
    """Convert ``request`` into the Kiro body and the plan for its response.

    ``continuation_id`` is a fresh random id per request (the core draws no randomness).
    Raises ``LocalProtocolError``: 404 for an unknown model, 400 when the request breaks a
    REJECT rule of the linter (the message says which and by how much).
    """
    model = resolve_model(request.model, config.model_overrides)
    repairs: list[str] = []
    turns: list[Turn] = build_turns(request.messages, repairs)
    if not turns:
        raise LocalProtocolError("messages: no user message to answer", param="messages")
    prefill = isinstance(turns[-1], AssistantTurn)
    if prefill:
        turns.append(UserTurn(texts=[CONTINUE_PROMPT]))
        repairs.append("prefill: trailing assistant message continued")
    pair_tools(turns, repairs)
    current = turns[-1]
    assert isinstance(current, UserTurn)  # build_turns alternates; prefill appended a user turn
    if not current.content and not current.results and not current.images:
        raise LocalProtocolError(
            f"messages.{len(request.messages) - 1}.content: the last message has no content to send",
            param=f"messages.{len(request.messages) - 1}.content",
        )

    names = ToolNames()
    # One key per tool schema, for both caches: the normalised schemas and the token estimate.
    keys = schema_keys(request.tools)
    tools = build_tool_specs(
        request.tools,
        _history_tool_names(turns),
        names=names,
        max_description_length=config.max_tool_description_length,
        repairs=repairs,
        schema_cache=config.schema_cache,
        keys=keys,
    )

    thinking = thinking_prefix(request)
    thinking_on = bool(thinking) or any("<thinking_mode>" in b.text for b in request.system)
    history = _system_pair(request, thinking, model.kiro_id)
    fitted: list[ImageFitted] = []
    for turn in turns[:-1]:
        if isinstance(turn, UserTurn):
            if not turn.content and not turn.results and not turn.images:
                turn.texts.append(".")
                repairs.append("user-content: empty user turn filled")
            history.append(_user_json(turn, model.kiro_id, tools=None, transform=config.image_transform, fitted=fitted))
        else:
            history.append(_assistant_json(turn, names, with_thinking=thinking_on))

    conv_id = conversation_id(request, session_id_header)
    state: dict[str, object] = {
        "agentContinuationId": continuation_id,
        "agentTaskType": "vibe",
        "chatTriggerType": "MANUAL",
        "conversationId": conv_id,
        "currentMessage": _user_json(current, model.kiro_id, tools=tools, transform=config.image_transform, fitted=fitted),
    }
    if history:
        state["history"] = history
    state_json = _serialise(state)

    limits = LintLimits(
        max_tool_description_length=config.max_tool_description_length,
        max_body_bytes=config.max_body_bytes,
        max_history_entries=config.max_history_entries,
    )
    size = len(state_json) + len(b'{"conversationState":}') + _PROFILE_ARN_RESERVE
    violations = lint_kiro_body({"conversationState": state}, limits=limits, body_size=size)
    if violations:
        too_long = any(v.rule in ("body-size", "history-length") for v in violations)
        rejects = [v for v in violations if v.action is Action.REJECT] or violations
        raise _reject([f"{v.message} ({v.rule})" for v in rejects], too_long=too_long)

    plan = ResponsePlan(
        client_model=request.model,
        kiro_model_id=model.kiro_id,
        context_window=model.context_window,
        tool_names=MappingProxyType(dict(names.to_client)),
        thinking=thinking_on,
        max_tokens=request.max_tokens,
        stop_sequences=request.stop_sequences,
        estimated_input_tokens=_estimate_input(
            request, config, thinking, messages=len(history) + 1, prefill=prefill, keys=keys
        ),
        stream=request.stream,
    )
    return KiroRequest(
        conversation_id=conv_id,
        conversation_state=state,
        response_plan=plan,
        model_id=model.kiro_id,
        repairs=tuple(repairs) + tuple(f.describe() for f in fitted),
        server_tools=tuple(t.type for t in request.tools if t.kind is ToolKind.SERVER),
        fitted_images=tuple(fitted),
        _state_json=state_json,
    )
