"""The public API of kiro_protocol is its __init__ and its subpackages' __init__s: every listed
name exists, is unique, and the core's pipeline can be driven end to end through them alone."""

from __future__ import annotations

import json

import kiro_protocol as kp
import kiro_protocol.requests
import kiro_protocol.responses


def test_every_exported_name_exists_once() -> None:
    assert len(kp.__all__) == len(set(kp.__all__))
    assert [n for n in kp.__all__ if not hasattr(kp, n)] == []


def test_one_request_end_to_end_through_the_public_api() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hi"}],
        "stream": True,
    }
    request = kp.parse_anthropic_request(json.dumps(body).encode())
    kiro = kp.requests.convert_request(request, config=kp.ConversionConfig(), continuation_id="c0ffee00-0000-4000-8000-000000000000")
    sent = json.loads(kiro.body("arn:aws:codewhisperer:us-east-1:123456789012:profile/TEST"))
    assert sent["profileArn"].endswith("profile/TEST")
    assert kp.lint_kiro_body(sent) == []

    upstream = b"".join(
        kp.encode_upstream_event(e)
        for e in (
            kp.AssistantResponse(content="Hi "),
            kp.AssistantResponse(content="there"),
            kp.ContextUsage(percentage=1.0),
        )
    )
    translator = kp.responses.ResponseTranslator(kiro.response_plan, message_id="msg_" + "a" * 24, now=0.0)
    translator.receive_data(upstream)
    translator.receive_data(b"")
    out = translator.data_to_send().decode()
    events = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    text = "".join(
        json.loads(line[6:])["delta"]["text"]
        for line in out.splitlines()
        if line.startswith("data: ") and '"text_delta"' in line
    )
    assert text == "Hi there"
    assert translator.stop_reason is kp.responses.StopReason.END_TURN


def test_adapters_use_only_the_public_api() -> None:
    """Adapters depend on kiro_protocol's __init__, never on its subpackages or private modules,
    so the core can be reorganised without touching them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "adapters"
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if line.lstrip().startswith(("from kiro_protocol.", "import kiro_protocol."))
    ]
    assert offenders == []
