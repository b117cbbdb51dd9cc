"""The Responses API's request side meets its answer side: the parsed request's echo fields become
the encoder's ``ResponseEcho``, and the call's ids the response id."""

from __future__ import annotations

from ..requests._plan import ResponsePlan
from ..requests._responses import ResponsesRequest
from ..responses._lifecycle_events import ResponseEncoder
from ..responses._responses_api import RESPONSE_ID_PREFIX, ResponseEcho, responses_encoder

__all__ = ["encoder_for_responses"]


def _echo(parsed: ResponsesRequest) -> ResponseEcho:
    reasoning = None
    if parsed.reasoning_effort is not None or parsed.reasoning_summary is not None:
        reasoning = {"effort": parsed.reasoning_effort, "summary": parsed.reasoning_summary}
    text: dict[str, object] = {"format": dict(parsed.text_format)}
    if parsed.text_verbosity is not None:
        text["verbosity"] = parsed.text_verbosity
    return ResponseEcho(
        instructions=parsed.instructions,
        tools=parsed.tools,
        tool_choice=parsed.tool_choice,
        parallel_tool_calls=parsed.parallel_tool_calls,
        metadata=parsed.metadata,
        reasoning=reasoning,
        text=text,
        max_output_tokens=parsed.max_output_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        store=False,
        prompt_cache_key=parsed.prompt_cache_key,
        namespaced_tools=parsed.namespaces,
    )


def encoder_for_responses(parsed: ResponsesRequest, plan: ResponsePlan, *, response_hex: str, created: int) -> ResponseEncoder:
    """The ``/v1/responses`` encoder of one answer (``resp_<hex>``, created at ``created``)."""
    return responses_encoder(
        plan, response_id=f"{RESPONSE_ID_PREFIX}{response_hex}", created_at=created, request_echo=_echo(parsed)
    )
