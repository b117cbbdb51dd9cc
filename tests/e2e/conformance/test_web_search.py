"""Web search through Kiro's MCP endpoint, end to end on every way of serving (docs/web-search.md).

The ``anthropic`` SDK sends Claude Code's web-search request (one ``web_search_20250305`` server
tool, forced) and reads Anthropic's server-tool shape back; the Claude Code CLI runs its
``WebSearch`` tool when the simulator's model asks for it, and the results reach its main loop
as the tool result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.e2e.conformance.conftest import Gateway, request
from tests.e2e.conformance.test_claude_code import run_claude
from tests.sse_checker import check_anthropic_message, check_anthropic_stream

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"
PROMPT = "Perform a web search for the query: "
WEB_SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
FORCED: Any = {"type": "tool", "name": "web_search"}


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token, max_retries=0, timeout=60)


def search_messages(query: str) -> list[Any]:
    return [{"role": "user", "content": [{"type": "text", "text": PROMPT + query}]}]


def mcp_calls(gateway: Gateway, marker: str) -> list[dict[str, Any]]:
    """The simulator's records of MCP calls whose query mentions ``marker``."""
    return [r for r in gateway.sim_requests() if r.get("endpoint") == "mcp" and marker in str(r.get("query"))]


def _check_blocks(content: list[dict[str, Any]], query: str, marker: str) -> None:
    use, result, text = content
    assert use["type"] == "server_tool_use" and use["name"] == "web_search" and use["id"].startswith("srvtoolu_")
    assert use["input"] == {"query": query}
    assert result["type"] == "web_search_tool_result" and result["tool_use_id"] == use["id"]
    hits = result["content"]
    assert len(hits) == 3 and all(h["type"] == "web_search_result" for h in hits)
    assert hits[0]["url"] == f"https://example.com/search/{marker}-news/1"
    assert marker in hits[0]["title"] and marker in hits[0]["encrypted_content"]
    assert isinstance(hits[0]["page_age"], str)
    assert text["type"] == "text" and hits[0]["url"] in text["text"]


def test_search_without_streaming(gateway: Gateway, marker: str) -> None:
    query = f"{marker} news"
    message = client(gateway).messages.create(
        model=MODEL, max_tokens=32000, messages=search_messages(query), tools=[WEB_SEARCH], tool_choice=FORCED
    )
    payload = message.model_dump(mode="json")
    check_anthropic_message(json.dumps(payload).encode())
    _check_blocks(payload["content"], query, marker)
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    (call,) = mcp_calls(gateway, marker)
    assert call["status"] == 200 and call["body"]["params"]["arguments"]["query"] == query
    assert call["profileArn"] and call["profileArn"].startswith("arn:aws:codewhisperer:")
    assert gateway.generate_calls(marker) == []  # searched, not asked of the model


def test_search_streaming(gateway: Gateway, marker: str) -> None:
    query = f"{marker} news"
    with client(gateway).messages.stream(
        model=MODEL, max_tokens=32000, messages=search_messages(query), tools=[WEB_SEARCH], tool_choice=FORCED
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    _check_blocks(message.model_dump(mode="json")["content"], query, marker)
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    assert len(mcp_calls(gateway, marker)) == 1


def test_streamed_bytes_follow_the_grammar(gateway: Gateway, marker: str) -> None:
    body = {
        "model": MODEL, "max_tokens": 32000, "stream": True, "messages": search_messages(f"{marker} news"),
        "tools": [WEB_SEARCH], "tool_choice": FORCED,
    }  # fmt: skip
    headers = {"x-api-key": gateway.token, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    status, head, data = request(gateway.port, "POST", "/v1/messages", json.dumps(body).encode(), headers)
    assert status == 200 and head["content-type"].startswith("text/event-stream")
    transcript = check_anthropic_stream(data)
    assert transcript.success and [b["type"] for b in transcript.content] == [
        "server_tool_use", "web_search_tool_result", "text",
    ]  # fmt: skip
    assert transcript.message["usage"]["server_tool_use"]["web_search_requests"] == 1


@pytest.mark.parametrize("kind", ["", ":garbage", ":tool"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_search_is_a_502(gateway: Gateway, marker: str, kind: str, stream: bool) -> None:
    query = f"{marker} [[sim:search-error{kind}]]"
    with pytest.raises(anthropic.APIStatusError) as caught:
        if stream:
            with client(gateway).messages.stream(
                model=MODEL, max_tokens=1000, messages=search_messages(query), tools=[WEB_SEARCH], tool_choice=FORCED
            ) as events:
                events.get_final_message()
        else:
            client(gateway).messages.create(
                model=MODEL, max_tokens=1000, messages=search_messages(query), tools=[WEB_SEARCH], tool_choice=FORCED
            )
    assert caught.value.status_code == 502
    error = caught.value.body["error"] if isinstance(caught.value.body, dict) else {}
    assert error["type"] == "api_error" and error["message"].startswith("web search failed: ")
    assert len(mcp_calls(gateway, marker)) == 1  # the search's fault: not tried again


def test_web_search_beside_ordinary_tools_is_answered_by_the_model(gateway: Gateway, marker: str) -> None:
    bash: Any = {"name": "Bash", "description": "Run a command.", "input_schema": {"type": "object", "properties": {}}}
    message = client(gateway).messages.create(
        model=MODEL, max_tokens=1000, messages=[{"role": "user", "content": f"Say hello {marker}"}],
        tools=[WEB_SEARCH, bash],
    )  # fmt: skip
    assert [b.type for b in message.content] == ["text"] and message.stop_reason == "end_turn"
    assert mcp_calls(gateway, marker) == []
    (call,) = gateway.generate_calls(marker)
    tools = call["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert [t["toolSpecification"]["name"] for t in tools] == ["Bash"]


# -- the proof: Claude Code ---------------------------------------------------------------------


def test_claude_codes_web_search_reaches_its_main_loop(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    result = run_claude(gateway, tmp_path, f"{marker} news [[sim:tool:WebSearch]]", allowed="WebSearch")
    assert result["is_error"] is False, result
    first, *rest = gateway.generate_calls(marker)
    (asked,) = first["sent"]["toolCalls"]
    assert asked["name"] == "WebSearch" and marker in asked["input"]["query"]
    # Claude Code's own search request went to /mcp with the model's query.
    (search,) = mcp_calls(gateway, marker)
    assert search["status"] == 200 and search["query"] == asked["input"]["query"]
    # The next turn of the main loop carries the results as the WebSearch tool result.
    answered = [
        r for call in rest
        for r in call["body"]["conversationState"]["currentMessage"]["userInputMessage"]
        .get("userInputMessageContext", {}).get("toolResults", [])
        if r["toolUseId"] == asked["toolUseId"]
    ]  # fmt: skip
    assert len(answered) == 1 and answered[0]["status"] == "success", rest
    tool_result = json.dumps(answered[0]["content"])
    assert "https://example.com/search/" in tool_result and "result 1 (simulated)" in tool_result
    assert "Web search results for query" in tool_result
