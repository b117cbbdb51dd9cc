"""Fuzz targets for the upstream simulator: its script, its schema reader and its HTTP handler.

The simulator reads JSON from the network (request bodies, tool schemas inside them, refresh
bodies); whatever arrives, it must answer like Kiro (a JSON error or a valid EventStream) and
never crash. Invariants in fuzz/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from hypothesis import given
from hypothesis import strategies as st

from adapters.anyio_server import Request
from adapters.simulator._app import SimulatorApp
from adapters.simulator._arguments import example_arguments
from adapters.simulator._script import Ending, ErrorReply, StreamReply, answer
from adapters.simulator._state import SimulatorConfig, SimulatorState
from kiro_protocol.responses._upstream_parse import encode_upstream_event, parse_all

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
schema_keys = st.sampled_from(
    ["type", "properties", "required", "items", "enum", "const", "default", "anyOf", "oneOf", "minimum",
     "maximum", "minLength", "maxLength", "minItems", "format", "command", "path"]
)
schemas = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(schema_keys | st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)
markers = st.sampled_from(
    ["", "[[sim:throttle]]", "[[sim:drop]]", "[[sim:bad-crc]]", "[[sim:truncate]]", "[[sim:tools:3]]",
     "[[sim:exception-mid-stream]]", "[[sim:error-frame]]", "[[sim:unicode]]", "[[sim:long:5]]",
     "[[sim:thinking]]", "[[sim:tool:t0]]", "use the t1 tool", "[[sim:server-error:once]]", "[[sim:x:y]]",
     "[[sim:reasoning]] [[sim:token-usage]]", "[[sim:context-full]] [[sim:stall:5]]", "[[sim:reasoning]] [[sim:drop]]"]
)


@st.composite
def plausible_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies shaped like Kiro's, with arbitrary values where the script looks."""
    tools = [
        {"toolSpecification": {"name": f"t{i}", "description": "d", "inputSchema": {"json": draw(schemas)}}}
        for i in range(draw(st.integers(0, 3)))
    ]
    context: dict[str, Any] = {}
    if tools:
        context["tools"] = tools
    if draw(st.booleans()):
        context["toolResults"] = draw(st.lists(st.dictionaries(st.sampled_from(["toolUseId", "status", "content"]), json_values), max_size=3))
    history = draw(st.lists(st.dictionaries(st.sampled_from(["userInputMessage", "assistantResponseMessage"]), json_values, max_size=1), max_size=3))
    # Lone surrogates too: JSON allows "\ud800" and a Python str can hold it.
    content = draw(st.text(st.characters(exclude_categories=[]), max_size=40)) + draw(markers)
    return {
        "conversationState": {
            "history": history,
            "currentMessage": {
                "userInputMessage": {
                    "content": content,
                    "modelId": draw(st.sampled_from(["claude-sonnet-4.5", "claude-opus-4.6", "x"])),
                    "userInputMessageContext": context,
                }
            },
        }
    }


def _check_reply(reply: ErrorReply | StreamReply) -> None:
    if isinstance(reply, ErrorReply):
        assert 400 <= reply.failure.status <= 599
        assert isinstance(json.loads(reply.failure.body)["message"], str)
        return
    assert reply.chunks
    if reply.scenario in ("bad-crc", "drop"):
        prefix = b"".join(encode_upstream_event(e) for e in reply.events)
        assert b"".join(reply.chunks).startswith(prefix)
        assert (reply.ending is Ending.DROP) == (reply.scenario == "drop")
        return
    assert tuple(parse_all(b"".join(reply.chunks))) == reply.events


@given(st.one_of(plausible_bodies(), st.dictionaries(st.text(max_size=20), json_values, max_size=4)), st.integers(0, 2**31))
def test_any_body_gets_a_kiro_error_or_a_valid_stream(body: dict[str, Any], seed: int) -> None:
    _check_reply(answer(body, seed=seed))
    _check_reply(answer(body, seed=seed, failures=False))


@given(schemas, st.text(max_size=50), st.integers(0, 5))
def test_any_schema_gives_serialisable_arguments_with_the_required_keys(schema: object, prompt: str, index: int) -> None:
    arguments = example_arguments(schema, prompt=prompt, index=index)
    json.dumps(arguments)
    if isinstance(schema, dict) and isinstance(schema.get("required"), list):
        assert set(arguments) == {r for r in schema["required"] if isinstance(r, str)}
    else:
        assert arguments == {}


class _Recorder:
    def __init__(self) -> None:
        self.starts: list[int] = []
        self.chunks: list[bytes] = []
        self.ended = False

    async def send_response(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.starts.append(status)
        json.loads(body)

    async def start_stream(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"", *, end: bool = False
    ) -> None:
        self.starts.append(status)
        if body:
            self.chunks.append(body)
        self.ended = end

    async def send_chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    async def end_stream(self, data: bytes = b"") -> None:
        if data:
            self.chunks.append(data)
        self.ended = True


_PATHS = ["/generateAssistantResponse", "/refreshToken", "/token", "/getUsageLimits?x=1", "/ListAvailableModels", "/mcp",
          "/_sim/requests", "/_sim/reset", "/_sim/revoke", "/_sim/expire-tokens", "/", "/nope"]


@given(
    st.sampled_from(["GET", "POST", "PUT"]),
    st.sampled_from(_PATHS),
    st.lists(st.tuples(st.sampled_from(["authorization", "content-type", "x"]), st.text(max_size=30)), max_size=3),
    st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()), plausible_bodies().map(lambda b: json.dumps(b).encode())),
    st.booleans(),
)
def test_the_handler_answers_every_request_exactly_once(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes, authorised: bool
) -> None:
    state = SimulatorState(SimulatorConfig(pace_ms=0))
    app = SimulatorApp(state)
    recorder = _Recorder()

    async def run() -> None:
        extra = []
        if authorised:
            access, _, _ = state.issue("aorAAAAAG-fuzz-refresh-token", flow="social")
            extra.append(("authorization", f"Bearer {access}"))
        request = Request(method=method, target=path, headers=tuple(extra + headers), body=body)
        await app.serve(request, recorder)

    anyio.run(run)
    assert len(recorder.starts) == 1
    if recorder.chunks:
        assert recorder.starts == [200]
