"""A strict checker for OpenAI Responses API streams and ``response`` objects.

The openai SDK accumulates leniently (an unknown event is passed through, a missing ``.done`` is
only noticed at the end) and Codex skips events it cannot parse, so every Responses output the
tests see goes through this instead. Stream rules:

* SSE per WHATWG (``tests.sse_checker.parse_sse``); every event named, the name equal to
  ``data.type``; one ``data:`` line of a JSON object; comments (pings) anywhere;
* ``sequence_number`` is 0, 1, 2, ... without gaps, on every event;
* ``response.created`` then ``response.in_progress`` first, both ``status: in_progress`` with
  ``output: []`` and ``usage: null``; the same ``resp_`` id, ``created_at`` and ``model`` in every
  lifecycle event;
* items: ``output_item.added`` with the next ``output_index`` while no item is open; unique ids
  with the API's prefix for the type; every event of an item names its ``item_id`` and
  ``output_index``; per type:
  - ``message``: ``content_part.added`` (index 0, empty ``output_text``), ``output_text.delta``*,
    ``output_text.done`` (the deltas' concatenation), ``content_part.done`` (the same text);
  - ``reasoning``: nothing, or ``reasoning_summary_part.added`` (index 0, empty), one or more
    ``reasoning_summary_text.delta``, ``.done`` (the concatenation), ``summary_part.done``;
  - ``function_call``: added with ``arguments: ""``, a ``call_id`` and a ``name``;
    ``function_call_arguments.delta``+, ``.done`` whose ``arguments`` are the concatenation and
    parse to a JSON object;
  - ``web_search_call``: ``.in_progress``, ``.searching``, ``.completed``;
  then ``output_item.done`` with the same id and type, ``status: completed`` where the type has
  one, and the content the deltas built;
* success: one ``response.completed`` (``status: completed``) or ``response.incomplete``
  (``status: incomplete`` with ``incomplete_details.reason``) with no item open, ``output`` equal
  to the done items in order, ``error: null`` and a consistent ``usage``; failure: one ``response.failed`` with
  ``status: failed``, an ``error`` with a string ``code`` and a message, and the done items
  only; nothing after either, and a stream that simply stops is a violation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.sse_checker import SSEViolation, parse_sse

__all__ = [
    "ResponsesTranscript",
    "check_responses_stream",
    "check_responses_object",
    "check_responses_error",
    "check_responses_usage",
]

ITEM_PREFIX = {"message": "msg_", "reasoning": "rs_", "function_call": "fc_", "web_search_call": "ws_"}
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)
_LIFECYCLE = frozenset(
    {"response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"}
)
_RESPONSE_KEYS = frozenset(
    {
        "id", "object", "created_at", "status", "background", "error", "incomplete_details", "instructions",
        "max_output_tokens", "max_tool_calls", "model", "output", "parallel_tool_calls", "previous_response_id",
        "prompt_cache_key", "reasoning", "service_tier", "store", "temperature", "text", "tool_choice", "tools",
        "top_p", "truncation", "usage", "user", "metadata",
    }
)  # fmt: skip


@dataclass
class ResponsesTranscript:
    """The checked stream and what a client accumulates from it."""

    types: list[str] = field(default_factory=list)
    id: str = ""
    model: str = ""
    created_at: int = 0
    #: The finished output items, in order (as ``output_item.done`` gave them).
    items: list[dict[str, Any]] = field(default_factory=list)
    #: ``completed``, ``incomplete`` or ``failed`` (empty while open).
    status: str = ""
    usage: dict[str, Any] | None = None
    #: The ``response.error`` of a failed stream.
    error: dict[str, Any] | None = None
    #: The last lifecycle event's ``response`` object.
    response: dict[str, Any] = field(default_factory=dict)
    #: The text of a message item left open by a failure (what the client saw of it).
    partial_text: str = ""

    @property
    def success(self) -> bool:
        return self.status in ("completed", "incomplete")

    @property
    def text(self) -> str:
        """All ``output_text`` of the finished message items, concatenated (the SDK's ``output_text``)."""
        return _output_text(self.items)

    @property
    def reasoning(self) -> str:
        return _reasoning(self.items)

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item["type"] == "function_call"]

    @property
    def tool_arguments(self) -> list[Any]:
        return [json.loads(item["arguments"]) for item in self.function_calls]


def _output_text(items: list[dict[str, Any]]) -> str:
    return "".join(
        part["text"] for item in items if item["type"] == "message" for part in item["content"]
        if part["type"] == "output_text"
    )  # fmt: skip


def _reasoning(items: list[dict[str, Any]]) -> str:
    return "".join(part["text"] for item in items if item["type"] == "reasoning" for part in item["summary"])


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_responses_error(obj: object, where: str = "error body") -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``; returns the inner object."""
    if not isinstance(obj, dict) or set(obj) != {"error"} or not isinstance(obj["error"], dict):
        raise SSEViolation(f"{where}: expected {{'error': {{...}}}}, got {obj!r}")
    error: dict[str, Any] = obj["error"]
    if set(error) != {"message", "type", "param", "code"}:
        raise SSEViolation(f"{where}: error keys {sorted(error)}")
    if not isinstance(error["message"], str) or not error["message"]:
        raise SSEViolation(f"{where}: empty message")
    if error["type"] not in ERROR_TYPES:
        raise SSEViolation(f"{where}: unknown error type {error['type']!r}")
    if error["param"] is not None and not isinstance(error["param"], str):
        raise SSEViolation(f"{where}: param must be a string or null")
    if not isinstance(error["code"], str) or not error["code"]:
        raise SSEViolation(f"{where}: code must be a non-empty string")
    return error


def check_responses_usage(usage: object, where: str) -> dict[str, Any]:
    """The Responses ``usage`` object: non-negative counts, totals that add up, details inside."""
    if not isinstance(usage, dict):
        raise SSEViolation(f"{where}: usage must be an object, got {usage!r}")
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        if not _is_int(usage.get(key)) or usage[key] < 0:
            raise SSEViolation(f"{where}: usage.{key} must be a non-negative integer, got {usage.get(key)!r}")
    if usage["total_tokens"] != usage["input_tokens"] + usage["output_tokens"]:
        raise SSEViolation(f"{where}: total_tokens is not input_tokens + output_tokens")
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if not isinstance(cached, int) or isinstance(cached, bool) or not 0 <= cached <= usage["input_tokens"]:
        raise SSEViolation(f"{where}: bad input_tokens_details {details!r}")
    out_details = usage.get("output_tokens_details")
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
    if not isinstance(reasoning, int) or isinstance(reasoning, bool) or not 0 <= reasoning <= usage["output_tokens"]:
        raise SSEViolation(f"{where}: bad output_tokens_details {out_details!r}")
    return usage


def _check_arguments(arguments: object, where: str) -> None:
    if not isinstance(arguments, str):
        raise SSEViolation(f"{where}: arguments must be a JSON string")
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise SSEViolation(f"{where}: arguments are not JSON: {arguments!r}") from None
    if not isinstance(parsed, dict):
        raise SSEViolation(f"{where}: arguments are not a JSON object: {arguments!r}")


def _check_item(item: object, where: str, *, done: bool) -> dict[str, Any]:
    """An output item in its ``added`` (``done=False``) or finished form."""
    if not isinstance(item, dict):
        raise SSEViolation(f"{where}: item must be an object")
    kind, item_id = item.get("type"), item.get("id")
    if kind not in ITEM_PREFIX:
        raise SSEViolation(f"{where}: unknown item type {kind!r}")
    if not isinstance(item_id, str) or not item_id.startswith(ITEM_PREFIX[kind]):
        raise SSEViolation(f"{where}: {kind} id {item_id!r} must start with {ITEM_PREFIX[kind]!r}")
    status = "completed" if done else "in_progress"
    if kind == "message":
        if item.get("role") != "assistant" or item.get("status") != status:
            raise SSEViolation(f"{where}: a message is an assistant message with status {status!r}")
        content = item.get("content")
        if not isinstance(content, list) or (not done and content):
            raise SSEViolation(f"{where}: message content must be a list (empty when added)")
        for part in content:
            if (
                not isinstance(part, dict) or part.get("type") != "output_text" or not isinstance(part.get("text"), str)
                or part.get("annotations") != []
            ):  # fmt: skip
                raise SSEViolation(f"{where}: bad message part {part!r}")
    elif kind == "reasoning":
        summary = item.get("summary")
        if not isinstance(summary, list) or (not done and summary):
            raise SSEViolation(f"{where}: reasoning summary must be a list (empty when added)")
        for part in summary:
            if not isinstance(part, dict) or part.get("type") != "summary_text" or not isinstance(part.get("text"), str):
                raise SSEViolation(f"{where}: bad summary part {part!r}")
    elif kind == "function_call":
        if item.get("status") != status:
            raise SSEViolation(f"{where}: function_call status must be {status!r}")
        for key in ("call_id", "name"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise SSEViolation(f"{where}: function_call needs a non-empty {key}")
        if "namespace" in item and (not isinstance(item["namespace"], str) or not item["namespace"]):
            raise SSEViolation(f"{where}: namespace, when present, must be a non-empty string")
        if done:
            _check_arguments(item.get("arguments"), where)
        elif item.get("arguments") != "":
            raise SSEViolation(f"{where}: an added function_call has arguments ''")
    else:
        action = item.get("action")
        if item.get("status") != status or not isinstance(action, dict) or action.get("type") != "search":
            raise SSEViolation(f"{where}: bad web_search_call {item!r}")
        if done and not isinstance(action.get("query"), str):
            raise SSEViolation(f"{where}: a finished web_search_call needs action.query")
    return item


def _check_response(response: object, where: str, *, status: set[str]) -> dict[str, Any]:
    if not isinstance(response, dict):
        raise SSEViolation(f"{where}: response must be an object")
    missing = _RESPONSE_KEYS - set(response)
    if missing:
        raise SSEViolation(f"{where}: response lacks {sorted(missing)}")
    if response["object"] != "response":
        raise SSEViolation(f"{where}: object is {response['object']!r}")
    if not isinstance(response["id"], str) or not response["id"].startswith("resp_"):
        raise SSEViolation(f"{where}: id {response['id']!r} is not resp_...")
    if not _is_int(response["created_at"]) or not isinstance(response["model"], str) or not response["model"]:
        raise SSEViolation(f"{where}: created_at must be an integer and model a non-empty string")
    if response["status"] not in status:
        raise SSEViolation(f"{where}: status {response['status']!r}, expected one of {sorted(status)}")
    if not isinstance(response["output"], list):
        raise SSEViolation(f"{where}: output must be a list")
    state = response["status"]
    if state in ("completed", "incomplete"):
        check_responses_usage(response["usage"], where)
        if response["error"] is not None:
            raise SSEViolation(f"{where}: a {state} response has error null")
        reason = (response["incomplete_details"] or {}).get("reason")
        if (state == "incomplete") != (reason is not None):
            raise SSEViolation(f"{where}: incomplete_details.reason belongs to an incomplete response, and only there")
    elif state == "failed":
        error = response["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), str) or not error.get("message"):
            raise SSEViolation(f"{where}: a failed response needs error {{code, message}}, got {error!r}")
    else:
        if response["output"] or response["usage"] is not None or response["error"] is not None:
            raise SSEViolation(f"{where}: an in_progress response has no output, usage or error")
    return response


def check_responses_object(body: bytes | dict[str, Any]) -> dict[str, Any]:
    """Validate a non-streaming ``response`` body; returns it parsed."""
    if isinstance(body, dict):
        obj = body
    else:
        try:
            obj = json.loads(body)
        except ValueError:
            raise SSEViolation("response body is not JSON") from None
    response = _check_response(obj, "response", status={"completed", "incomplete"})
    ids = set()
    for n, item in enumerate(response["output"]):
        _check_item(item, f"output[{n}]", done=True)
        if item["id"] in ids:
            raise SSEViolation(f"output[{n}]: duplicate id {item['id']!r}")
        ids.add(item["id"])
    return response


@dataclass
class _Open:
    item: dict[str, Any]
    index: int
    #: Which step of the item's grammar comes next.
    step: str = "start"
    pieces: list[str] = field(default_factory=list)
    text: str | None = None


def check_responses_stream(data: bytes) -> ResponsesTranscript:
    """Validate a Responses API event stream; returns what a client accumulates. Raises SSEViolation."""
    t = ResponsesTranscript()
    events = parse_sse(data)
    if not events:
        raise SSEViolation("empty stream")
    open_item: _Open | None = None
    ids: set[str] = set()
    ended = False
    for n, ev in enumerate(events):
        where = f"event #{n}"
        if ended:
            raise SSEViolation(f"{where}: an event after the end of the response ({ev.data[:80]!r})")
        if not ev.named or ev.data_lines != 1:
            raise SSEViolation(f"{where}: every event has an event: name and one data: line")
        try:
            obj = json.loads(ev.data)
        except ValueError:
            raise SSEViolation(f"{where}: data is not JSON: {ev.data[:80]!r}") from None
        if not isinstance(obj, dict) or obj.get("type") != ev.event:
            raise SSEViolation(f"{where}: event name {ev.event!r} differs from data.type")
        kind = ev.event
        where = f"event #{n} ({kind})"
        t.types.append(kind)
        if obj.get("sequence_number") != n or not _is_int(obj.get("sequence_number")):
            raise SSEViolation(f"{where}: sequence_number {obj.get('sequence_number')!r}, expected {n}")
        if n < 2:
            expected = ("response.created", "response.in_progress")[n]
            if kind != expected:
                raise SSEViolation(f"{where}: the stream starts with response.created, response.in_progress")
        if kind in _LIFECYCLE:
            allowed = {"in_progress"} if n < 2 else {kind.removeprefix("response.")}
            if n >= 2 and kind in ("response.created", "response.in_progress"):
                raise SSEViolation(f"{where}: {kind} only opens the stream")
            response = _check_response(obj.get("response"), where, status=allowed)
            if n == 0:
                t.id, t.created_at, t.model = response["id"], response["created_at"], response["model"]
            elif (response["id"], response["created_at"], response["model"]) != (t.id, t.created_at, t.model):
                raise SSEViolation(f"{where}: id/created_at/model changed mid-stream")
            t.response = response
            if n < 2:
                continue
            if kind != "response.failed" and open_item is not None:
                raise SSEViolation(f"{where}: {kind} while item {open_item.index} is open")
            if response["output"] != t.items:
                raise SSEViolation(f"{where}: output differs from the finished items")
            t.status = response["status"]
            t.usage = response["usage"]
            t.error = response["error"]
            if open_item is not None and open_item.item["type"] == "message":
                t.partial_text = "".join(open_item.pieces)
            ended = True
            continue
        if kind == "response.output_item.added":
            if open_item is not None:
                raise SSEViolation(f"{where}: item {open_item.index} is still open")
            if obj.get("output_index") != len(t.items):
                raise SSEViolation(f"{where}: output_index {obj.get('output_index')!r}, expected {len(t.items)}")
            item = _check_item(obj.get("item"), where, done=False)
            if item["id"] in ids:
                raise SSEViolation(f"{where}: duplicate item id {item['id']!r}")
            ids.add(item["id"])
            open_item = _Open(item=item, index=len(t.items))
            continue
        if open_item is None:
            raise SSEViolation(f"{where}: no item is open")
        if obj.get("output_index") != open_item.index:
            raise SSEViolation(f"{where}: output_index {obj.get('output_index')!r} is not the open item's")
        if kind != "response.output_item.done" and obj.get("item_id") != open_item.item["id"]:
            raise SSEViolation(f"{where}: item_id {obj.get('item_id')!r} is not the open item's")
        if kind == "response.output_item.done":
            _finish_item(t, open_item, obj.get("item"), where)
            open_item = None
            continue
        _item_event(open_item, kind, obj, where)
    if not ended:
        raise SSEViolation("the stream ended without response.completed, .incomplete or .failed")
    return t


# The grammar inside each item type: (step, event) -> next step.
_STEPS: dict[str, dict[tuple[str, str], str]] = {
    "message": {
        ("start", "response.content_part.added"): "text",
        ("text", "response.output_text.delta"): "text",
        ("text", "response.output_text.done"): "text_done",
        ("text_done", "response.content_part.done"): "end",
    },
    "reasoning": {
        ("start", "response.reasoning_summary_part.added"): "summary",
        ("summary", "response.reasoning_summary_text.delta"): "summary_more",
        ("summary_more", "response.reasoning_summary_text.delta"): "summary_more",
        ("summary_more", "response.reasoning_summary_text.done"): "summary_done",
        ("summary_done", "response.reasoning_summary_part.done"): "end",
    },
    "function_call": {
        ("start", "response.function_call_arguments.delta"): "arguments",
        ("arguments", "response.function_call_arguments.delta"): "arguments",
        ("arguments", "response.function_call_arguments.done"): "end",
    },
    "web_search_call": {
        ("start", "response.web_search_call.in_progress"): "searching",
        ("searching", "response.web_search_call.searching"): "completing",
        ("completing", "response.web_search_call.completed"): "end",
    },
}
_CAN_FINISH = {"message": {"end"}, "reasoning": {"start", "end"}, "function_call": {"end"}, "web_search_call": {"end"}}


def _item_event(o: _Open, kind: str, obj: dict[str, Any], where: str) -> None:
    item_type = o.item["type"]
    step = _STEPS[item_type].get((o.step, kind))
    if step is None:
        raise SSEViolation(f"{where}: not allowed in a {item_type} item after {o.step!r}")
    o.step = step
    joined = "".join(o.pieces)
    if item_type == "message":
        if obj.get("content_index") != 0:
            raise SSEViolation(f"{where}: content_index must be 0")
        if kind.endswith("part.added"):
            part = obj.get("part")
            if part != {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}:
                raise SSEViolation(f"{where}: the added part is an empty output_text, got {part!r}")
        elif kind.endswith("delta"):
            if not isinstance(obj.get("delta"), str) or obj.get("logprobs") != []:
                raise SSEViolation(f"{where}: delta must be a string with logprobs []")
            o.pieces.append(obj["delta"])
        elif kind == "response.output_text.done":
            if obj.get("text") != joined or obj.get("logprobs") != []:
                raise SSEViolation(f"{where}: text is not the deltas' concatenation")
            o.text = joined
        else:
            part = obj.get("part")
            if not isinstance(part, dict) or part.get("type") != "output_text" or part.get("text") != o.text:
                raise SSEViolation(f"{where}: the done part differs from the text")
    elif item_type == "reasoning":
        if obj.get("summary_index") != 0:
            raise SSEViolation(f"{where}: summary_index must be 0")
        if kind.endswith("part.added"):
            if obj.get("part") != {"type": "summary_text", "text": ""}:
                raise SSEViolation(f"{where}: the added part is an empty summary_text")
        elif kind.endswith("delta"):
            if not isinstance(obj.get("delta"), str) or not obj["delta"]:
                raise SSEViolation(f"{where}: delta must be a non-empty string")
            o.pieces.append(obj["delta"])
        elif kind.endswith("text.done"):
            if obj.get("text") != joined:
                raise SSEViolation(f"{where}: text is not the deltas' concatenation")
            o.text = joined
        elif obj.get("part") != {"type": "summary_text", "text": o.text}:
            raise SSEViolation(f"{where}: the done part differs from the text")
    elif item_type == "function_call":
        if kind.endswith("delta"):
            if not isinstance(obj.get("delta"), str) or not obj["delta"]:
                raise SSEViolation(f"{where}: delta must be a non-empty string")
            o.pieces.append(obj["delta"])
        else:
            if obj.get("arguments") != joined:
                raise SSEViolation(f"{where}: arguments are not the deltas' concatenation")
            _check_arguments(joined, where)
            o.text = joined


def _finish_item(t: ResponsesTranscript, o: _Open, item: object, where: str) -> None:
    item_type = o.item["type"]
    if o.step not in _CAN_FINISH[item_type]:
        raise SSEViolation(f"{where}: the {item_type} item is not finished (at {o.step!r})")
    done = _check_item(item, where, done=True)
    if (done["id"], done["type"]) != (o.item["id"], item_type):
        raise SSEViolation(f"{where}: the done item is not the added one")
    if item_type == "message":
        if [p["text"] for p in done["content"]] != [o.text]:
            raise SSEViolation(f"{where}: the message content differs from the streamed text")
    elif item_type == "reasoning":
        expected = [{"type": "summary_text", "text": o.text}] if o.text is not None else []
        if done["summary"] != expected:
            raise SSEViolation(f"{where}: the summary differs from the streamed one")
    elif item_type == "function_call":
        if (done["call_id"], done["name"], done.get("namespace")) != (
            o.item["call_id"], o.item["name"], o.item.get("namespace")
        ):  # fmt: skip
            raise SSEViolation(f"{where}: call_id/name/namespace changed")
        if done["arguments"] != o.text:
            raise SSEViolation(f"{where}: arguments differ from the streamed ones")
    t.items.append(done)
