"""The Claude Code CLI, headless and offline, on every way of serving (docs/clients.md).

The streaming fallback and retries are off, so a broken stream fails the test instead of being
silently retried without streaming. Skipped when the CLI cannot be installed
(``scripts/ensure-claude-code``; ``CLAUDE_CODE_BIN`` overrides the path).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conformance.conftest import ROOT, Gateway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@functools.cache
def claude_binary() -> str | None:
    explicit = os.environ.get("CLAUDE_CODE_BIN")
    if explicit:
        return explicit
    try:
        done = subprocess.run(
            [str(ROOT / "scripts" / "ensure-claude-code")], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
    return path or None


def run_claude(
    gateway: Gateway, tmp_path: Path, prompt: str, *, allowed: str = "Bash(echo:*)", max_turns: int = 4
) -> dict[str, Any]:
    binary = claude_binary()
    if binary is None:
        pytest.skip("Claude Code CLI not available (scripts/ensure-claude-code failed)")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir(exist_ok=True)  # a test may put files there first
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": gateway.token,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }
    done = subprocess.run(
        [binary, "-p", prompt, "--output-format", "json", "--max-turns", str(max_turns), "--allowedTools", allowed],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.stdout.strip(), f"claude printed nothing (exit {done.returncode}): {done.stderr[-2000:]!r}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_one_turn_answer(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    result = run_claude(gateway, tmp_path, f"Say hello {marker}")
    assert result["is_error"] is False, result
    assert result["result"].strip()
    calls = gateway.generate_calls(marker)
    assert len(calls) == 1 and calls[0]["outcome"] == "complete"


def test_tool_round_trip(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    result = run_claude(gateway, tmp_path, f"Use the Bash tool to run `echo {marker}-ran`")
    assert result["is_error"] is False, result
    calls = gateway.generate_calls(marker)
    assert len(calls) == 2
    tool_call = calls[0]["sent"]["toolCalls"][0]
    assert tool_call["name"] == "Bash" and tool_call["input"]["command"] == f"echo {marker}-ran"
    context = calls[1]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
    (tool_result,) = context["toolResults"]
    assert tool_result["toolUseId"] == tool_call["toolUseId"]
    assert f"{marker}-ran" in json.dumps(tool_result["content"])
    assert f"{marker}-ran" in result["result"]


def test_a_long_complete_answer_is_a_success_in_one_turn(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    # About 40,000 output tokens by the gateway's estimate, over Claude Code's max_tokens of 32,000:
    # complete all the same, so it ends with end_turn and Claude Code does not ask again.
    result = run_claude(gateway, tmp_path, f"Write a very long essay {marker} [[sim:long:10000]]")
    assert result["is_error"] is False, {k: v for k, v in result.items() if k != "result"}
    assert result["num_turns"] == 1
    assert result["result"].split()[-1] == "chunk-10000"
    calls = gateway.generate_calls(marker)
    assert len(calls) == 1 and calls[0]["outcome"] == "complete"
    assert result["usage"]["output_tokens"] > 32_000


def test_a_cut_off_write_is_recovered_into_a_working_turn(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    # Kiro cuts the first answer's Write (the simulator's [[sim:truncate:once]]); the gateway asks
    # once more with its note, the smaller call arrives whole, and Claude Code runs it.
    target = tmp_path / "work" / "notes.txt"
    result = run_claude(gateway, tmp_path, f"[[sim:truncate:once]] Use the Write tool to write {target} {marker}", allowed="Write")
    assert result["is_error"] is False, result
    assert target.read_text() == "Hello from the kiro2api simulator."
    calls = gateway.generate_calls(marker)
    assert [c["scenario"] for c in calls] == ["truncate", None, None]
    assert "cut off in the middle of a tool call" in json.dumps(calls[1]["body"]["conversationState"]["currentMessage"])
    context = calls[2]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
    (tool_result,) = context["toolResults"]
    assert tool_result["toolUseId"] == calls[1]["sent"]["toolCalls"][0]["toolUseId"] and tool_result["status"] == "success"


def test_a_ten_turn_session_with_every_file_tool_and_an_image(gateway: Gateway, tmp_path: Path, marker: str) -> None:
    # The simulated model follows a plan: one call per turn, the answers quoting each result.
    from PIL import Image

    work = tmp_path / "work"
    work.mkdir()
    notes, picture, other = work / "notes.txt", work / "picture.png", work / "other.txt"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    plan = "Write:Read:Edit:Read:Bash:Read@2:Write@3:Edit@3:Read@3:Bash"
    prompt = f"[[sim:plan:{plan}]] Work on {notes}, look at {picture}, then {other}; run `echo {marker}-ran`."
    result = run_claude(gateway, tmp_path, prompt, allowed="Write,Read,Edit,Bash(echo:*)", max_turns=14)
    assert result["is_error"] is False, {k: v for k, v in result.items() if k != "result"}
    assert result["num_turns"] >= 10
    assert notes.read_text() == "Hello again from the kiro2api simulator."
    assert other.read_text() == "Hello again from the kiro2api simulator."
    calls = gateway.generate_calls(marker)
    assert len(calls) == 11 and all(c["outcome"] == "complete" for c in calls)
    made = [c["sent"]["toolCalls"][0]["name"] for c in calls if c["sent"]["toolCalls"]]
    assert made == ["Write", "Read", "Edit", "Read", "Bash", "Read", "Write", "Edit", "Read", "Bash"]
    for call in calls[1:]:  # every tool ran: its result came back, none an error
        context = call["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        (tool_result,) = context["toolResults"]
        assert tool_result["status"] == "success", tool_result
    # The image Claude Code read went to Kiro as an image of the turn that carried its result.
    image_turn = calls[6]["body"]["conversationState"]["currentMessage"]["userInputMessage"]
    assert [i["format"] for i in image_turn.get("images", [])] == ["png"]
    assert f"{marker}-ran" in json.dumps(calls[5]["body"]["conversationState"]["currentMessage"])
    # Usage: what Claude Code counted is what the gateway reported for the eleven turns.
    usage = result["usage"]
    assert usage["output_tokens"] > 0 and usage["input_tokens"] > 11 * 1000
