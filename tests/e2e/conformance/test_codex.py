"""The Codex CLI (npm ``@openai/codex``, pinned) on every way of serving (docs/clients.md).

Codex speaks only the Responses API. It is set up the way a user would: a ``config.toml`` in a
temporary ``CODEX_HOME`` with a custom model provider (``base_url`` = the gateway's ``/v1``,
``wire_api = "responses"``, the key read from an environment variable), with its retries off so
a broken stream fails the test instead of being asked again. Everything that would leave
127.0.0.1 (plugins, apps, analytics, feedback, telemetry, update checks) is off, and a trap proves
it: every proxy variable points at a listener that records what reaches it, and ``NO_PROXY``
exempts loopback only. Skipped when the CLI cannot be installed (``scripts/ensure-codex-cli``;
``CODEX_BIN`` overrides the path).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator._text import reasoning_text
from tests.e2e.conformance.conftest import ROOT, Gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: The environment variable the provider's ``env_key`` names: Codex sends its value as the bearer.
KEY_VARIABLE = "KIRO2API_API_KEY"
#: What Codex prints when the gateway says the conversation is over the model's window.
CONTEXT_TOO_LONG = "ran out of room in the model's context window"


@functools.cache
def codex_binary() -> str | None:
    explicit = os.environ.get("CODEX_BIN")
    if explicit:
        return explicit
    try:
        done = subprocess.run(
            [str(ROOT / "scripts" / "ensure-codex-cli")], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
    return path or None


def codex_config(base_url: str) -> str:
    """The ``config.toml`` of docs/clients.md, pointed at ``base_url`` (the gateway's ``/v1``)."""
    return f"""\
model = "claude-sonnet-4-5"
model_provider = "kiro2api"
model_context_window = 200000
check_for_update_on_startup = false

[model_providers.kiro2api]
name = "kiro2api"
base_url = "{base_url}"
env_key = "{KEY_VARIABLE}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"

[features]
plugins = false
remote_plugin = false
apps = false
"""


class ProxyTrap:
    """A listener every proxy variable points at: anything that reaches it tried to leave loopback."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        #: The first line of each request that reached the trap (``CONNECT github.com:443 ...``).
        self.attempts: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="codex-proxy-trap", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(nothing read)"
                self.attempts.append(first.decode(errors="replace"))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture(scope="module")
def proxy_trap() -> Iterator[ProxyTrap]:
    trap = ProxyTrap()
    yield trap
    trap.stop()


@dataclass
class CodexRun:
    """One ``codex exec --json`` run: its exit status and its JSONL events."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [e["item"] for e in self.events if e.get("type") == "item.completed" and e["item"].get("type") == kind]

    @property
    def answer(self) -> str:
        """The agent's last message."""
        messages = self.items("agent_message")
        return str(messages[-1]["text"]) if messages else ""

    @property
    def thread_id(self) -> str:
        return next(str(e["thread_id"]) for e in self.events if e.get("type") == "thread.started")

    def usage(self) -> dict[str, int]:
        usage: dict[str, int] = next(e["usage"] for e in self.events if e.get("type") == "turn.completed")
        return usage

    def summary(self) -> str:
        """What to print when an assertion fails."""
        return f"exit {self.returncode}\nevents: {json.dumps(self.events)[-3000:]}\nstderr: {self.stderr[-2000:]}"


@dataclass
class Codex:
    """The Codex CLI set up against one gateway: its own CODEX_HOME, HOME and working directory."""

    binary: str
    gateway: Gateway
    trap: ProxyTrap
    home: Path
    work: Path
    runs: list[CodexRun] = field(default_factory=list)

    def exec(self, *args: str) -> CodexRun:
        """``codex exec --json ... ARGS``: a prompt, or ``resume --last PROMPT``."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "CODEX_HOME": str(self.home / ".codex"),
            KEY_VARIABLE: self.gateway.token,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            env[name] = self.trap.url
        command = [self.binary, "exec", "--json", "--strict-config", "--skip-git-repo-check", *args]
        done = subprocess.run(
            command, cwd=self.work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, check=False
        )
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        run = CodexRun(returncode=done.returncode, events=events, stderr=done.stderr)
        self.runs.append(run)
        return run


@pytest.fixture
def codex(gateway: Gateway, proxy_trap: ProxyTrap, tmp_path: Path) -> Iterator[Codex]:
    binary = codex_binary()
    if binary is None:
        pytest.skip("Codex CLI not available (scripts/ensure-codex-cli failed)")
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(codex_config(f"{gateway.url}/v1"))
    before = len(proxy_trap.attempts)
    yield Codex(binary=binary, gateway=gateway, trap=proxy_trap, home=home, work=work)
    assert proxy_trap.attempts[before:] == [], "Codex tried to reach beyond 127.0.0.1"


def current_message(call: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = call["body"]["conversationState"]["currentMessage"]["userInputMessage"]
    return message


def test_codex_exec_answers_a_prompt(codex: Codex, marker: str) -> None:
    run = codex.exec(f"Say hello {marker}")
    assert run.returncode == 0, run.summary()
    # The simulated model quotes the prompt: the answer Codex shows came through the gateway.
    assert marker in run.answer and "kiro2api upstream simulator" in run.answer, run.summary()
    calls = codex.gateway.generate_calls(marker)
    assert len(calls) == 1 and calls[0]["outcome"] == "complete"
    assert calls[0]["sent"]["text"] in run.answer
    # Codex's shell tool went to Kiro among the tools it offers.
    tools = [t["toolSpecification"]["name"] for t in current_message(calls[0])["userInputMessageContext"]["tools"]]
    assert "exec_command" in tools
    usage = run.usage()
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0


def test_a_shell_round_trip(codex: Codex, marker: str) -> None:
    run = codex.exec(f"Use the exec_command tool to run `echo {marker}-ran`")
    assert run.returncode == 0, run.summary()
    calls = codex.gateway.generate_calls(marker)
    assert [c["outcome"] for c in calls] == ["complete", "complete"]
    (tool_call,) = calls[0]["sent"]["toolCalls"]
    assert tool_call["name"] == "exec_command" and tool_call["input"] == {"cmd": f"echo {marker}-ran"}
    # Codex ran it...
    (executed,) = run.items("command_execution")
    assert f"echo {marker}-ran" in executed["command"], run.summary()
    assert executed["exit_code"] == 0 and executed["aggregated_output"].strip() == f"{marker}-ran"
    # ...sent its output back as the result of that call...
    (tool_result,) = current_message(calls[1])["userInputMessageContext"]["toolResults"]
    assert tool_result["toolUseId"] == tool_call["toolUseId"] and tool_result["status"] == "success"
    assert f"{marker}-ran" in json.dumps(tool_result["content"])
    # ...and the final answer quotes it.
    assert f"{marker}-ran" in run.answer and "That completes the tool round trip." in run.answer, run.summary()


def test_a_two_turn_session(codex: Codex, marker: str) -> None:
    first = codex.exec(f"Remember the word {marker}-one")
    assert first.returncode == 0, first.summary()
    second = codex.exec("resume", "--last", f"Now say {marker}-two")
    assert second.returncode == 0, second.summary()
    assert second.thread_id == first.thread_id
    assert f"{marker}-two" in second.answer and f"{marker}-one" not in second.answer, second.summary()
    calls = codex.gateway.generate_calls(marker)
    assert [c["outcome"] for c in calls] == ["complete", "complete"]
    # The second turn carries the first: its prompt and the answer Codex got, in Kiro's history.
    history = json.dumps(calls[1]["body"]["conversationState"]["history"])
    assert f"{marker}-one" in history and json.dumps(first.answer)[1:-1] in history
    assert f"{marker}-two" in current_message(calls[1])["content"]


def test_a_planned_session_of_shell_calls(codex: Codex, marker: str) -> None:
    # One exec_command per model turn, three turns, then the text answer: four requests in one run.
    run = codex.exec(f"[[sim:plan:exec_command:exec_command:exec_command]] run `echo {marker}-step`")
    assert run.returncode == 0, run.summary()
    executed = run.items("command_execution")
    assert [e["exit_code"] for e in executed] == [0, 0, 0], run.summary()
    assert all(e["aggregated_output"].strip() == f"{marker}-step" for e in executed)
    calls = codex.gateway.generate_calls(marker)
    assert len(calls) == 4 and all(c["outcome"] == "complete" for c in calls)
    assert [len(c["sent"]["toolCalls"]) for c in calls] == [1, 1, 1, 0]
    assert f"{marker}-step" in run.answer


def test_reasoning_goes_round_trip_without_an_upstream_error(codex: Codex, marker: str) -> None:
    # With an effort, the request asks for thinking; Codex shows the reasoning and sends the
    # reasoning item back with the tool's output on the next request, which Kiro accepts.
    prompt = f"Use the exec_command tool to run `echo {marker}-thought`"
    run = codex.exec("-c", 'model_reasoning_effort="high"', "-c", 'model_reasoning_summary="detailed"', prompt)
    assert run.returncode == 0, run.summary()
    # The simulated model thinks about the prompt (Codex's environment block is not part of it):
    # Codex shows that thinking, before the call and before the answer.
    assert [r["text"] for r in run.items("reasoning")] == [reasoning_text(prompt)] * 2, run.summary()
    calls = codex.gateway.generate_calls(marker)
    assert [c["outcome"] for c in calls] == ["complete", "complete"]
    assert "<thinking_mode>" in json.dumps(calls[0]["body"])
    assert f"{marker}-thought" in run.answer


def test_a_conversation_over_the_window_is_the_error_codex_understands(codex: Codex, marker: str) -> None:
    # Kiro refuses the input as too long: Codex must recognise the context window error and say
    # so (it would offer to start afresh), not retry it or report an unexpected failure.
    run = codex.exec(f"[[sim:input-too-long]] Say hello {marker}")
    assert run.returncode != 0
    failed = [e for e in run.events if e.get("type") == "turn.failed"]
    assert failed and CONTEXT_TOO_LONG in failed[0]["error"]["message"], run.summary()
    assert len(codex.gateway.generate_calls(marker)) == 1


@pytest.mark.parametrize("scenario", ["exception-mid-stream", "drop"])
def test_a_stream_broken_after_it_started_fails_the_turn(codex: Codex, marker: str, scenario: str) -> None:
    # Kiro fails after some text went out: the stream ends with response.failed, never with
    # response.completed, so Codex keeps no half answer and reports the gateway's reason.
    run = codex.exec(f"[[sim:{scenario}]] Say hello {marker}")
    assert run.returncode != 0
    failed = [e for e in run.events if e.get("type") == "turn.failed"]
    assert failed and "Kiro" in failed[0]["error"]["message"], run.summary()
    assert run.items("agent_message") == []
    assert len(codex.gateway.generate_calls(marker)) == 1


def test_a_cut_off_shell_call_is_asked_again_and_runs(codex: Codex, marker: str) -> None:
    # Kiro cuts the first answer inside its exec_command call; the gateway asks once more and
    # Codex only ever sees the whole call, which it runs.
    run = codex.exec(f"[[sim:truncate:once]] Use the exec_command tool to run `echo {marker}-whole`")
    assert run.returncode == 0, run.summary()
    (executed,) = run.items("command_execution")
    assert executed["exit_code"] == 0 and executed["aggregated_output"].strip() == f"{marker}-whole"
    calls = codex.gateway.generate_calls(marker)
    assert [c["scenario"] for c in calls] == ["truncate", None, None]
    assert f"{marker}-whole" in run.answer


def test_a_call_of_a_namespaced_tool_reaches_its_handler(codex: Codex, marker: str) -> None:
    # Codex offers its sub-agent tools in the namespace multi_agent_v1; Kiro knows them by flat
    # names. The call must come back to Codex under its namespace: then close_agent's own handler
    # answers (it refuses the simulator's made-up agent id), not "unsupported call".
    run = codex.exec(f"Use the multi_agent_v1__close_agent tool {marker}")
    assert run.returncode == 0, run.summary()
    calls = codex.gateway.generate_calls(marker)
    assert len(calls) == 2
    (tool_call,) = calls[0]["sent"]["toolCalls"]
    assert tool_call["name"] == "multi_agent_v1__close_agent"
    (tool_result,) = current_message(calls[1])["userInputMessageContext"]["toolResults"]
    assert tool_result["toolUseId"] == tool_call["toolUseId"]
    assert "invalid agent id example" in json.dumps(tool_result["content"]), tool_result
    # Codex sent the call back as it got it; the gateway flattened it the same way again.
    (entry,) = [h for h in calls[1]["body"]["conversationState"]["history"] if h.get("assistantResponseMessage", {}).get("toolUses")]
    assert entry["assistantResponseMessage"]["toolUses"][0]["name"] == "multi_agent_v1__close_agent"
