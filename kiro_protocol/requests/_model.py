"""The dialect-independent request model.

Both front ends (Anthropic Messages, OpenAI Chat Completions) parse into these values; the
converter (``_conversion``) and the linter only ever see them. Nothing here knows about either
wire format: a value is what the client *meant*, already validated (every image is a supported
format with decodable bytes, every tool has a name, ...).

Values are frozen; mappings that come from client JSON (tool inputs, schemas) are kept as the
plain ``dict``/``list`` trees ``json.loads`` produced and must be treated as read-only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Union

__all__ = [
    "TextBlock",
    "ImageBlock",
    "ImageRefit",
    "ToolUseBlock",
    "ToolResultBlock",
    "ThinkingBlock",
    "RedactedThinkingBlock",
    "ContentBlock",
    "ToolResultContent",
    "Message",
    "Role",
    "ToolKind",
    "Tool",
    "ToolChoice",
    "ThinkingConfig",
    "OutputFormat",
    "Request",
]

Role = Literal["user", "assistant", "system"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TextBlock:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRefit:
    """Why an image must be re-encoded before Kiro gets it: found by the parser from the image's
    header, done by the converter through ``ConversionConfig.image_transform`` (docs/conversion.md)."""

    #: The block's path (``messages.1.content.0``), for errors and the repair note.
    path: str
    #: The decoded image, kept so the converter need not decode the base64 again.
    raw: bytes = field(repr=False)
    #: What is wrong, in words (``"BMP"``, ``"6000000 bytes, over 5242880"``, ...).
    reasons: tuple[str, ...]
    #: Kiro refuses the image as it is (format, size): without a transform it is a 400. When
    #: false the refit only saves tokens and bytes, and the image is sent as it is without one.
    required: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageBlock:
    """A base64 image whose format was checked against its bytes."""

    #: ``png`` / ``jpeg`` / ``gif`` / ``webp`` (the upstream ``format`` value); ``bmp`` or
    #: ``tiff`` only with a required ``refit``.
    format: str
    #: The base64 text as the client sent it (forwarded unchanged unless refitted).
    data: str = ""
    #: Size of the decoded bytes.
    decoded_size: int = 0
    #: Pixel size when the header could be read, else 0 (used by the token estimate).
    width: int = 0
    height: int = 0
    #: Set when the image needs converting or downscaling before it is sent.
    refit: ImageRefit | None = None

    def __repr__(self) -> str:  # the data can be megabytes: never print it
        return f"ImageBlock(format={self.format!r}, decoded_size={self.decoded_size})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUseBlock:
    id: str
    name: str
    #: The tool arguments (always a JSON object).
    input: Mapping[str, object]


ToolResultContent = Union[TextBlock, ImageBlock]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultBlock:
    tool_use_id: str
    content: tuple[ToolResultContent, ...] = ()
    is_error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkingBlock:
    thinking: str
    signature: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactedThinkingBlock:
    data: str


ContentBlock = Union[
    TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    #: ``system`` is a mid-conversation system message (Claude Code sends them); the converter
    #: folds it into the conversation as user-side text.
    role: Role
    content: tuple[ContentBlock, ...]


class ToolKind(enum.Enum):
    #: A client-executed tool with a JSON schema: forwarded to Kiro.
    CUSTOM = "custom"
    #: A tool the provider would execute (``web_search_*``, ``code_execution_*``...): Kiro cannot
    #: run it, so it is not forwarded (see docs/conversion.md).
    SERVER = "server"
    #: ``defer_loading: true`` (advanced tool use): forwarded like a custom tool, with a
    #: permissive schema when the client sent none.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    name: str
    description: str = ""
    #: The JSON schema of the input; ``None`` when the client sent none.
    input_schema: Mapping[str, object] | None = None
    kind: ToolKind = ToolKind.CUSTOM
    #: The versioned ``type`` of provider-defined tools (``web_search_20250305``), else ``""``.
    type: str = ""
    #: A web-search server tool's domain filters (at most one of the two is set).
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"] = "auto"
    #: The forced tool for ``type == "tool"``.
    name: str = ""
    disable_parallel_tool_use: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkingConfig:
    type: Literal["enabled", "adaptive", "disabled"] = "disabled"
    #: ``budget_tokens`` for ``enabled``; 0 when not given.
    budget_tokens: int = 0

    @property
    def enabled(self) -> bool:
        return self.type != "disabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputFormat:
    """A structured-output request: answer with JSON matching ``schema``."""

    schema: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One chat request, whatever dialect it arrived in."""

    #: The model name exactly as the client sent it.
    model: str
    messages: tuple[Message, ...]
    system: tuple[TextBlock, ...] = ()
    max_tokens: int = 4096
    stream: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig = ThinkingConfig()
    #: ``output_config.effort`` (``low``/``medium``/``high``/``max``), or ``""``.
    effort: str = ""
    output_format: OutputFormat | None = None
    stop_sequences: tuple[str, ...] = ()
    #: Sampling parameters: parsed and validated, never forwarded (Kiro has none).
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    #: The client's session id (Claude Code: ``metadata.user_id`` -> ``session_id``), or ``""``.
    session_id: str = ""
    #: Report usage in the stream (OpenAI ``stream_options.include_usage``); Anthropic streams
    #: always carry usage. Response-side only: never forwarded.
    include_usage: bool = False
