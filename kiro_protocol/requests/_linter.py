"""Every known upstream limit of a Kiro ``generateAssistantResponse`` body, in one place.

Kiro answers a body that breaks one of its rules with a bare ``400 Improperly formed request``
(or ``Invalid tool use format.``, ``TOOL_USE_RESULT_MISMATCH``...), which tells the client
nothing. So every rule we know is listed in ``RULES`` with its reason and what we do about it:

* ``REPAIR``: the converter fixes the body and the client never notices (documented in
  docs/conversion.md);
* ``REJECT``: nothing sensible can be repaired, the client gets a precise 400 before anything
  is sent.

``lint_kiro_body`` checks a finished body against all rules. It does not know how the body was
built (the converter runs it as a last gate on its own output; tests and the upstream simulator
run it on any body), so a violation it reports is either a REJECT condition or a converter bug.
"""

from __future__ import annotations

import binascii
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._images import MAX_IMAGE_BYTES, sniff_format

__all__ = [
    "Action",
    "Rule",
    "RULES",
    "LintLimits",
    "Violation",
    "lint_kiro_body",
    "MAX_TOOL_NAME_LENGTH",
    "HARD_MAX_TOOL_DESCRIPTION_LENGTH",
    "THINKING_PREFIX_MARKER",
]

#: Kiro refuses tool names longer than this.
MAX_TOOL_NAME_LENGTH = 64
#: Kiro refuses tool descriptions longer than this many characters.
HARD_MAX_TOOL_DESCRIPTION_LENGTH = 10_240
#: The opening tag of the thinking instruction (see ``_conversion``).
THINKING_PREFIX_MARKER = "<thinking_mode>"

_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_LONG_NAME = f"tool name longer than {MAX_TOOL_NAME_LENGTH} characters"


class Action(enum.Enum):
    REPAIR = "repair"
    REJECT = "reject"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    code: str
    action: Action
    rule: str
    reason: str
    repair: str = ""


#: The rule set. ``code`` is what ``Violation.rule`` and the converter's repair log refer to.
RULES: tuple[Rule, ...] = (
    Rule(
        code="body-shape",
        action=Action.REPAIR,
        rule="conversationState with chatTriggerType MANUAL, agentTaskType vibe, non-empty "
        "conversationId and agentContinuationId, a currentMessage.userInputMessage; profileArn "
        "(optional) is the only other root key",
        reason="the fixed skeleton every current Kiro client sends; AUTO trigger type now gets 400",
        repair="the converter always builds this skeleton",
    ),
    Rule(
        code="alternation",
        action=Action.REPAIR,
        rule="history alternates user/assistant, starts with a user entry and ends with an "
        "assistant entry (the current message is the next user turn)",
        reason="Kiro rejects two consecutive entries of one role (Improperly formed request)",
        repair="consecutive same-role messages are merged; a leading assistant message is dropped; "
        "the system prompt becomes a leading user/assistant pair",
    ),
    Rule(
        code="assistant-content",
        action=Action.REPAIR,
        rule="every assistant entry has non-empty content",
        reason="an empty assistant message is rejected upstream",
        repair='a tool-only (or empty) assistant turn gets the content " "',
    ),
    Rule(
        code="user-content",
        action=Action.REPAIR,
        rule="every user entry has non-empty content unless it carries tool results or images",
        reason="an empty user message is rejected upstream",
        repair='an empty history user turn gets the content "."; an empty current message is a 400',
    ),
    Rule(
        code="tool-pairing",
        action=Action.REPAIR,
        rule="each toolUse of an assistant entry is answered by a toolResult in the next user "
        "entry, and each toolResult answers a toolUse of the assistant entry right before it",
        reason="TOOL_USE_RESULT_MISMATCH / Improperly formed request",
        repair="an unanswered toolUse is removed from history; a result for an "
        "unknown or earlier tool call (or a duplicate) is kept as text in its user turn",
    ),
    Rule(
        code="tool-specs",
        action=Action.REPAIR,
        rule="when history uses tools, the current message carries a non-empty tools list that "
        "declares every tool name used in history",
        reason="Kiro rejects tool uses of undeclared tools",
        repair='placeholder specs ("Tool used in conversation history", permissive schema) for '
        "tools no longer offered",
    ),
    Rule(
        code="tool-name",
        action=Action.REPAIR,
        rule=f"tool names are non-empty, unique and at most {MAX_TOOL_NAME_LENGTH} characters",
        reason="longer names fail upstream",
        repair="long names are shortened to a 64-character name ending in a hash; the "
        "ResponsePlan maps them back; duplicate specs are dropped",
    ),
    Rule(
        code="tool-description",
        action=Action.REPAIR,
        rule="tool descriptions are non-empty and at most the configured length (default 10000, "
        f"never above {HARD_MAX_TOOL_DESCRIPTION_LENGTH}) characters",
        reason='empty: 400 "Invalid tool use format."; over 10,240 characters: rejected',
        repair="empty descriptions get one naming the tool; long ones are cut on a character boundary",
    ),
    Rule(
        code="tool-schema",
        action=Action.REPAIR,
        rule='inputSchema.json is an object with type "object", an object "properties" and '
        "(when present) a string array \"required\"",
        reason="required:null or properties:null trigger Improperly formed request",
        repair="schemas are normalised (missing or invalid parts replaced or removed)",
    ),
    Rule(
        code="tool-use-input",
        action=Action.REPAIR,
        rule="toolUses items have a non-empty toolUseId and name and an object input",
        reason="the upstream model defines input as a document object",
        repair="the parser only produces object inputs",
    ),
    Rule(
        code="tool-result-shape",
        action=Action.REPAIR,
        rule='toolResults items have a toolUseId, status "success"/"error" and content items '
        'of the form {"text": non-empty string} or {"json": ...}',
        reason="the upstream model allows only text/json items (Anthropic-shaped items are refused)",
        repair='tool result content is flattened into one {"text"} item; empty results become "(no output)"',
    ),
    Rule(
        code="thinking-placement",
        action=Action.REPAIR,
        rule="the thinking instruction is never put in a user entry that carries tool results",
        reason="injecting the thinking tags into a tool-result turn gets 400",
        repair="the instruction goes into the leading system pair",
    ),
    Rule(
        code="image",
        action=Action.REJECT,
        rule=f"images are png/jpeg/gif/webp, at most {MAX_IMAGE_BYTES} bytes, and their bytes "
        "match the declared format",
        reason="Kiro refuses other formats, images over ~5 MB and a PNG declared as JPEG",
    ),
    Rule(
        code="history-length",
        action=Action.REJECT,
        rule="at most the configured number of history entries (default 200)",
        reason="very long histories fail upstream (about 200 messages reported)",
    ),
    Rule(
        code="body-size",
        action=Action.REJECT,
        rule="the serialised body, image data excepted, is within the configured budget "
        "(default 1,200,000 bytes)",
        reason="Kiro starts refusing bodies at about 1.25-1.3 MB of conversation",
    ),
)
_BY_CODE = {r.code: r for r in RULES}


@dataclass(frozen=True, slots=True, kw_only=True)
class LintLimits:
    max_tool_description_length: int = 10_000
    #: ``None`` disables the check.
    max_body_bytes: int | None = 1_200_000
    max_history_entries: int | None = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    #: ``Rule.code`` of the broken rule.
    rule: str
    #: JSON path in the body (``conversationState.history.3.assistantResponseMessage``).
    path: str
    message: str

    @property
    def action(self) -> Action:
        return _BY_CODE[self.rule].action


class _Checker:
    def __init__(self, limits: LintLimits) -> None:
        self.limits = limits
        self.found: list[Violation] = []
        #: base64 characters of all images (not counted against the body budget).
        self.image_chars = 0

    def add(self, rule: str, path: str, message: str) -> None:
        self.found.append(Violation(rule=rule, path=path, message=message))

    # -- pieces ---------------------------------------------------------------------------------

    def images(self, value: object, path: str) -> None:
        if not isinstance(value, list):
            self.add("image", path, "images must be an array")
            return
        for i, image in enumerate(value):
            ipath = f"{path}.{i}"
            if not isinstance(image, Mapping):
                self.add("image", ipath, "image must be an object")
                continue
            fmt = image.get("format")
            source = image.get("source")
            data = source.get("bytes") if isinstance(source, Mapping) else None
            if fmt not in _IMAGE_FORMATS:
                self.add("image", f"{ipath}.format", f"unsupported image format {fmt!r}")
                continue
            if not isinstance(data, str) or not data:
                self.add("image", f"{ipath}.source.bytes", "image bytes missing")
                continue
            self.image_chars += len(data)
            if len(data) * 3 // 4 > MAX_IMAGE_BYTES + 2:
                self.add("image", f"{ipath}.source.bytes", f"image larger than {MAX_IMAGE_BYTES} bytes")
            try:  # the signature is in the first 18 bytes: decode 24 base64 characters only
                head = binascii.a2b_base64(data[:24])
            except (binascii.Error, ValueError):
                head = b""
            if sniff_format(head) != fmt:
                self.add("image", f"{ipath}.source.bytes", f"image bytes are not {fmt}")

    def tool_results(self, value: object, path: str) -> list[str]:
        ids: list[str] = []
        if not isinstance(value, list):
            self.add("tool-result-shape", path, "toolResults must be an array")
            return ids
        for i, result in enumerate(value):
            rpath = f"{path}.{i}"
            if not isinstance(result, Mapping):
                self.add("tool-result-shape", rpath, "tool result must be an object")
                continue
            tid = result.get("toolUseId")
            if not isinstance(tid, str) or not tid:
                self.add("tool-result-shape", f"{rpath}.toolUseId", "toolUseId must be a non-empty string")
            else:
                ids.append(tid)
            if result.get("status") not in ("success", "error"):
                self.add("tool-result-shape", f"{rpath}.status", 'status must be "success" or "error"')
            content = result.get("content")
            if not isinstance(content, list) or not content:
                self.add("tool-result-shape", f"{rpath}.content", "content must be a non-empty array")
                continue
            for j, item in enumerate(content):
                ok = isinstance(item, Mapping) and (
                    (set(item) == {"text"} and isinstance(item["text"], str) and item["text"] != "")
                    or set(item) == {"json"}
                )
                if not ok:
                    problem = 'items must be {"text": non-empty} or {"json": ...}'
                    self.add("tool-result-shape", f"{rpath}.content.{j}", problem)
        return ids

    def user(self, msg: Mapping[str, object], path: str, *, current: bool) -> list[str]:
        """Check a userInputMessage; returns the toolUseIds it answers."""
        content = msg.get("content")
        if not isinstance(content, str):
            self.add("body-shape", f"{path}.content", "content must be a string")
            content = ""
        model = msg.get("modelId")
        if not isinstance(model, str) or not model:
            self.add("body-shape", f"{path}.modelId", "modelId must be a non-empty string")
        if msg.get("origin") != "AI_EDITOR":
            self.add("body-shape", f"{path}.origin", 'origin must be "AI_EDITOR"')
        has_images = False
        if "images" in msg:
            self.images(msg["images"], f"{path}.images")
            has_images = bool(msg["images"])
        ctx = msg.get("userInputMessageContext", {})
        ids: list[str] = []
        if not isinstance(ctx, Mapping):
            self.add("body-shape", f"{path}.userInputMessageContext", "must be an object")
            ctx = {}
        if "toolResults" in ctx:
            ids = self.tool_results(ctx["toolResults"], f"{path}.userInputMessageContext.toolResults")
        if "tools" in ctx and not current:
            where = f"{path}.userInputMessageContext.tools"
            self.add("body-shape", where, "history entries never carry tools")
        if not content and not ids and not has_images:
            self.add("user-content", f"{path}.content", "user message has no content, tool results or images")
        if ids and THINKING_PREFIX_MARKER in content:
            self.add("thinking-placement", f"{path}.content", "thinking instruction in a tool-result turn")
        return ids

    def assistant(self, msg: Mapping[str, object], path: str) -> list[tuple[str, str]]:
        """Check an assistantResponseMessage; returns its (toolUseId, name) pairs."""
        content = msg.get("content")
        if not isinstance(content, str) or not content:
            self.add("assistant-content", f"{path}.content", "assistant content must be a non-empty string")
        uses: list[tuple[str, str]] = []
        raw = msg.get("toolUses")
        if raw is None:
            return uses
        if not isinstance(raw, list) or not raw:
            self.add("tool-use-input", f"{path}.toolUses", "toolUses must be a non-empty array when present")
            return uses
        for i, use in enumerate(raw):
            upath = f"{path}.toolUses.{i}"
            if not isinstance(use, Mapping):
                self.add("tool-use-input", upath, "tool use must be an object")
                continue
            tid, name = use.get("toolUseId"), use.get("name")
            if not isinstance(tid, str) or not tid or not isinstance(name, str) or not name:
                self.add("tool-use-input", upath, "toolUseId and name must be non-empty strings")
                continue
            if len(name) > MAX_TOOL_NAME_LENGTH:
                self.add("tool-name", f"{upath}.name", _LONG_NAME)
            if not isinstance(use.get("input"), Mapping):
                self.add("tool-use-input", f"{upath}.input", "input must be an object")
            uses.append((tid, name))
        return uses

    def tools(self, value: object, path: str) -> set[str]:
        names: set[str] = set()
        if not isinstance(value, list):
            self.add("tool-specs", path, "tools must be an array")
            return names
        limit = min(self.limits.max_tool_description_length, HARD_MAX_TOOL_DESCRIPTION_LENGTH)
        for i, tool in enumerate(value):
            tpath = f"{path}.{i}.toolSpecification"
            spec = tool.get("toolSpecification") if isinstance(tool, Mapping) else None
            if not isinstance(spec, Mapping):
                self.add("tool-specs", tpath, "each tool must hold a toolSpecification object")
                continue
            name = spec.get("name")
            if not isinstance(name, str) or not name:
                self.add("tool-name", f"{tpath}.name", "tool name must be a non-empty string")
            else:
                if len(name) > MAX_TOOL_NAME_LENGTH:
                    self.add("tool-name", f"{tpath}.name", _LONG_NAME)
                if name in names:
                    self.add("tool-name", f"{tpath}.name", f"duplicate tool name {name!r}")
                names.add(name)
            desc = spec.get("description")
            if not isinstance(desc, str) or not desc.strip():
                self.add("tool-description", f"{tpath}.description", "description must be a non-empty string")
            elif len(desc) > limit:
                problem = f"description longer than {limit} characters"
                self.add("tool-description", f"{tpath}.description", problem)
            schema = spec.get("inputSchema")
            js = schema.get("json") if isinstance(schema, Mapping) else None
            if not isinstance(js, Mapping):
                self.add("tool-schema", f"{tpath}.inputSchema.json", "schema must be an object")
                continue
            if js.get("type") != "object":
                self.add("tool-schema", f"{tpath}.inputSchema.json.type", 'schema type must be "object"')
            if not isinstance(js.get("properties"), Mapping):
                problem = "properties must be an object"
                self.add("tool-schema", f"{tpath}.inputSchema.json.properties", problem)
            required = js.get("required")
            if "required" in js and not (
                isinstance(required, list) and all(isinstance(r, str) for r in required)
            ):
                problem = "required must be a string array"
                self.add("tool-schema", f"{tpath}.inputSchema.json.required", problem)
        return names

    # -- the whole body -------------------------------------------------------------------------

    def body(self, body: Mapping[str, object]) -> None:
        extra = set(body) - {"conversationState", "profileArn"}
        if extra:
            self.add("body-shape", "", f"unexpected root keys {sorted(extra)}")
        if "profileArn" in body and not isinstance(body["profileArn"], str):
            self.add("body-shape", "profileArn", "profileArn must be a string")
        state = body.get("conversationState")
        if not isinstance(state, Mapping):
            self.add("body-shape", "conversationState", "conversationState must be an object")
            return
        sp = "conversationState"
        if state.get("chatTriggerType") != "MANUAL":
            self.add("body-shape", f"{sp}.chatTriggerType", 'chatTriggerType must be "MANUAL"')
        if state.get("agentTaskType") != "vibe":
            self.add("body-shape", f"{sp}.agentTaskType", 'agentTaskType must be "vibe"')
        for key in ("conversationId", "agentContinuationId"):
            value = state.get(key)
            if not isinstance(value, str) or not value:
                self.add("body-shape", f"{sp}.{key}", f"{key} must be a non-empty string")
        history = state.get("history")
        if history is None:  # absent, or null as the Go reference sends it
            history = []
        elif not isinstance(history, list):
            self.add("body-shape", f"{sp}.history", "history must be an array")
            history = []
        limit = self.limits.max_history_entries
        if limit is not None and len(history) > limit:
            self.add(
                "history-length", f"{sp}.history", f"{len(history)} history entries, the limit is {limit}"
            )
        pending: list[tuple[str, str]] = []  # tool uses of the previous assistant entry
        used_names: set[str] = set()
        any_tool_traffic = False
        expect = "userInputMessage"
        for i, entry in enumerate(history):
            path = f"{sp}.history.{i}"
            if not isinstance(entry, Mapping) or len(entry) != 1:
                self.add("body-shape", path, "history entry must hold exactly one message")
                continue
            (kind, msg), = entry.items()
            if kind not in ("userInputMessage", "assistantResponseMessage") or not isinstance(msg, Mapping):
                self.add("body-shape", f"{path}.{kind}", "unknown history entry")
                continue
            if kind != expect:
                self.add("alternation", f"{path}.{kind}", f"expected {expect} at this position")
            expect = "assistantResponseMessage" if kind == "userInputMessage" else "userInputMessage"
            if kind == "userInputMessage":
                ids = self.user(msg, f"{path}.{kind}", current=False)
                any_tool_traffic |= bool(ids)
                self.pairing(pending, ids, f"{path}.{kind}")
                pending = []
            else:
                pending = self.assistant(msg, f"{path}.{kind}")
                used_names.update(name for _, name in pending)
                any_tool_traffic |= bool(pending)
        if history and expect != "userInputMessage":
            self.add("alternation", f"{sp}.history", "history must end with an assistant entry")
        current = state.get("currentMessage")
        cur = current.get("userInputMessage") if isinstance(current, Mapping) else None
        cpath = f"{sp}.currentMessage.userInputMessage"
        if not isinstance(cur, Mapping):
            self.add("body-shape", cpath, "currentMessage.userInputMessage must be an object")
            return
        ids = self.user(cur, cpath, current=True)
        any_tool_traffic |= bool(ids)
        self.pairing(pending, ids, cpath)
        ctx = cur.get("userInputMessageContext", {})
        declared: set[str] = set()
        tpath = f"{cpath}.userInputMessageContext.tools"
        if isinstance(ctx, Mapping) and "tools" in ctx:
            declared = self.tools(ctx["tools"], tpath)
            if not declared:
                self.add("tool-specs", tpath, "tools must not be empty when present")
        if any_tool_traffic and not declared:
            self.add("tool-specs", tpath, "history uses tools but none are declared")
        missing = used_names - declared
        if missing and declared:
            self.add("tool-specs", tpath, f"undeclared tools used in history: {sorted(missing)}")

    def pairing(self, uses: Sequence[tuple[str, str]], result_ids: Sequence[str], path: str) -> None:
        use_ids = [u for u, _ in uses]
        unanswered = [u for u in use_ids if u not in result_ids]
        unknown = [r for r in result_ids if r not in use_ids]
        duplicates = {r for r in result_ids if result_ids.count(r) > 1}
        if unanswered:
            self.add("tool-pairing", path, f"tool uses without a result: {unanswered}")
        if unknown:
            self.add("tool-pairing", path, f"tool results without a tool use in the previous turn: {unknown}")
        if duplicates:
            self.add("tool-pairing", path, f"several results for one tool use: {sorted(duplicates)}")


def lint_kiro_body(
    body: Mapping[str, object], *, limits: LintLimits = LintLimits(), body_size: int | None = None
) -> list[Violation]:
    """Check a Kiro request body (the decoded JSON object) against every rule in ``RULES``.

    ``body_size`` is the serialised size in bytes when the caller already knows it; otherwise
    the body is serialised compactly to measure it. Image data does not count against the
    budget (the limit is on the conversation text; each image has its own 5 MB limit). Returns
    the violations (empty: the body is acceptable), in document order.
    """
    checker = _Checker(limits)
    checker.body(body)
    if limits.max_body_bytes is not None:
        if body_size is None:
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            body_size = len(text.encode("utf-8", "surrogatepass"))
        body_size -= checker.image_chars
        if body_size > limits.max_body_bytes:
            over = body_size - limits.max_body_bytes
            checker.add(
                "body-size",
                "",
                f"the request is {body_size} bytes once converted (images excepted), {over} bytes over the "
                f"{limits.max_body_bytes}-byte limit",
            )
    return checker.found
