"""Anthropic Messages request body -> the internal ``Request``.

Every problem is a ``LocalProtocolError`` (400 ``invalid_request_error``) whose message starts
with the JSON path of the offending field (``messages.3.content.0.source.media_type``) and whose
``param`` is that path. Unknown top-level fields are ignored (clients add new ones all the time);
unknown *content block* types are refused unless they are provider-side blocks we can safely
drop (see ``_DROPPED_BLOCKS``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from .._errors import LocalProtocolError
from ._images import check_image
from ._json import (
    as_array,
    as_bool,
    as_int,
    as_number,
    as_object,
    as_string,
    check_depth,
    fail,
    parse_json_body,
    type_name,
)
from ._model import (
    ContentBlock,
    ImageBlock,
    Message,
    OutputFormat,
    RedactedThinkingBlock,
    Request,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolKind,
    ToolResultBlock,
    ToolResultContent,
    ToolUseBlock,
)
from ._tools import parse_tool

__all__ = ["parse_anthropic_request", "parse_json_body", "session_id_from_user_id"]

# Blocks produced by provider-side tools (web search, code execution, MCP connector...). They
# only appear when a client replays a conversation held with Anthropic itself; Kiro has no
# equivalent, so they are dropped rather than refused.
_DROPPED_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)

_HEX = "[0-9a-fA-F]"
_SESSION_IN_TEXT = re.compile(f"session_({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})")


def session_id_from_user_id(user_id: str) -> str:
    """The client session id carried by ``metadata.user_id``, or ``""``.

    Claude Code sends a JSON string holding ``session_id``; older versions sent
    ``user_<hash>_account__session_<uuid>``.
    """
    if user_id.startswith("{"):
        try:
            decoded = json.loads(user_id)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            sid = decoded.get("session_id")
            if isinstance(sid, str) and sid.strip():
                return sid.strip()
    m = _SESSION_IN_TEXT.search(user_id)
    return m.group(1).lower() if m else ""


# -- content blocks -------------------------------------------------------------------------------


def _image(block: Mapping[str, object], path: str, verify: bool) -> ImageBlock:
    source = as_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = as_string(source.get("media_type"), f"{path}.source.media_type")
        data = as_string(source.get("data"), f"{path}.source.data")
        return check_image(media_type, data, path=path, verify=verify)
    if kind == "url":
        fail(
            f"{path}.source.type",
            "URL image sources are not supported (the gateway fetches nothing); send the image as base64",
        )
    fail(f"{path}.source.type", f"unsupported image source type {kind!r}; use \"base64\"")


def _text_blocks(value: object, path: str) -> str:
    """Join the ``text`` of a list of text blocks (document ``content`` sources, search results)."""
    parts = []
    for i, item in enumerate(as_array(value, path)):
        obj = as_object(item, f"{path}.{i}")
        if obj.get("type") != "text":
            fail(f"{path}.{i}.type", "expected a text block")
        parts.append(as_string(obj.get("text"), f"{path}.{i}.text"))
    return "\n".join(parts)


def _document(block: Mapping[str, object], path: str) -> TextBlock:
    source = as_object(block.get("source"), f"{path}.source")
    kind = source.get("type")
    if kind == "text":
        text = as_string(source.get("data"), f"{path}.source.data")
    elif kind == "content":
        content = source.get("content")
        text = content if isinstance(content, str) else _text_blocks(content, f"{path}.source.content")
    else:
        fail(
            f"{path}.source.type",
            f"document source {kind!r} is not supported; "
            'only plain-text documents ("text" or "content") can be sent',
        )
    title = block.get("title")
    if isinstance(title, str) and title.strip():
        text = f"{title.strip()}\n{text}"
    return TextBlock(text=text)


def _search_result(block: Mapping[str, object], path: str) -> TextBlock:
    title = block.get("title")
    source = block.get("source")
    body = _text_blocks(block.get("content"), f"{path}.content")
    head = " ".join(s for s in (title, source) if isinstance(s, str) and s)
    return TextBlock(text=f"{head}\n{body}" if head else body)


def _tool_result_content(value: object, path: str, verify: bool) -> tuple[ToolResultContent, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextBlock(text=value),)
    items: list[ToolResultContent] = []
    for i, item in enumerate(as_array(value, path)):
        ipath = f"{path}.{i}"
        obj = as_object(item, ipath)
        kind = obj.get("type")
        if kind == "text":
            items.append(TextBlock(text=as_string(obj.get("text"), f"{ipath}.text")))
        elif kind == "image":
            items.append(_image(obj, ipath, verify))
        elif kind == "document":
            items.append(_document(obj, ipath))
        elif kind == "search_result":
            items.append(_search_result(obj, ipath))
        elif kind == "tool_reference":
            # Tool search results name the tools to load; the model only needs the names.
            items.append(TextBlock(text=f"Tool loaded: {as_string(obj.get('tool_name'), f'{ipath}.tool_name')}"))
        else:
            fail(f"{ipath}.type", f"unsupported tool_result content type {kind!r}")
    return tuple(items)


def _block(item: object, path: str, role: str, verify: bool) -> ContentBlock | None:
    block = as_object(item, path)
    kind = block.get("type")
    if not isinstance(kind, str):
        fail(f"{path}.type", f"expected a string, got {type_name(kind)}")
    if kind == "text":
        return TextBlock(text=as_string(block.get("text"), f"{path}.text"))
    if role == "system":
        fail(f"{path}.type", f"a system message may only hold text blocks, got {kind!r}")
    if kind == "image":
        return _image(block, path, verify)
    if kind == "document":
        return _document(block, path)
    if kind == "search_result":
        return _search_result(block, path)
    if kind == "tool_use":
        if role != "assistant":
            fail(f"{path}.type", "tool_use blocks are only allowed in assistant messages")
        tool_id = as_string(block.get("id"), f"{path}.id")
        name = as_string(block.get("name"), f"{path}.name")
        if not tool_id:
            fail(f"{path}.id", "must not be empty")
        if not name:
            fail(f"{path}.name", "must not be empty")
        raw_input = block.get("input", {})
        tool_input = {} if raw_input is None else dict(as_object(raw_input, f"{path}.input"))
        check_depth(tool_input, f"{path}.input")
        return ToolUseBlock(id=tool_id, name=name, input=tool_input)
    if kind == "tool_result":
        if role != "user":
            fail(f"{path}.type", "tool_result blocks are only allowed in user messages")
        tool_use_id = as_string(block.get("tool_use_id"), f"{path}.tool_use_id")
        if not tool_use_id:
            fail(f"{path}.tool_use_id", "must not be empty")
        return ToolResultBlock(
            tool_use_id=tool_use_id,
            content=_tool_result_content(block.get("content"), f"{path}.content", verify),
            is_error=as_bool(block.get("is_error"), f"{path}.is_error"),
        )
    if kind in ("thinking", "redacted_thinking") and role != "assistant":
        fail(f"{path}.type", f"{kind} blocks are only allowed in assistant messages")
    if kind == "thinking":
        signature = block.get("signature")
        return ThinkingBlock(
            thinking=as_string(block.get("thinking"), f"{path}.thinking"),
            signature=signature if isinstance(signature, str) else "",
        )
    if kind == "redacted_thinking":
        return RedactedThinkingBlock(data=as_string(block.get("data"), f"{path}.data"))
    if kind in _DROPPED_BLOCKS:
        return None
    fail(f"{path}.type", f"unsupported content block type {kind!r}")


def _content(value: object, path: str, role: str, verify: bool) -> tuple[ContentBlock, ...]:
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    if not isinstance(value, list):
        fail(path, f"expected a string or an array, got {type_name(value)}")
    blocks = []
    for i, item in enumerate(value):
        block = _block(item, f"{path}.{i}", role, verify)
        if block is not None:
            blocks.append(block)
    return tuple(blocks)


def _messages(value: object, verify: bool) -> tuple[Message, ...]:
    raw = as_array(value, "messages")
    if not raw:
        fail("messages", "must contain at least one message")
    messages = []
    last = len(raw) - 1
    for i, item in enumerate(raw):
        path = f"messages.{i}"
        obj = as_object(item, path)
        role = obj.get("role")
        if role not in ("user", "assistant", "system"):
            fail(f"{path}.role", f"expected \"user\", \"assistant\" or \"system\", got {role!r}")
        if "content" not in obj:
            fail(f"{path}.content", "field required")
        raw_content = obj["content"]
        content = _content(raw_content, f"{path}.content", role, verify)
        if raw_content in ("", []):
            if i == last and role == "assistant":
                continue  # an empty final assistant message is "no prefill"
            fail(f"{path}.content", "must not be empty (only the final assistant message may be empty)")
        messages.append(Message(role=role, content=content))
    return tuple(messages)


def _system(value: object) -> tuple[TextBlock, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextBlock(text=value),) if value else ()
    blocks = []
    for i, item in enumerate(as_array(value, "system")):
        obj = as_object(item, f"system.{i}")
        if obj.get("type") != "text":
            fail(f"system.{i}.type", f"system blocks must be text blocks, got {obj.get('type')!r}")
        blocks.append(TextBlock(text=as_string(obj.get("text"), f"system.{i}.text")))
    return tuple(blocks)


def _tools(value: object) -> tuple[Tool, ...]:
    if value is None:
        return ()
    tools = tuple(
        parse_tool(as_object(item, f"tools.{i}"), f"tools.{i}") for i, item in enumerate(as_array(value, "tools"))
    )
    seen: dict[str, int] = {}
    for i, tool in enumerate(tools):
        if tool.name in seen:
            fail(f"tools.{i}.name", f"duplicate tool name {tool.name!r} (also tools.{seen[tool.name]})")
        seen[tool.name] = i
    return tools


def _tool_choice(value: object) -> ToolChoice | None:
    if value is None:
        return None
    obj = as_object(value, "tool_choice")
    kind = obj.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        fail("tool_choice.type", f"expected \"auto\", \"any\", \"tool\" or \"none\", got {kind!r}")
    name = ""
    if kind == "tool":
        name = as_string(obj.get("name"), "tool_choice.name")
        if not name:
            fail("tool_choice.name", "must not be empty")
    return ToolChoice(
        type=kind,
        name=name,
        disable_parallel_tool_use=as_bool(
            obj.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use"
        ),
    )


def _thinking(value: object) -> ThinkingConfig:
    if value is None:
        return ThinkingConfig()
    obj = as_object(value, "thinking")
    kind = obj.get("type")
    if kind == "enabled":
        return ThinkingConfig(
            type="enabled", budget_tokens=as_int(obj.get("budget_tokens"), "thinking.budget_tokens", minimum=1)
        )
    if kind == "adaptive":
        return ThinkingConfig(type="adaptive")
    if kind == "disabled":
        return ThinkingConfig()
    fail("thinking.type", f"expected \"enabled\", \"adaptive\" or \"disabled\", got {kind!r}")


def _output_config(value: object) -> tuple[str, OutputFormat | None]:
    if value is None:
        return "", None
    obj = as_object(value, "output_config")
    effort = obj.get("effort")
    if effort is not None:
        effort = as_string(effort, "output_config.effort").strip().lower()
    fmt = obj.get("format")
    output_format = None
    if fmt is not None:
        fobj = as_object(fmt, "output_config.format")
        if fobj.get("type") != "json_schema":
            fail("output_config.format.type", f"expected \"json_schema\", got {fobj.get('type')!r}")
        schema = as_object(fobj.get("schema"), "output_config.format.schema")
        check_depth(schema, "output_config.format.schema")
        output_format = OutputFormat(schema=schema)
    return effort or "", output_format


def parse_anthropic_request(
    body: bytes | str | Mapping[str, object], *, count_tokens: bool = False
) -> Request:
    """Parse and validate an Anthropic Messages request body.

    ``body`` is the raw request body or an already-decoded JSON object. Set
    ``count_tokens=True`` for ``/v1/messages/count_tokens`` bodies: ``max_tokens`` is then
    optional and images are not decoded (nothing is sent upstream).
    Raises ``LocalProtocolError`` naming the offending field path.
    """
    if isinstance(body, Mapping):
        obj = body
    elif isinstance(body, (bytes, bytearray, str)):
        obj = parse_json_body(body)
    else:  # an already-decoded JSON value that is not an object
        raise LocalProtocolError(f"request body: expected a JSON object, got {type_name(body)}")
    if "model" not in obj:
        fail("model", "field required")
    model = as_string(obj["model"], "model").strip()
    if not model:
        fail("model", "must not be empty")
    if "messages" not in obj:
        fail("messages", "field required")
    messages = _messages(obj["messages"], not count_tokens)
    raw_max = obj.get("max_tokens")
    if raw_max is None:
        if not count_tokens:
            fail("max_tokens", "field required")
        max_tokens = 4096
    else:
        max_tokens = as_int(raw_max, "max_tokens", minimum=1)
    stop = obj.get("stop_sequences")
    stop_sequences: tuple[str, ...] = ()
    if stop is not None:
        items = as_array(stop, "stop_sequences")
        stop_sequences = tuple(as_string(s, f"stop_sequences.{i}") for i, s in enumerate(items))
    metadata = obj.get("metadata")
    session_id = ""
    if metadata is not None:
        user_id = as_object(metadata, "metadata").get("user_id")
        if user_id is not None:
            session_id = session_id_from_user_id(as_string(user_id, "metadata.user_id"))
    context_management = obj.get("context_management")
    if context_management is not None:
        as_object(context_management, "context_management")  # accepted, nothing to forward
    temperature = obj.get("temperature")
    top_p = obj.get("top_p")
    top_k = obj.get("top_k")
    effort, output_format = _output_config(obj.get("output_config"))
    return Request(
        model=model,
        messages=messages,
        system=_system(obj.get("system")),
        max_tokens=max_tokens,
        stream=as_bool(obj.get("stream"), "stream"),
        tools=_tools(obj.get("tools")),
        tool_choice=_tool_choice(obj.get("tool_choice")),
        thinking=_thinking(obj.get("thinking")),
        effort=effort,
        output_format=output_format,
        stop_sequences=stop_sequences,
        temperature=None if temperature is None else as_number(temperature, "temperature"),
        top_p=None if top_p is None else as_number(top_p, "top_p"),
        top_k=None if top_k is None else as_int(top_k, "top_k", minimum=0),
        session_id=session_id,
    )
