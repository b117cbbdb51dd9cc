"""Web search through Kiro's MCP endpoint (docs/web-search.md): detection, the MCP call and its
answer, and ModelCall answering in Anthropic's server-tool shape, streamed and not.

The runtime's part is played by hand: pool decisions are answered from fresh account states,
upstream answers are scripted per send, the client output is collected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol import (
    AccountState,
    Answer,
    CallIds,
    CallSetup,
    ClientOutput,
    ConversionConfig,
    Dialect,
    Done,
    ErrorKind,
    LoadState,
    LocalProtocolError,
    ModelCall,
    Persist,
    PoolSettings,
    RemoteProtocolError,
    Retry,
    SendUpstream,
    StartStream,
    parse_accounts,
    parse_anthropic_request,
)
from kiro_protocol.call._web_search import WebSearchAnswer, search_summary
from kiro_protocol.pool._kiro_identity import ClientVersions, Endpoints, KiroOperation, request_head
from kiro_protocol.pool._mcp import (
    MAX_SEARCH_HITS,
    SearchHit,
    classify_mcp_failure,
    parse_web_search_answer,
    web_search_call_body,
    web_search_request_id,
)
from kiro_protocol.pool._upstream_errors import FailureClass
from kiro_protocol.requests._web_search import WEB_SEARCH_PROMPT, WebSearch, web_search_of
from kiro_protocol.responses._openai import openai_encoder
from tests.core import call_driver as driver
from tests.core.call_driver import FRESH, T0, Run
from tests.sse_checker import check_anthropic_message, check_anthropic_stream

ARN = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABCDEFGHIJ"
ACCOUNTS = parse_accounts(
    json.dumps([{"auth": "Social", "refreshToken": f"aor-{i}" + "x" * 40, "profileArn": ARN} for i in range(2)])
)
CAPTURE = Path("/work/shared/spec/clients/claude-code-2.1.330-websearch-request.json")
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
BASH_TOOL = {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {}}}


def search_body(query: str = "kiro gateway release notes", *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are an assistant for performing a web search tool use"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": WEB_SEARCH_PROMPT + query}]}],
        "tools": [WEB_SEARCH_TOOL],
        "tool_choice": {"type": "tool", "name": "web_search"},
    }
    body.update(extra)
    return body


def mcp_answer(results: list[Any], **result_extra: Any) -> bytes:
    text = json.dumps({"results": results})
    result = {"content": [{"type": "text", "text": text}], "isError": False, **result_extra}
    return json.dumps({"id": "web_search_tooluse_x", "jsonrpc": "2.0", "result": result}).encode()


HITS = [
    {"title": "Kiro 1.2 released", "url": "https://kiro.dev/changelog", "snippet": "What is new in Kiro 1.2.",
     "publishedDate": 1_746_000_000_000, "domain": "kiro.dev"},
    {"title": "Gateway notes", "url": "https://example.com/notes", "snippet": "Notes on the gateway."},
]  # fmt: skip
OK = mcp_answer(HITS)


def call_for(body: dict[str, Any], *, dialect: Dialect = Dialect.ANTHROPIC) -> ModelCall:
    return driver.call_for(body, accounts=ACCOUNTS, dialect=dialect)


def drive(call: ModelCall, upstream: list[driver.Scripted], *, ticks: tuple[float, ...] = ()) -> Run:
    """A string in ``upstream``: the connection broke after the first bytes of an answer."""
    return driver.drive(call, upstream, ticks=ticks, broken_prefix=OK[:20])


# -- detection ------------------------------------------------------------------------------------


def parsed(body: dict[str, Any]) -> WebSearch | None:
    return web_search_of(parse_anthropic_request(json.dumps(body).encode()))


def test_claude_codes_captured_search_request_is_a_web_search() -> None:
    body = json.loads(CAPTURE.read_text())["body"]
    assert parsed(body) == WebSearch(query="kiro gateway release notes", tool_type="web_search_20250305")


def test_a_lone_web_search_tool_is_a_search_without_tool_choice() -> None:
    body = search_body("  weather   in\nTokyo ")
    del body["tool_choice"]
    assert parsed(body) == WebSearch(query="weather in Tokyo", tool_type="web_search_20250305")


def test_text_without_claude_codes_prefix_is_searched_as_it_is() -> None:
    body = search_body(messages=[{"role": "user", "content": "latest python release"}])
    search = parsed(body)
    assert search is not None and search.query == "latest python release"


def test_the_last_user_message_holds_the_query() -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": WEB_SEARCH_PROMPT + "second question"},
    ]
    search = parsed(search_body(messages=messages))
    assert search is not None and search.query == "second question"


def test_a_trailing_assistant_message_is_skipped_for_the_query() -> None:
    messages = [{"role": "user", "content": "kiro"}, {"role": "assistant", "content": "Searching"}]
    search = parsed(search_body(messages=messages))
    assert search is not None and search.query == "kiro"
    with pytest.raises(LocalProtocolError) as caught:
        parsed(search_body(messages=[{"role": "assistant", "content": "no user here"}]))
    assert caught.value.status_hint == 400 and "needs a user message" in caught.value.message


def test_web_search_beside_ordinary_tools_is_an_ordinary_request() -> None:
    body = search_body(tools=[WEB_SEARCH_TOOL, BASH_TOOL])
    del body["tool_choice"]
    assert parsed(body) is None
    assert parsed(search_body(tools=[WEB_SEARCH_TOOL, BASH_TOOL], tool_choice={"type": "auto"})) is None


def test_web_search_forced_beside_ordinary_tools_is_a_search() -> None:
    search = parsed(search_body(tools=[BASH_TOOL, WEB_SEARCH_TOOL]))
    assert search is not None and search.query == "kiro gateway release notes"


def test_no_search_when_tools_are_refused_or_absent_or_custom() -> None:
    assert parsed(search_body(tool_choice={"type": "none"})) is None
    assert parsed(search_body(tools=[], tool_choice=None)) is None
    custom = {"name": "web_search", "description": "mine", "input_schema": {"type": "object"}}
    assert parsed(search_body(tools=[custom], tool_choice={"type": "tool", "name": "web_search"})) is None
    fetch = {"type": "web_fetch_20250910", "name": "web_fetch"}
    assert parsed(search_body(tools=[fetch], tool_choice=None)) is None


def test_a_search_without_query_text_is_a_400() -> None:
    with pytest.raises(LocalProtocolError) as caught:
        parsed(search_body(messages=[{"role": "user", "content": WEB_SEARCH_PROMPT.strip()}]))
    assert caught.value.status_hint == 400 and "needs a query" in caught.value.message
    with pytest.raises(LocalProtocolError) as caught:
        call_for(search_body(messages=[{"role": "user", "content": "   "}]))
    assert caught.value.status_hint == 400


# -- the MCP call ---------------------------------------------------------------------------------


def test_the_json_rpc_call_and_its_id() -> None:
    request_id = web_search_request_id("0123456789abcdef0123456789abcdef", 1_750_000_000_123)
    assert re.fullmatch(r"web_search_tooluse_[A-Za-z0-9]{22}_1750000000123_[a-z0-9]{8}", request_id)
    call = json.loads(web_search_call_body("kiro «news»", request_id))
    assert call == {
        "id": request_id,
        "jsonrpc": "2.0",
        "method": "tools/call",
        "params": {"name": "web_search", "arguments": {"query": "kiro «news»"}},
    }


def test_mcp_request_head_goes_to_the_profiles_region_with_the_mcp_headers() -> None:
    account = ACCOUNTS[0]
    url, headers = request_head(
        KiroOperation.WEB_SEARCH,
        account=account,
        access_token="at-secret",
        profile_arn=ARN,
        endpoints=Endpoints(),
        versions=ClientVersions(),
        invocation_id="inv-1",
    )
    assert url == "https://q.eu-central-1.amazonaws.com/mcp"
    names = {name.lower(): value for name, value in headers}
    assert names["x-amzn-kiro-profile-arn"] == ARN
    assert names["authorization"] == "Bearer at-secret"
    assert names["host"] == "q.eu-central-1.amazonaws.com"
    assert "x-amzn-codewhisperer-optout" not in names and "x-amzn-kiro-agent-mode" not in names
    generate_url, generate = request_head(
        KiroOperation.GENERATE,
        account=account,
        access_token="at-secret",
        profile_arn=ARN,
        endpoints=Endpoints(),
        versions=ClientVersions(),
        invocation_id="inv-1",
    )
    assert generate_url.endswith("/generateAssistantResponse")
    assert "x-amzn-kiro-profile-arn" not in {n for n, _ in generate}
    _, without_arn = request_head(
        KiroOperation.WEB_SEARCH,
        account=account,
        access_token="t",
        profile_arn=None,
        endpoints=Endpoints(),
        versions=ClientVersions(),
        invocation_id="i",
    )
    assert "x-amzn-kiro-profile-arn" not in {n for n, _ in without_arn}


# -- the MCP answer -------------------------------------------------------------------------------


def test_hits_of_an_answer() -> None:
    hits = parse_web_search_answer(OK)
    assert hits == (
        SearchHit(
            title="Kiro 1.2 released",
            url="https://kiro.dev/changelog",
            snippet="What is new in Kiro 1.2.",
            page_age="April 30, 2025",
        ),
        SearchHit(title="Gateway notes", url="https://example.com/notes", snippet="Notes on the gateway."),
    )


def test_hits_without_url_are_left_out_and_the_count_is_bounded() -> None:
    items: list[Any] = [{"title": "no url"}, "not an object", {"url": "https://a.example/", "publishedDate": "2 days ago"}]
    items += [{"url": "https://c.example/", "publishedDate": flag} for flag in (True, -5, float("inf"), "  ")]
    items += [{"url": f"https://b.example/{i}"} for i in range(50)]
    hits = parse_web_search_answer(mcp_answer(items))
    assert len(hits) == MAX_SEARCH_HITS
    assert hits[0] == SearchHit(title="https://a.example/", url="https://a.example/", snippet="", page_age="2 days ago")
    assert all(hit.page_age is None for hit in hits[1:5])


def test_an_answer_with_no_results_is_an_empty_search_not_a_failure() -> None:
    assert parse_web_search_answer(mcp_answer([])) == ()
    empty = {"result": {"content": [{"type": "text", "text": "{}"}]}}
    assert parse_web_search_answer(json.dumps(empty).encode()) == ()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"<html>Gateway Timeout</html>", "Kiro's MCP answer is not JSON"),
        (b"[1, 2]", "not a JSON-RPC object"),
        (b'{"jsonrpc":"2.0","error":{"code":-32602,"message":"bad query"}}', "answered error -32602: bad query"),
        (b'{"jsonrpc":"2.0","error":"boom"}', "answered an error"),
        (b'{"jsonrpc":"2.0","id":1}', "has no result"),
        (b'{"result":{"content":[]}}', "no text content"),
        (b'{"result":{"content":[{"type":"text","text":"rate limited"}],"isError":true}}', "reported an error: rate limited"),
        (b'{"result":{"content":[{"type":"text","text":"not json"}]}}', "the search result text is not JSON"),
        (b'{"result":{"content":[{"type":"text","text":"[]"}]}}', "is not a JSON object"),
        (b'{"result":{"content":[{"type":"text","text":"{\\"error\\":\\"quota\\"}"}]}}', "search reported: quota"),
        (b'{"result":{"content":[{"type":"text","text":"{\\"results\\":{}}"}]}}', "not a list"),
    ],
)
def test_an_unusable_answer_is_a_failed_search(body: bytes, says: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_web_search_answer(body)
    assert caught.value.status_hint == 502 and caught.value.kind is ErrorKind.API
    assert caught.value.message.startswith("web search failed: ") and says in caught.value.message


def test_mcp_http_failures_the_accounts_and_the_searchs() -> None:
    assert classify_mcp_failure(403, b'{"message":"The bearer token is invalid."}').failure_class is FailureClass.INVALID_TOKEN
    assert classify_mcp_failure(429, b'{"message":"Rate exceeded."}').failure_class is FailureClass.THROTTLED
    assert classify_mcp_failure(402, b'{"reason":"MONTHLY_REQUEST_COUNT"}').failure_class is FailureClass.QUOTA_EXHAUSTED
    for status in (400, 404, 500, 503):
        failure = classify_mcp_failure(status, b'{"message":"Search backend down"}')
        assert not failure.failure_class.retry_elsewhere
        error = failure.client_error
        assert error.status_hint == 502 and error.kind is ErrorKind.API
        assert error.message == f"web search failed: Kiro's MCP endpoint answered HTTP {status}: Search backend down"


# -- ModelCall ------------------------------------------------------------------------------------


def test_streamed_search_answers_in_anthropics_server_tool_shape() -> None:
    call = call_for(search_body())
    assert call.web_search is not None
    run = drive(call, [(200, OK)])
    (send,) = run.sends
    assert send.request.url == "https://q.eu-central-1.amazonaws.com/mcp"
    sent = json.loads(send.request.body)
    assert sent["method"] == "tools/call" and sent["params"]["arguments"] == {"query": "kiro gateway release notes"}
    assert re.fullmatch(r"web_search_tooluse_\w{22}_1750000000000_[a-z0-9]{8}", sent["id"])
    assert run.outputs[0].head is not None and run.outputs[0].head[0] == 200 and run.outputs[-1].end
    transcript = check_anthropic_stream(run.body)
    assert transcript.success
    assert transcript.types[:3] == ["message_start", "ping", "content_block_start"]
    use, result, text = transcript.content
    assert use["type"] == "server_tool_use" and use["name"] == "web_search"
    assert re.fullmatch(r"srvtoolu_[0-9a-f]{32}", use["id"]) and use["input"] == {"query": "kiro gateway release notes"}
    assert result == {
        "type": "web_search_tool_result",
        "tool_use_id": use["id"],
        "content": [
            {"type": "web_search_result", "title": "Kiro 1.2 released", "url": "https://kiro.dev/changelog",
             "encrypted_content": "What is new in Kiro 1.2.", "page_age": "April 30, 2025"},
            {"type": "web_search_result", "title": "Gateway notes", "url": "https://example.com/notes",
             "encrypted_content": "Notes on the gateway.", "page_age": None},
        ],
    }  # fmt: skip
    assert text["type"] == "text" and "[Kiro 1.2 released](https://kiro.dev/changelog)" in text["text"]
    assert transcript.stop_reason == "end_turn"
    usage = transcript.message["usage"]
    assert usage["server_tool_use"]["web_search_requests"] == 1 and usage["output_tokens"] > 0
    assert call.usage.web_search_requests == 1 and call.error is None
    assert any(("requests", 1) in p.counters for p in run.persists)


def test_non_streamed_search_has_the_same_blocks() -> None:
    run = drive(call_for(search_body(stream=False)), [(200, OK)])
    assert run.answer is not None and run.answer.reply.status == 200 and not run.outputs
    message = check_anthropic_message(run.answer.reply.body)
    assert [b["type"] for b in message["content"]] == ["server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][0]["input"] == {"query": "kiro gateway release notes"}
    assert message["content"][1]["tool_use_id"] == message["content"][0]["id"]
    assert len(message["content"][1]["content"]) == 2
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}


def test_streamed_and_non_streamed_searches_agree() -> None:
    streamed = check_anthropic_stream(drive(call_for(search_body()), [(200, OK)]).body).message
    answer = drive(call_for(search_body(stream=False)), [(200, OK)]).answer
    assert answer is not None
    whole = json.loads(answer.reply.body)
    assert streamed["content"] == whole["content"] and streamed["usage"] == whole["usage"]


@pytest.mark.parametrize("stream", [True, False])
def test_a_json_rpc_error_is_a_502_at_once(stream: bool) -> None:
    failed = b'{"id":"x","jsonrpc":"2.0","error":{"code":-32603,"message":"search unavailable"}}'
    run = drive(call_for(search_body(stream=stream)), [(200, failed)])
    assert len(run.sends) == 1 and not run.retries and not run.outputs
    assert run.answer is not None and run.answer.reply.status == 502
    assert run.error() == {
        "type": "api_error",
        "message": "web search failed: Kiro's MCP endpoint answered error -32603: search unavailable",
    }


def test_an_http_500_of_mcp_is_a_502_without_retry() -> None:
    run = drive(call_for(search_body()), [(500, b'{"message":"Internal failure"}')])
    assert len(run.sends) == 1 and not run.retries
    assert run.answer is not None and run.answer.reply.status == 502
    assert run.error()["message"] == "web search failed: Kiro's MCP endpoint answered HTTP 500: Internal failure"


def test_a_throttled_account_hands_the_search_to_the_next() -> None:
    run = drive(call_for(search_body()), [(429, b'{"message":"Rate exceeded."}'), (200, OK)])
    assert [s.account.account_id for s in run.sends] == [ACCOUNTS[0].account_id, ACCOUNTS[1].account_id]
    assert all(s.request.url.endswith("/mcp") for s in run.sends)
    assert len(run.retries) == 1 and check_anthropic_stream(run.body).success


def test_a_search_whose_connection_broke_moves_to_the_next_account() -> None:
    run = drive(call_for(search_body()), ["reset by peer", (200, OK)])
    assert len(run.sends) == 2 and len(run.retries) == 1
    assert check_anthropic_stream(run.body).success


def test_a_search_whose_connection_broke_on_every_account_says_so() -> None:
    run = drive(call_for(search_body(stream=False)), ["reset by peer", "reset by peer"])
    assert run.answer is not None and run.answer.reply.status >= 500
    assert "web search failed: the connection to Kiro was lost" in run.error()["message"]


def test_an_answer_committed_by_the_ping_timer_ends_a_failed_search_with_an_error_event() -> None:
    failed = b'{"jsonrpc":"2.0","error":{"code":-1,"message":"gone"}}'
    run = drive(call_for(search_body()), [(200, failed)], ticks=(10.0, 16.0))
    assert run.outputs[0].head is not None  # committed by the timer: message_start and pings went out
    transcript = check_anthropic_stream(run.body)
    assert not transcript.success and "ping" in transcript.types
    assert b"web search failed: Kiro's MCP endpoint answered error -1: gone" in run.body
    assert run.outputs[-1].end


def test_an_oversized_mcp_answer_is_a_failed_search() -> None:
    huge = b'{"result":{"content":[{"type":"text","text":"' + b"x" * (4 * 1024 * 1024 + 1) + b'"}]}}'
    run = drive(call_for(search_body(stream=False)), [(200, huge)])
    assert run.answer is not None and run.answer.reply.status == 502
    assert "larger than" in run.error()["message"]


def test_shutdown_during_a_search_is_a_529_before_commit() -> None:
    call = call_for(search_body())
    while not isinstance(decision := call.next_decision(T0), SendUpstream):
        if isinstance(decision, LoadState):
            call.state_loaded({a: FRESH for a in decision.account_ids}, T0)
    call.upstream_started(T0, 0.0)
    while not isinstance(call.next_decision(T0), StartStream):
        pass
    call.shutdown(1.0)
    answer = call.next_decision(T0)
    assert isinstance(answer, Answer) and answer.reply.status == 529


def test_web_search_beside_ordinary_tools_goes_to_the_model() -> None:
    body = search_body(tools=[WEB_SEARCH_TOOL, BASH_TOOL], tool_choice={"type": "auto"})
    call = call_for(body)
    assert call.web_search is None and call.kiro.server_tools == ("web_search_20250305",)
    while not isinstance(decision := call.next_decision(T0), SendUpstream):
        if isinstance(decision, LoadState):
            call.state_loaded({a: FRESH for a in decision.account_ids}, T0)
    assert decision.request.url.endswith("/generateAssistantResponse")
    sent = json.loads(decision.request.body)
    tools = sent["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert [t["toolSpecification"]["name"] for t in tools] == ["Bash"]


# -- the answer alone -----------------------------------------------------------------------------


def test_the_openai_dialect_gets_the_results_as_text() -> None:
    request = parse_anthropic_request(json.dumps(search_body(stream=False)).encode())
    plan = call_for(search_body(stream=False)).kiro.response_plan
    encoder = openai_encoder(plan, completion_id="chatcmpl-" + "b" * 24, created=1)
    answer = WebSearchAnswer(
        plan, query="q", tool_use_id="srvtoolu_" + "0" * 32, message_id="msg_" + "a" * 24,
        encoder=encoder, server_blocks=False, now=0.0, ping_interval=15.0,
    )  # fmt: skip
    answer.receive_data(OK)
    answer.receive_data(b"")
    reply = answer.final_response()
    assert request.tools and reply is not None and reply.status == 200
    completion = json.loads(reply.body)
    message = completion["choices"][0]["message"]
    assert "tool_calls" not in message and "https://kiro.dev/changelog" in message["content"]
    assert completion["choices"][0]["finish_reason"] == "stop"


def test_the_summary() -> None:
    assert search_summary("nothing", ()) == 'The web search for "nothing" found no results.'
    long = SearchHit(title="T", url="https://t.example/", snippet="s" * 400, page_age="May 1, 2025")
    text = search_summary("q", (long,))
    assert text.startswith('Web search results for "q":') and "1. [T](https://t.example/) (May 1, 2025)" in text
    assert "s" * 299 + "…" in text and "s" * 300 not in text


def test_the_answer_refuses_a_continuation_and_ignores_data_after_its_end() -> None:
    plan = call_for(search_body()).kiro.response_plan
    from kiro_protocol.responses import AnthropicStreamEncoder

    answer = WebSearchAnswer(
        plan, query="q", tool_use_id="srvtoolu_" + "0" * 32, message_id="msg_" + "a" * 24,
        encoder=AnthropicStreamEncoder(), server_blocks=True, now=0.0, ping_interval=15.0,
    )  # fmt: skip
    assert answer.awaiting_continuation is None and answer.credits is None
    with pytest.raises(LocalProtocolError):
        answer.continue_answer()
    answer.receive_data(OK)
    answer.receive_data(b"")
    assert answer.finished and not answer.failed and len(answer.hits) == 2
    answer.receive_data(b"more")
    answer.connection_lost("late")
    answer.fail(ErrorKind.OVERLOADED, "late")
    answer.tick(100.0)  # nothing is due after the end
    assert not answer.failed and answer.final_response() is None  # streamed: no final body
    assert "WebSearchAnswer" in repr(answer)


# -- the client's domain filters ---------------------------------------------------------------


def search_with(**filters: list[str]) -> dict[str, Any]:
    body = search_body(stream=False)
    body["tools"] = [{**body["tools"][0], **filters}]
    return body


def result_urls(body: dict[str, Any]) -> list[str]:
    answer = drive(call_for(body), [(200, OK)]).answer
    assert answer is not None and answer.reply.status == 200
    (_, results, _) = json.loads(answer.reply.body)["content"]
    return [r["url"] for r in results["content"]]


def test_allowed_domains_keep_only_their_results_subdomains_included() -> None:
    assert result_urls(search_with(allowed_domains=["kiro.dev"])) == ["https://kiro.dev/changelog"]
    assert result_urls(search_with(allowed_domains=["dev"])) == ["https://kiro.dev/changelog"]
    assert result_urls(search_with(allowed_domains=["EXAMPLE.com/notes"])) == ["https://example.com/notes"]
    assert result_urls(search_with(allowed_domains=["example.com/blog"])) == []
    assert result_urls(search_with(allowed_domains=["ample.com"])) == [], "a suffix of a label is no subdomain"


def test_blocked_domains_drop_their_results() -> None:
    assert result_urls(search_with(blocked_domains=["example.com"])) == ["https://kiro.dev/changelog"]
    assert len(result_urls(search_with(blocked_domains=["other.org"]))) == 2


def test_both_filters_at_once_are_a_400() -> None:
    with pytest.raises(LocalProtocolError) as info:
        parsed(search_with(allowed_domains=["a.com"], blocked_domains=["b.com"]))
    assert info.value.status_hint == 400 and "cannot both be set" in info.value.message


@pytest.mark.parametrize("value", ["kiro.dev", [1], [""], {"a": 1}])
def test_a_malformed_domain_list_is_a_400(value: object) -> None:
    body = search_body()
    body["tools"] = [{**body["tools"][0], "allowed_domains": value}]
    with pytest.raises(LocalProtocolError) as info:
        parsed(body)
    assert "allowed_domains" in info.value.message
