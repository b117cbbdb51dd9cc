"""Tool calls Kiro cuts off (issue 14 item 2), with the official SDK on every way of serving.

The simulator's ``[[sim:truncate]]`` cuts the first tool call of an answer the way Kiro does;
asked again with the gateway's note, it answers with a smaller call that arrives whole.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.e2e.conformance.conftest import Gateway
from tests.e2e.conformance.test_anthropic import BASH, MODEL, ask, client

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NOTE = "cut off in the middle of a tool call"


@pytest.mark.parametrize("stream", [True, False])
def test_a_cut_tool_call_is_asked_again_and_the_turn_works(gateway: Gateway, marker: str, stream: bool) -> None:
    api = client(gateway)
    prompt = f"[[sim:truncate]] (stream={stream}) Use the Bash tool to run `echo {marker}`"
    message: anthropic.types.Message
    if stream:
        with api.messages.stream(model=MODEL, max_tokens=500, messages=ask(prompt), tools=[BASH]) as s:
            message = s.get_final_message()
    else:
        message = api.messages.create(model=MODEL, max_tokens=500, messages=ask(prompt), tools=[BASH])
    assert message.stop_reason == "tool_use"
    calls = [b for b in message.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "Bash"
    assert calls[0].input == {"command": f"echo {marker}"}, "the whole call, never a cut one"
    upstream = [c for c in gateway.generate_calls(marker) if f"stream={stream}" in json.dumps(c["body"])]
    assert [c["scenario"] for c in upstream] == ["truncate", None]
    first, second = (json.dumps(c["body"]["conversationState"]["currentMessage"]) for c in upstream)
    assert NOTE not in first and NOTE in second, "asked again, with the instruction to make smaller calls"
    assert upstream[1]["sent"]["toolCalls"][0]["input"] == calls[0].input
    # The cut answer's text reached the client once: told so, the model went on from it.
    texts = [b.text for b in message.content if b.type == "text"]
    assert len(texts) == 1 and texts[0] in second, "the note quotes what the client already has"


def test_a_second_cut_ends_with_the_clear_error(gateway: Gateway, marker: str) -> None:
    api = client(gateway)
    prompt = f"[[sim:truncate:always]] Use the Bash tool to run `echo {marker}`"
    seen: list[Any] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        api.messages.create(model=MODEL, max_tokens=500, messages=ask(prompt), tools=[BASH])
    assert info.value.status_code == 502
    body: Any = info.value.body
    assert body["error"]["type"] == "api_error" and "Kiro cut off the tool call 'Bash'" in body["error"]["message"]
    with api.messages.stream(model=MODEL, max_tokens=500, messages=ask(prompt + " again"), tools=[BASH]) as s:
        try:
            for event in s:
                seen.append(event)
        except anthropic.APIStatusError as exc:  # the stream's error event
            assert "Kiro cut off the tool call 'Bash'" in str(exc)
        else:
            raise AssertionError("a stream whose answer was cut twice must end with its error event")
    assert not any(getattr(e, "type", "") == "content_block_start" and e.content_block.type == "tool_use" for e in seen)
    assert len(gateway.generate_calls(marker)) == 4, "two answers asked once more each, never more"
