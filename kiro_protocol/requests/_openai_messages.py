"""OpenAI ``messages`` -> the system prompt and the internal ``Message`` values.

Roles: ``system``/``developer`` (the leading ones form the system prompt, later ones stay as
mid-conversation system messages), ``user`` (text and ``image_url`` parts), ``assistant``
(content, ``tool_calls``, legacy ``function_call``, ``reasoning_content``), ``tool`` and the
legacy ``function`` role. Also the small field helpers the rest of the OpenAI parser shares.
Every problem is a ``LocalProtocolError`` naming the field path (see ``_openai_request``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .._errors import LocalProtocolError
from ._images import check_image
from ._json import as_array, as_object, as_string, check_depth, fail, type_name
from ._model import (
    ContentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["parse_messages", "one_of", "shown", "nonempty", "tool_arguments", "data_uri_image"]


def one_of(value: object, path: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else the 400 listing them."""
    if value not in allowed:
        expected = ", ".join(f'"{a}"' for a in allowed)
        fail(path, f"expected one of {expected}, got {shown(value)}")
    return str(value)


def shown(value: object) -> str:
    """A short rendering of a client value for an error message."""
    if isinstance(value, str):
        return repr(value[:60])
    return type_name(value)


def nonempty(value: object, path: str) -> str:
    """A string with something besides whitespace in it, else the 400."""
    text = as_string(value, path)
    if not text.strip():
        fail(path, "must not be empty")
    return text


# -- content --------------------------------------------------------------------------------------


def _image_url(part: Mapping[str, object], path: str) -> ImageBlock:
    """An ``image_url`` part holding a base64 ``data:`` URI (the gateway fetches nothing)."""
    raw = part.get("image_url")
    # The oldest clients send the URL directly as a string.
    spec = {"url": raw} if isinstance(raw, str) else as_object(raw, f"{path}.image_url")
    url_path = f"{path}.image_url.url"
    url = as_string(spec.get("url"), url_path)
    detail = spec.get("detail")
    if detail is not None:
        as_string(detail, f"{path}.image_url.detail")  # a resolution hint: Kiro has none to give
    return data_uri_image(url, url_path=url_path, path=path)


def data_uri_image(url: str, *, url_path: str, path: str) -> ImageBlock:
    """The image in a base64 ``data:`` URI; a remote URL is a 400 (the gateway fetches nothing).

    ``url_path`` names the URL field in errors, ``path`` the content part.
    """
    if not url[:5].lower() == "data:":
        scheme = url.split(":", 1)[0][:10] if ":" in url else ""
        what = f"a remote {scheme} URL" if scheme else "not a data: URI"
        fail(
            url_path,
            f"{what}; image URLs are not fetched by the gateway, send the image inline as "
            "data:image/<png|jpeg|gif|webp>;base64,<data>",
        )
    header, sep, data = url[5:].partition(",")
    if not sep:
        fail(url_path, "malformed data: URI (no comma before the data)")
    params = [p.strip().lower() for p in header.split(";")]
    media_type = params[0] or "text/plain"
    if "base64" not in params[1:]:
        fail(url_path, "only base64 data: URIs are supported (data:<media type>;base64,<data>)")
    try:
        return check_image(media_type, data, path=path)
    except LocalProtocolError as exc:
        # check_image speaks in Anthropic field paths; name the OpenAI field instead.
        detail_text = exc.message.split(": ", 1)[-1]
        raise LocalProtocolError(f"{url_path}: {detail_text}", param=url_path) from None


def _text_parts(value: object, path: str, *, allow: tuple[str, ...] = ("text",)) -> tuple[TextBlock, ...]:
    """A string, or an array of text parts (also ``refusal`` parts for the assistant)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks = []
    for i, item in enumerate(as_array(value, path)):
        part = as_object(item, f"{path}.{i}")
        kind = part.get("type")
        if kind not in allow:
            fail(f"{path}.{i}.type", f"expected {' or '.join(repr(a) for a in allow)} here, got {shown(kind)}")
        key = "refusal" if kind == "refusal" else "text"
        text = as_string(part.get(key), f"{path}.{i}.{key}")
        if text:
            blocks.append(TextBlock(text=text))
    return tuple(blocks)


def _user_content(value: object, path: str) -> tuple[ContentBlock, ...]:
    if value is None:
        fail(path, "field required")
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks: list[ContentBlock] = []
    for i, item in enumerate(as_array(value, path)):
        ipath = f"{path}.{i}"
        part = as_object(item, ipath)
        kind = part.get("type")
        if kind == "text":
            text = as_string(part.get("text"), f"{ipath}.text")
            if text:
                blocks.append(TextBlock(text=text))
        elif kind == "image_url":
            blocks.append(_image_url(part, ipath))
        elif kind in ("input_audio", "file"):
            fail(f"{ipath}.type", f"{kind} content parts are not supported (Kiro accepts text and images)")
        else:
            fail(f"{ipath}.type", f'expected "text" or "image_url", got {shown(kind)}')
    return tuple(blocks)


def tool_arguments(value: object, path: str) -> Mapping[str, object]:
    """``function.arguments``: a string holding a JSON object (empty means no arguments)."""
    if isinstance(value, Mapping):  # some clients send the object itself
        check_depth(value, path)
        return dict(value)
    text = as_string(value, path)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
        json.dumps(parsed, allow_nan=False)  # NaN/Infinity parse, but could not be forwarded
    except (ValueError, RecursionError):
        fail(path, "not valid JSON; expected a JSON object encoded as a string")
    if not isinstance(parsed, dict):
        fail(path, f"expected a JSON object encoded as a string, got a JSON {type_name(parsed)}")
    check_depth(parsed, path)
    return parsed


def _tool_calls(value: object, path: str) -> list[ToolUseBlock]:
    uses = []
    for i, item in enumerate(as_array(value, path)):
        ipath = f"{path}.{i}"
        call = as_object(item, ipath)
        kind = call.get("type", "function")
        if kind != "function":
            fail(f"{ipath}.type", f'only "function" tool calls are supported, got {shown(kind)}')
        call_id = nonempty(call.get("id"), f"{ipath}.id")
        function = as_object(call.get("function"), f"{ipath}.function")
        name = nonempty(function.get("name"), f"{ipath}.function.name")
        tool_input = tool_arguments(function.get("arguments"), f"{ipath}.function.arguments")
        uses.append(ToolUseBlock(id=call_id, name=name, input=tool_input))
    return uses


class _LegacyCalls:
    """Ids for the legacy ``function_call`` / ``function`` role pair, which carry none.

    A ``function`` message answers the latest unanswered ``function_call`` of the same name;
    ids are derived from message positions, so they are stable for a given conversation.
    """

    def __init__(self) -> None:
        self._open: list[tuple[str, str]] = []  # (name, id), oldest first

    def call(self, name: str, index: int) -> str:
        call_id = f"call_legacy_{index}"
        self._open.append((name, call_id))
        return call_id

    def answer(self, name: str, index: int) -> str:
        for pos in range(len(self._open) - 1, -1, -1):
            if self._open[pos][0] == name:
                return self._open.pop(pos)[1]
        # Nothing to answer: the converter keeps it as text (tool-pairing repair).
        return f"call_legacy_result_{index}"


def _assistant(obj: Mapping[str, object], path: str, index: int, legacy: _LegacyCalls) -> Message:
    blocks: list[ContentBlock] = []
    reasoning = obj.get("reasoning_content")
    if reasoning is not None:
        # What our own responses carried as reasoning_content, sent back by the client.
        thought = as_string(reasoning, f"{path}.reasoning_content")
        if thought:
            blocks.append(ThinkingBlock(thinking=thought))
    blocks.extend(_text_parts(obj.get("content"), f"{path}.content", allow=("text", "refusal")))
    refusal = obj.get("refusal")
    if refusal is not None:
        refusal_text = as_string(refusal, f"{path}.refusal")
        if refusal_text:
            blocks.append(TextBlock(text=refusal_text))
    calls = obj.get("tool_calls")
    if calls is not None:
        blocks.extend(_tool_calls(calls, f"{path}.tool_calls"))
    function_call = obj.get("function_call")
    if function_call is not None:
        fpath = f"{path}.function_call"
        fc = as_object(function_call, fpath)
        name = nonempty(fc.get("name"), f"{fpath}.name")
        args = tool_arguments(fc.get("arguments"), f"{fpath}.arguments")
        blocks.append(ToolUseBlock(id=legacy.call(name, index), name=name, input=args))
    return Message(role="assistant", content=tuple(blocks))


def parse_messages(value: object) -> tuple[tuple[TextBlock, ...], tuple[Message, ...]]:
    """The leading system/developer messages (the system prompt) and the conversation."""
    raw = as_array(value, "messages")
    if not raw:
        fail("messages", "must contain at least one message")
    system: list[TextBlock] = []
    messages: list[Message] = []
    legacy = _LegacyCalls()
    for i, item in enumerate(raw):
        path = f"messages.{i}"
        obj = as_object(item, path)
        role = obj.get("role")
        name = obj.get("name")
        if name is not None and role != "function":
            as_string(name, f"{path}.name")  # a participant name: accepted, not forwarded
        if role in ("system", "developer"):
            if "content" not in obj:
                fail(f"{path}.content", "field required")
            texts = _text_parts(obj["content"], f"{path}.content")
            if not messages:
                system.extend(texts)  # folded like the Anthropic system prompt
            elif texts:
                messages.append(Message(role="system", content=texts))
        elif role == "user":
            messages.append(Message(role="user", content=_user_content(obj.get("content"), f"{path}.content")))
        elif role == "assistant":
            messages.append(_assistant(obj, path, i, legacy))
        elif role == "tool":
            call_id = nonempty(obj.get("tool_call_id"), f"{path}.tool_call_id")
            content = _text_parts(obj.get("content"), f"{path}.content")
            messages.append(Message(role="user", content=(ToolResultBlock(tool_use_id=call_id, content=content),)))
        elif role == "function":
            fname = nonempty(name, f"{path}.name")
            content = _text_parts(obj.get("content"), f"{path}.content")
            result = ToolResultBlock(tool_use_id=legacy.answer(fname, i), content=content)
            messages.append(Message(role="user", content=(result,)))
        else:
            fail(
                f"{path}.role",
                'expected "system", "developer", "user", "assistant", "tool" or "function", '
                f"got {shown(role)}",
            )
    if not messages:
        fail("messages", "must contain a user message (only system messages were sent)")
    return tuple(system), tuple(messages)
