"""What the response side needs to know about the request it answers.

The request converter produces a ``ResponsePlan``; the response translator consumes it. Keeping
it a small frozen value is what lets the two sides be built and tested apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["ResponsePlan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsePlan:
    #: The model name exactly as the client sent it; echoed in every response.
    client_model: str
    #: The Kiro model id the request was sent with.
    kiro_model_id: str
    #: Context window of that model in tokens (200k, or 1M for the 4.6 models).
    context_window: int = 200_000
    #: Upstream tool name -> client tool name, for names the linter shortened. Names not in the
    #: map are reported unchanged.
    tool_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Whether the client asked for thinking (then ``<thinking>`` text becomes thinking blocks).
    thinking: bool = False
    #: The client's ``max_tokens``.
    max_tokens: int = 4096
    #: The client's ``stop_sequences`` (or OpenAI ``stop``), honoured locally.
    stop_sequences: tuple[str, ...] = ()
    #: Our estimate of the input tokens, used when upstream reports nothing better.
    estimated_input_tokens: int = 0
    #: Whether the client asked for a stream.
    stream: bool = True

    def client_tool_name(self, upstream_name: str) -> str:
        return self.tool_names.get(upstream_name, upstream_name)
