"""The Responses API's ``input`` -> the system prompt and the internal ``Message`` values.

Items (docs/responses.md): ``message`` (roles ``developer``/``system``, ``user``, ``assistant``;
parts ``input_text``, ``input_image``, ``output_text``, ``refusal``), ``function_call``,
``function_call_output`` and ``reasoning``. The leading developer/system messages form the system
prompt, later ones stay mid-conversation system messages. Consecutive items of one side (a
reasoning item, the assistant's text and its function calls; the function outputs and the next
user text) become one message, because that is one turn.

A ``reasoning`` item becomes a thinking block of the assistant turn, the same value an OpenAI
``reasoning_content`` or an Anthropic thinking block becomes: the converter re-sends it inside
``<thinking>`` when thinking is on and leaves it out otherwise, so it never reaches Kiro in a form
Kiro refuses. Its ``encrypted_content`` is opaque and not read.

The records of provider-run tools (``web_search_call``, which a searched answer carries, and the
other hosted calls) are dropped, as Anthropic's server-tool blocks are: the text after them says
what they found. Items the gateway cannot represent otherwise (client-run tools other than
functions, references to stored items) are a 400: dropping them would change the conversation.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._json import as_array, as_object, as_string, fail
from ._model import ContentBlock, ImageBlock, Message, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock
from ._openai_messages import data_uri_image, nonempty, shown, tool_arguments

__all__ = ["parse_input", "qualified_name", "NAMESPACE_SEPARATOR"]

#: Joins a namespace and its function's name into the one name Kiro sees (``ns__tool``): Kiro's
#: tool names take letters, digits, ``_`` and ``-`` only.
NAMESPACE_SEPARATOR = "__"

#: What an ``item_reference`` or a stored item would need, said once.
_STATELESS = "the gateway keeps no responses or items; send the item itself"

_SYSTEM_ROLES = ("system", "developer")

#: Records of tools the provider ran: history only, nothing for Kiro to read. (A tuple: ``type``
#: may be any JSON value, and ``in`` on a set would raise for a list.)
_PROVIDER_CALLS = ("web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call", "mcp_list_tools", "mcp_call")


def qualified_name(namespace: str | None, name: str) -> str:
    """The flat tool name of ``name`` in ``namespace`` (``name`` itself without one)."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def _image(part: Mapping[str, object], path: str) -> ImageBlock:
    detail = part.get("detail")
    if detail is not None:
        as_string(detail, f"{path}.detail")  # a resolution hint: Kiro has none to give
    if part.get("file_id") is not None:
        fail(f"{path}.file_id", "uploaded files are not available through the gateway; send the image as a data: URL")
    url = part.get("image_url")
    if url is None:
        fail(f"{path}.image_url", "field required")
    return data_uri_image(as_string(url, f"{path}.image_url"), url_path=f"{path}.image_url", path=path)


def _parts(value: object, path: str, allowed: tuple[str, ...]) -> tuple[ContentBlock, ...]:
    """A string, or content parts of the ``allowed`` types (text kinds and ``input_image``)."""
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks: list[ContentBlock] = []
    for i, item in enumerate(as_array(value, path)):
        ipath = f"{path}.{i}"
        part = as_object(item, ipath)
        kind = part.get("type")
        if kind not in allowed:
            if kind == "input_file":
                fail(f"{ipath}.type", "input_file parts are not supported (Kiro accepts text and images)")
            if kind == "input_image":
                fail(f"{ipath}.type", "images are only accepted in user messages and function call outputs")
            fail(f"{ipath}.type", f"expected {' or '.join(repr(a) for a in allowed)} here, got {shown(kind)}")
        if kind == "input_image":
            blocks.append(_image(part, ipath))
            continue
        key = "refusal" if kind == "refusal" else "text"
        text = as_string(part.get(key), f"{ipath}.{key}")
        if text:
            blocks.append(TextBlock(text=text))
    return tuple(blocks)


def _message(obj: Mapping[str, object], path: str) -> tuple[str, tuple[ContentBlock, ...]]:
    role = obj.get("role")
    if "content" not in obj:
        fail(f"{path}.content", "field required")
    content = obj["content"]
    cpath = f"{path}.content"
    if role == "user":
        return "user", _parts(content, cpath, ("input_text", "input_image"))
    if role in _SYSTEM_ROLES:
        return "system", _parts(content, cpath, ("input_text",))
    if role == "assistant":
        # input_text too: the SDK's EasyInputMessage lets any role carry input parts.
        return "assistant", _parts(content, cpath, ("output_text", "refusal", "input_text"))
    fail(f"{path}.role", f'expected "user", "assistant", "system" or "developer", got {shown(role)}')


def _function_call(obj: Mapping[str, object], path: str) -> ToolUseBlock:
    call_id = nonempty(obj.get("call_id"), f"{path}.call_id")
    name = nonempty(obj.get("name"), f"{path}.name")
    namespace = obj.get("namespace")
    if namespace is not None:
        namespace = as_string(namespace, f"{path}.namespace")
    arguments = tool_arguments(obj.get("arguments", ""), f"{path}.arguments")
    return ToolUseBlock(id=call_id, name=qualified_name(namespace, name), input=arguments)


def _function_output(obj: Mapping[str, object], path: str) -> ToolResultBlock:
    call_id = nonempty(obj.get("call_id"), f"{path}.call_id")
    if "output" not in obj:
        fail(f"{path}.output", "field required")
    parts = _parts(obj["output"], f"{path}.output", ("input_text", "input_image"))
    content = tuple(p for p in parts if isinstance(p, (TextBlock, ImageBlock)))
    return ToolResultBlock(tool_use_id=call_id, content=content)


def _reasoning(obj: Mapping[str, object], path: str) -> ThinkingBlock | None:
    """The reasoning text: its full ``content`` when sent, else its summaries."""
    encrypted = obj.get("encrypted_content")
    if encrypted is not None:
        as_string(encrypted, f"{path}.encrypted_content")
    texts: list[str] = []
    for key, kind in (("content", "reasoning_text"), ("summary", "summary_text")):
        value = obj.get(key)
        if value is None:
            continue
        for i, item in enumerate(as_array(value, f"{path}.{key}")):
            ipath = f"{path}.{key}.{i}"
            part = as_object(item, ipath)
            if part.get("type") != kind:
                fail(f"{ipath}.type", f"expected {kind!r}, got {shown(part.get('type'))}")
            text = as_string(part.get("text"), f"{ipath}.text")
            if text:
                texts.append(text)
        if texts:
            break
    return ThinkingBlock(thinking="\n\n".join(texts)) if texts else None


class _Conversation:
    """Collects turns: consecutive items of one side become one message."""

    def __init__(self) -> None:
        self.system: list[TextBlock] = []
        self.messages: list[tuple[str, list[ContentBlock]]] = []

    def add(self, role: str, blocks: tuple[ContentBlock, ...] | list[ContentBlock]) -> None:
        if role == "system" and not self.messages:
            self.system.extend(b for b in blocks if isinstance(b, TextBlock))
            return
        if role == "system" and not blocks:
            return
        if self.messages and role != "system" and self.messages[-1][0] == role:
            self.messages[-1][1].extend(blocks)
        else:
            self.messages.append((role, list(blocks)))

    def result(self) -> tuple[tuple[TextBlock, ...], tuple[Message, ...]]:
        messages = tuple(
            Message(role="user" if role == "user" else "assistant" if role == "assistant" else "system", content=tuple(blocks))
            for role, blocks in self.messages
        )
        return tuple(self.system), messages


def parse_input(value: object, instructions: str) -> tuple[tuple[TextBlock, ...], tuple[Message, ...]]:
    """The system prompt (``instructions`` first) and the conversation in ``input``."""
    talk = _Conversation()
    if instructions:
        talk.add("system", (TextBlock(text=instructions),))
    if isinstance(value, str):
        if not value:
            fail("input", "must not be empty")
        talk.add("user", (TextBlock(text=value),))
        return talk.result()
    items = as_array(value, "input")
    if not items:
        fail("input", "must contain at least one item")
    for i, raw in enumerate(items):
        path = f"input.{i}"
        obj = as_object(raw, path)
        kind = obj.get("type")
        if kind is None and "role" in obj:
            kind = "message"  # EasyInputMessage: the SDK omits the type
        if kind == "message":
            role, blocks = _message(obj, path)
            talk.add(role, blocks)
        elif kind == "function_call":
            talk.add("assistant", (_function_call(obj, path),))
        elif kind == "function_call_output":
            talk.add("user", (_function_output(obj, path),))
        elif kind == "reasoning":
            thought = _reasoning(obj, path)
            if thought is not None:
                talk.add("assistant", (thought,))
        elif kind in _PROVIDER_CALLS:
            continue
        elif kind == "item_reference":
            fail(path, f"item references are not supported: {_STATELESS}")
        elif isinstance(kind, str):
            fail(f"{path}.type", f"input items of type {kind!r} are not supported (only messages, function calls, their outputs and reasoning)")
        else:
            fail(f"{path}.type", f"expected a string, got {shown(kind)}")
    system, messages = talk.result()
    if not messages:
        fail("input", "must contain a user message (only system or developer messages were sent)")
    return system, messages
