"""Images within Kiro's budget, end to end: real images made with Pillow, sent with the official
SDKs to ``kiro2api serve`` in front of the simulator; the assertions read what the simulator
received (docs/conversion.md, Images)."""

from __future__ import annotations

import base64
import io
import os
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from PIL import Image

from tests.e2e.conformance.conftest import PYTHON, TOKEN, Process, free_port, gateway_env, get, start

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def simulator() -> Iterator[Process]:
    from tests.e2e.conformance.conftest import base_env

    port = free_port()
    process = start(
        "simulator",
        [PYTHON, "-m", "adapters.simulator", "--port", str(port), "--pace-ms", "0", "--history", "200", "--log-level", "WARNING"],
        port,
        base_env(),
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway(simulator: Process) -> Iterator[Process]:
    port = free_port()
    # DEBUG: the refits are logged with the bytes they saved.
    env = gateway_env(simulator, LOG_LEVEL="DEBUG")
    process = start("serve", [PYTHON, "-m", "adapters.cli", "serve", "--port", str(port)], port, env)
    yield process
    process.stop()


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def photo(width: int, height: int) -> Image.Image:
    """A smooth colour image (compresses like a photo)."""
    grey = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey.rotate(180)))


def image_block(media_type: str, data: bytes) -> Any:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}}


def ask(gateway: Process, *blocks: Any) -> tuple[anthropic.types.Message, str]:
    marker = f"image-{uuid.uuid4().hex[:12]}"
    client = anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0, timeout=60)
    content = [{"type": "text", "text": f"Describe these {marker}"}, *blocks]
    message = client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": content}])
    return message, marker


def received(simulator: Process, marker: str) -> list[tuple[str, Image.Image, bytes]]:
    """The images of the one generate call that carries ``marker``: (format, decoded, bytes)."""
    import json

    _, _, body = get(simulator.port, "/_sim/requests")
    calls = [
        r for r in json.loads(body)["requests"]
        if r.get("endpoint") == "generateAssistantResponse" and marker in json.dumps(r.get("body"))
    ]
    assert len(calls) == 1, calls
    assert "violations" not in calls[0]  # the simulator's linter of Kiro's limits found nothing
    message = calls[0]["body"]["conversationState"]["currentMessage"]["userInputMessage"]
    out: list[tuple[str, Image.Image, bytes]] = []
    for item in message.get("images", []):
        raw = base64.b64decode(item["source"]["bytes"])
        img = Image.open(io.BytesIO(raw))
        img.load()
        out.append((item["format"], img, raw))
    return out


def test_an_image_within_the_budget_is_sent_unchanged(gateway: Process, simulator: Process) -> None:
    data = encode(photo(300, 200), "PNG")
    message, marker = ask(gateway, image_block("image/png", data))
    assert message.stop_reason == "end_turn"
    [(fmt, _, raw)] = received(simulator, marker)
    assert (fmt, raw) == ("png", data)


def test_a_large_jpeg_is_downscaled_with_its_aspect_ratio(gateway: Process, simulator: Process) -> None:
    message, marker = ask(gateway, image_block("image/jpeg", encode(photo(3000, 2000), "JPEG", quality=90)))
    assert message.content
    [(fmt, img, _)] = received(simulator, marker)
    assert (fmt, img.format, img.size) == ("jpeg", "JPEG", (1568, 1045))


def test_bmp_tiff_and_an_animated_gif_become_png(gateway: Process, simulator: Process) -> None:
    source = photo(120, 80)
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    _, marker = ask(
        gateway,
        image_block("image/bmp", encode(source, "BMP")),
        image_block("image/tiff", encode(source, "TIFF")),
        image_block("image/gif", gif),
    )
    got = received(simulator, marker)
    assert [(fmt, img.format, img.size) for fmt, img, _ in got] == [
        ("png", "PNG", (120, 80)), ("png", "PNG", (120, 80)), ("png", "PNG", (40, 30))
    ]
    assert got[0][1].convert("RGB").tobytes() == source.tobytes()  # converted without loss
    assert getattr(got[2][1], "n_frames", 1) == 1 and got[2][1].convert("RGB").getpixel((1, 1)) == (255, 0, 0)


def test_a_png_over_five_megabytes_is_brought_under_the_limit(gateway: Process, simulator: Process) -> None:
    noise = Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3))  # noise does not compress
    data = encode(noise, "PNG")
    assert len(data) > 5 * 1024 * 1024
    _, marker = ask(gateway, image_block("image/png", data))
    [(fmt, img, raw)] = received(simulator, marker)
    assert fmt == "png" and img.format == "PNG" and len(raw) <= 5 * 1024 * 1024
    assert abs(img.width / img.height - 1) < 0.01
    assert "image-refit: messages.0.content.1" in gateway.output() and "bytes saved" in gateway.output()


@pytest.mark.parametrize(
    ("media_type", "data", "why"),
    [
        ("image/png", encode(photo(300, 200), "PNG")[:-600], "truncated or corrupt"),
        ("image/bmp", encode(photo(300, 200), "BMP")[:5000], "could not be decoded"),
    ],
    ids=["truncated-png", "truncated-bmp"],
)
def test_a_broken_image_is_a_400_naming_the_block(gateway: Process, simulator: Process, media_type: str, data: bytes, why: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(gateway, image_block("image/png", encode(photo(10, 10), "PNG")), image_block(media_type, data))
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages.0.content.2") and why in error["message"]


def test_an_openai_data_url_is_converted_the_same_way(gateway: Process, simulator: Process) -> None:
    marker = f"image-{uuid.uuid4().hex[:12]}"
    url = "data:image/bmp;base64," + base64.b64encode(encode(photo(2000, 100), "BMP")).decode()
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=TOKEN, max_retries=0, timeout=60)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": f"Describe {marker}"}, {"type": "image_url", "image_url": {"url": url}}]}],
    )
    assert completion.choices[0].message.content
    [(fmt, img, _)] = received(simulator, marker)
    assert (fmt, img.format, img.size) == ("png", "PNG", (1568, 78))
