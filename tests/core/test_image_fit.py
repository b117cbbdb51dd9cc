"""Images within Kiro's budget (docs/conversion.md, Images): what the parser marks for a refit,
what the converter asks of the transform it is handed (a fake one here), what it checks of the
answer, and what is refused without a transform. The Pillow transform itself is tested in
tests/runtime/test_images.py; real images through the SDK in tests/e2e/test_images.py."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from kiro_protocol import ConversionConfig, ErrorKind, LocalProtocolError, parse_anthropic_request
from kiro_protocol.requests import convert_request
from kiro_protocol.requests import (
    MAX_IMAGE_BYTES,
    MAX_LONG_EDGE,
    MAX_REFIT_PIXELS,
    ImageBlock,
    ImageFitted,
    ImageJob,
    ImageTransformError,
    KiroRequest,
    check_image,
    image_size,
    parse_openai_request,
    refit_image,
    sniff_format,
)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, *, padding: int = 0) -> bytes:
    """A valid greyscale PNG; ``padding`` adds an ancillary chunk to reach a byte size."""
    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))
    extra = chunk(b"tEXt", b"c\x00" + bytes(padding)) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def bmp(width: int, height: int) -> bytes:
    pixels = bytes(((width * 3 + 3) // 4 * 4) * height)
    dib = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(pixels), 0, 0, 14 + len(dib)) + dib + pixels


def tiff(width: int, height: int, *, big_endian: bool = False, long_width: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    entries = [
        struct.pack(order + "HHI", 256, 4, 1) + struct.pack(order + "I", width)
        if long_width
        else struct.pack(order + "HHIH", 256, 3, 1, width) + b"\x00\x00",
        struct.pack(order + "HHIH", 257, 3, 1, height) + b"\x00\x00",
        struct.pack(order + "HHIH", 262, 3, 1, 1) + b"\x00\x00",  # another tag, skipped
    ]
    ifd = struct.pack(order + "H", len(entries)) + b"".join(entries) + bytes(4)
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "I", 8)
    return head + ifd + bytes(width * height)


def gif(frames: int) -> bytes:
    control = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
    frame = control + b"\x2c" + struct.pack("<HHHH", 0, 0, 2, 2) + b"\x00\x02\x02\x44\x01\x00"
    return b"GIF89a" + struct.pack("<HH", 2, 2) + b"\x00\x00\x00" + frame * frames + b";"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image(media_type: str, data: bytes) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": b64(data)}}


def request(*blocks: dict[str, Any]) -> bytes:
    content = [{"type": "text", "text": "look"}, *blocks]
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": content}]}).encode()


class FakeTransform:
    """Records each job; answers with what ``answer`` makes of it (a small PNG by default)."""

    def __init__(self, answer: Callable[[ImageJob], bytes] | None = None) -> None:
        self.jobs: list[ImageJob] = []
        self.answer = answer or (lambda job: png(4, 2))

    def __call__(self, job: ImageJob) -> bytes:
        self.jobs.append(job)
        return self.answer(job)


def convert(body: bytes, transform: FakeTransform | None = None, *, openai: bool = False) -> KiroRequest:
    parsed = parse_openai_request(body) if openai else parse_anthropic_request(body)
    return convert_request(parsed, config=ConversionConfig(image_transform=transform), continuation_id="c")


def sent_images(kiro: KiroRequest) -> list[dict[str, Any]]:
    state: Any = kiro.conversation_state
    images: list[dict[str, Any]] = state["currentMessage"]["userInputMessage"].get("images", [])
    return images


# -- what the parser marks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "data", "reasons", "required"),
    [
        ("image/bmp", bmp(4, 3), ("BMP",), True),
        ("image/x-ms-bmp", bmp(4, 3), ("BMP",), True),
        ("image/tiff", tiff(4, 3), ("TIFF",), True),
        ("image/png", png(MAX_LONG_EDGE + 1, 2), (f"{MAX_LONG_EDGE + 1}x2 px, longer than {MAX_LONG_EDGE} px",), False),
        ("image/png", png(2, MAX_LONG_EDGE + 1), (f"2x{MAX_LONG_EDGE + 1} px, longer than {MAX_LONG_EDGE} px",), False),
        ("image/gif", gif(2), ("animated GIF",), False),
    ],
    ids=["bmp", "x-ms-bmp", "tiff", "wide", "tall", "animated-gif"],
)
def test_the_parser_marks_what_must_be_refitted(media_type: str, data: bytes, reasons: tuple[str, ...], required: bool) -> None:
    block = check_image(media_type, b64(data), path="messages.0.content.1")
    assert block.refit is not None
    assert (block.refit.reasons, block.refit.required, block.refit.path) == (reasons, required, "messages.0.content.1")
    assert block.refit.raw == data
    assert "raw" not in repr(block.refit) or data not in repr(block.refit).encode()


@pytest.mark.parametrize(
    "data",
    [png(MAX_LONG_EDGE, MAX_LONG_EDGE), png(1, 1), gif(1)],
    ids=["at-the-edge", "tiny", "one-frame-gif"],
)
def test_an_image_within_the_budget_needs_no_refit(data: bytes) -> None:
    assert check_image(f"image/{sniff_format(data)}", b64(data), path="p").refit is None


def test_bmp_and_tiff_headers_give_their_pixel_size() -> None:
    assert image_size("bmp", bmp(300, 200)) == (300, 200)  # a top-down BMP has a negative height
    core = b"BM" + bytes(12) + struct.pack("<IHH", 12, 640, 480) + bytes(8)  # OS/2 core header
    assert sniff_format(core) == "bmp" and image_size("bmp", core) == (640, 480)
    assert image_size("tiff", tiff(300, 200)) == (300, 200)
    assert image_size("tiff", tiff(70000, 5, big_endian=True, long_width=True)) == (70000, 5)
    assert image_size("tiff", b"II*\x00" + struct.pack("<I", 4000)) == (0, 0)  # the IFD lies past the end
    rational = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 256, 5, 1, 0)
    assert image_size("tiff", rational) == (0, 0)  # a width of a type no TIFF writer uses is not read
    assert sniff_format(b"BM" + bytes(12) + struct.pack("<I", 99) + bytes(8)) is None  # no known DIB header


@pytest.mark.parametrize(
    ("media_type", "data", "why"),
    [
        ("image/png", png(2, 2)[:-12], "the PNG has no IEND chunk"),
        ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(30), "the JPEG has no end-of-image marker"),
        ("image/webp", b"RIFF" + struct.pack("<I", 100) + b"WEBPVP8 " + bytes(20), "the WebP is shorter than its RIFF header says"),
    ],
    ids=["png", "jpeg", "webp"],
)
def test_a_truncated_image_is_a_400_naming_the_block(media_type: str, data: bytes, why: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        parse_anthropic_request(request(image(media_type, data)))
    assert caught.value.message == f"messages.0.content.1.source.data: the image is truncated or corrupt ({why})"
    assert caught.value.param == "messages.0.content.1.source.data" and caught.value.status_hint == 400


def test_bmp_data_declared_as_png_is_named_for_what_it_is() -> None:
    with pytest.raises(LocalProtocolError) as caught:
        check_image("image/png", b64(bmp(2, 2)), path="p")
    assert caught.value.message == "p.source.media_type: declared image/png but the data is BMP data"


# -- without a transform --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type", "what"),
    [
        (bmp(4, 3), "image/bmp", "BMP"),
        (tiff(4, 3), "image/tiff", "TIFF"),
        (png(2, 2, padding=MAX_IMAGE_BYTES), "image/png", f"{len(png(2, 2, padding=MAX_IMAGE_BYTES))} bytes, over the {MAX_IMAGE_BYTES}-byte limit"),
    ],
    ids=["bmp", "tiff", "over-5-mb"],
)
def test_without_a_transform_what_kiro_refuses_is_a_400_that_says_how_to_enable_conversion(data: bytes, media_type: str, what: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        convert(request(image(media_type, data)))
    assert caught.value.message == (
        f"messages.0.content.1: the image cannot be sent ({what}); Kiro accepts PNG, JPEG, GIF and WebP up to "
        f"{MAX_IMAGE_BYTES} bytes; install Pillow (pip install 'kiro2api[images]') to have the gateway convert it"
    )
    assert caught.value.param == "messages.0.content.1" and caught.value.status_hint == 400


def test_without_a_transform_a_large_or_animated_image_is_sent_as_it_is() -> None:
    wide, animated = png(MAX_LONG_EDGE * 2, 1), gif(3)
    kiro = convert(request(image("image/png", wide), image("image/gif", animated)))
    assert sent_images(kiro) == [
        {"format": "png", "source": {"bytes": b64(wide)}},
        {"format": "gif", "source": {"bytes": b64(animated)}},
    ]
    assert kiro.fitted_images == ()


# -- with a transform -----------------------------------------------------------------------------


def test_a_bmp_is_converted_to_png_and_the_refit_is_reported() -> None:
    fake = FakeTransform()
    source = bmp(40, 30)
    kiro = convert(request(image("image/bmp", source)), fake)
    assert [(j.source_format, j.target_format, j.max_long_edge, j.max_bytes, j.max_pixels) for j in fake.jobs] == [
        ("bmp", "png", MAX_LONG_EDGE, MAX_IMAGE_BYTES, MAX_REFIT_PIXELS)
    ]
    assert fake.jobs[0].data == source
    assert sent_images(kiro) == [{"format": "png", "source": {"bytes": b64(png(4, 2))}}]
    fitted = ImageFitted(
        path="messages.0.content.1",
        reasons=("BMP",),
        source_format="bmp",
        source_bytes=len(source),
        source_size=(40, 30),
        result_format="png",
        result_bytes=len(png(4, 2)),
        result_size=(4, 2),
    )
    assert kiro.fitted_images == (fitted,)
    saved = len(source) - len(png(4, 2))
    assert fitted.saved == saved
    assert kiro.repairs[-1] == (
        f"image-refit: messages.0.content.1 (BMP): bmp 40x30 {len(source)} bytes -> png 4x2 {len(png(4, 2))} bytes, "
        f"{saved} bytes saved"
    )


@pytest.mark.parametrize(
    ("media_type", "data", "target"),
    [
        ("image/png", png(MAX_LONG_EDGE + 1, 1), "png"),
        ("image/gif", gif(2), "png"),
        ("image/tiff", tiff(2, 2), "png"),
        ("image/jpeg", b"\xff\xd8\xff\xc0" + struct.pack(">HBHH", 11, 8, 10, 4000) + bytes(6) + b"\xff\xd9", "jpeg"),
        ("image/webp", b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + bytes(4)
         + (3999).to_bytes(3, "little") + (9).to_bytes(3, "little"), "webp"),
    ],
    ids=["png", "gif", "tiff", "jpeg", "webp"],
)
def test_the_target_keeps_png_jpeg_and_webp_and_makes_png_of_the_rest(media_type: str, data: bytes, target: str) -> None:
    fake = FakeTransform()
    convert(request(image(media_type, data)), fake)
    assert [j.target_format for j in fake.jobs] == [target]


def test_the_media_type_sent_is_what_the_returned_bytes_are() -> None:
    # A transform may answer in another accepted format: the format field follows the bytes.
    jpeg = b"\xff\xd8\xff\xc0" + struct.pack(">HBHH", 11, 8, 2, 3) + bytes(6) + b"\xff\xd9"
    kiro = convert(request(image("image/bmp", bmp(3, 2))), FakeTransform(lambda job: jpeg))
    assert sent_images(kiro) == [{"format": "jpeg", "source": {"bytes": b64(jpeg)}}]
    assert kiro.fitted_images[0].result_size == (3, 2)


def test_images_within_the_budget_never_reach_the_transform() -> None:
    fake = FakeTransform()
    small = png(8, 8)
    kiro = convert(request(image("image/png", small)), fake)
    assert fake.jobs == [] and sent_images(kiro) == [{"format": "png", "source": {"bytes": b64(small)}}]
    assert kiro.fitted_images == ()


def test_an_image_the_transform_cannot_decode_is_a_400_naming_the_block() -> None:
    def broken(job: ImageJob) -> bytes:
        raise ImageTransformError("OSError: image file is truncated")

    with pytest.raises(LocalProtocolError) as caught:
        convert(request(image("image/bmp", bmp(2, 2))), FakeTransform(broken))
    assert caught.value.message == "messages.0.content.1: the image could not be decoded (OSError: image file is truncated)"
    assert caught.value.param == "messages.0.content.1" and caught.value.status_hint == 400


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (bmp(2, 2), "the result is bmp"),
        (b"nothing", "the result is not an image"),
        (png(2, 2, padding=MAX_IMAGE_BYTES), f"the result is {len(png(2, 2, padding=MAX_IMAGE_BYTES))} bytes"),
        (png(MAX_LONG_EDGE + 1, 1), f"the result is {MAX_LONG_EDGE + 1}x1 px"),
    ],
    ids=["bmp", "garbage", "too-big", "too-wide"],
)
def test_a_result_kiro_would_refuse_is_our_error_not_the_client_s(answer: bytes, what: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        convert(request(image("image/bmp", bmp(2, 2))), FakeTransform(lambda job: answer))
    assert caught.value.message == f"messages.0.content.1: the image conversion failed: {what}"
    assert caught.value.kind is ErrorKind.API and caught.value.status_hint == 500


def test_an_image_with_too_many_pixels_is_not_decoded() -> None:
    fake = FakeTransform()
    side = int(MAX_REFIT_PIXELS**0.5) + 1
    huge_bmp = b"BM" + bytes(12) + struct.pack("<Iii", 40, side, side) + bytes(28)
    with pytest.raises(LocalProtocolError) as caught:
        convert(request(image("image/bmp", huge_bmp)), fake)
    assert caught.value.message == (
        f"messages.0.content.1: the image cannot be sent (BMP, {side}x{side} px, longer than {MAX_LONG_EDGE} px); "
        f"too large to convert (at most {MAX_REFIT_PIXELS} pixels)"
    )
    # Only too large to be worth downscaling: Kiro takes it as it is, so it is sent unchanged.
    wide = png(side, 1)
    huge_png = wide[:16] + struct.pack(">II", side, side) + wide[24:]
    assert sent_images(convert(request(image("image/png", huge_png)), fake)) == [
        {"format": "png", "source": {"bytes": b64(huge_png)}}
    ]
    assert fake.jobs == []


def test_an_openai_data_url_goes_the_same_way() -> None:
    fake = FakeTransform()
    url = f"data:image/bmp;base64,{b64(bmp(5, 5))}"
    body = json.dumps(
        {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}]}
    ).encode()
    kiro = convert(body, fake, openai=True)
    assert sent_images(kiro) == [{"format": "png", "source": {"bytes": b64(png(4, 2))}}]
    assert kiro.fitted_images[0].path == "messages.0.content.1"
    with pytest.raises(LocalProtocolError) as caught:
        convert(body, openai=True)
    assert caught.value.param == "messages.0.content.1"


def test_images_in_tool_results_and_history_are_refitted_where_they_are() -> None:
    fake = FakeTransform()
    tool_image = image("image/bmp", bmp(3, 3))
    body = json.dumps({
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "first"}, image("image/tiff", tiff(2, 2))]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [tool_image]}]},
        ],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    }).encode()
    kiro = convert(body, fake)
    assert [f.path for f in kiro.fitted_images] == ["messages.0.content.1", "messages.2.content.0.content.0"]
    state: Any = kiro.conversation_state
    assert state["history"][0]["userInputMessage"]["images"] == [{"format": "png", "source": {"bytes": b64(png(4, 2))}}]
    assert sent_images(kiro) == [{"format": "png", "source": {"bytes": b64(png(4, 2))}}]


def test_refit_image_leaves_a_block_without_a_refit_alone() -> None:
    block = ImageBlock(format="png", data="AAAA")
    assert refit_image(block, FakeTransform()) == (block, None)
