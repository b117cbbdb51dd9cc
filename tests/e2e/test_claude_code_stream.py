"""The real Claude Code CLI reads the translator's stream: it runs a streamed tool call with the
right arguments, echoes thinking (with its signature) and the tool call back, and shows a
truncated tool call as an API error instead of running it.

A loopback HTTP server answers every ``POST /v1/messages`` with the translator's output for a
scripted upstream stream. Claude Code runs with the streaming fallback and retries disabled
(docs/clients.md: otherwise a broken stream is silently retried without streaming and the test
proves nothing) and with no traffic beyond 127.0.0.1. Skipped when the CLI is not installed
(``scripts/ensure-claude-code`` installs it; ``CLAUDE_CODE_BIN`` overrides the path).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kiro_protocol.requests._plan import ResponsePlan
from kiro_protocol.responses._translator import ResponseTranslator
from kiro_protocol.responses._upstream_events import AssistantResponse, ContextUsage, ToolUse, UpstreamEvent
from kiro_protocol.responses._upstream_parse import encode_upstream_event

pytestmark = pytest.mark.slow

TOOL_ID = "tooluse_AbCdEfGhIjKlMnOpQrStUv"


def _find_claude() -> Path | None:
    explicit = os.environ.get("CLAUDE_CODE_BIN")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("KIRO2API_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kiro2api"
    )
    found = sorted(Path(cache).glob("claude-code-*/node_modules/.bin/claude"))
    return found[-1] if found else None


CLAUDE = _find_claude()
Script = Callable[[int, dict[str, Any]], list[UpstreamEvent]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_HEAD(self) -> None:  # noqa: N802 - Claude Code probes the base URL first
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        n = len(self.server.requests)
        self.server.requests.append(body)
        thinking = body.get("thinking") or {}
        plan = ResponsePlan(
            client_model=body["model"],
            kiro_model_id="claude-sonnet-4.5",
            thinking=thinking.get("type") not in (None, "disabled"),
            stream=bool(body.get("stream")),
            max_tokens=body.get("max_tokens", 4096),
            estimated_input_tokens=100,
        )
        translator = ResponseTranslator(plan, message_id=f"msg_{n:024d}", now=0.0)
        upstream = b"".join(encode_upstream_event(e) for e in self.server.script(n, body))
        self.send_response(200)
        self.send_header("content-type", translator.media_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        write(translator.data_to_send())
        for i in range(0, len(upstream), 50):  # upstream frames cut at arbitrary places
            translator.receive_data(upstream[i : i + 50])
            write(translator.data_to_send())
        translator.receive_data(b"")
        write(translator.data_to_send())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]
    script: Script


@pytest.fixture
def serve() -> Iterator[Callable[[Script], _Server]]:
    servers: list[_Server] = []

    def start(script: Script) -> _Server:
        srv = _Server(("127.0.0.1", 0), _Handler)
        srv.requests, srv.script = [], script
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _run_claude(server: _Server, tmp_path: Path, prompt: str) -> dict[str, Any]:
    assert CLAUDE is not None
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    host, port = server.server_address[:2]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": f"http://{host!s}:{port}",
        "ANTHROPIC_API_KEY": "test-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    done = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--max-turns", "3", "--allowedTools", "Bash(echo:*)"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code CLI not installed (scripts/ensure-claude-code)")
def test_claude_code_runs_a_streamed_tool_call_and_echoes_thinking(
    serve: Callable[[Script], _Server], tmp_path: Path
) -> None:
    def script(n: int, body: dict[str, Any]) -> list[UpstreamEvent]:
        if n == 0:
            return [
                AssistantResponse(content="<thinking>\nThe user wants"),
                AssistantResponse(content=" a greeting.</thin"),
                AssistantResponse(content="king>\n\nI'll run echo."),
                ToolUse(tool_use_id=TOOL_ID, name="Bash", input="", stop=False),
                ToolUse(tool_use_id=TOOL_ID, name="Bash", input='{"command": "echo he', stop=False),
                ToolUse(tool_use_id=TOOL_ID, name="Bash", input='llo-from-tool", "description": "Say hi"}', stop=False),
                ToolUse(tool_use_id=TOOL_ID, name="Bash", input="", stop=True),
                ContextUsage(percentage=1.0),
            ]
        return [AssistantResponse(content="All done: "), AssistantResponse(content="the tool said hello.")]

    server = serve(script)
    result = _run_claude(server, tmp_path, "say hi using bash")
    assert result["is_error"] is False and result["result"] == "All done: the tool said hello."
    assert len(server.requests) == 2
    assistant, tool_result = server.requests[1]["messages"][-2:]
    thinking, text, tool_use = assistant["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "The user wants a greeting."
    assert thinking["signature"]
    assert text == {"type": "text", "text": "I'll run echo."}
    assert tool_use["id"] == TOOL_ID and tool_use["name"] == "Bash"
    assert tool_use["input"] == {"command": "echo hello-from-tool", "description": "Say hi"}
    (block,) = tool_result["content"]
    assert block["tool_use_id"] == TOOL_ID and block["is_error"] is False
    assert block["content"] == "hello-from-tool"


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code CLI not installed (scripts/ensure-claude-code)")
def test_claude_code_shows_a_truncated_tool_call_as_an_error_and_does_not_run_it(
    serve: Callable[[Script], _Server], tmp_path: Path
) -> None:
    def script(n: int, body: dict[str, Any]) -> list[UpstreamEvent]:
        return [
            AssistantResponse(content="Writing it."),
            ToolUse(tool_use_id=TOOL_ID, name="Bash", input='{"command": "echo trunc', stop=False),
        ]

    server = serve(script)
    result = _run_claude(server, tmp_path, "say hi using bash")
    assert result["is_error"] is True
    assert "Kiro cut off the tool call 'Bash'" in result["result"]
    assert len(server.requests) == 1  # no tool ran, so no tool_result came back
