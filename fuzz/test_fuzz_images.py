"""Fuzz the image header readers: every image a client sends is decoded and its header read
(format, pixel size, animation, end marker) before the converter decides on a refit.

Mutations start from well-formed headers of every format, so the walks past them (JPEG
segments, TIFF directories, BMP info headers) are reached with hostile lengths and offsets.
"""

from __future__ import annotations

import base64
import struct

from hypothesis import example, given
from hypothesis import strategies as st

from kiro_protocol._errors import LocalProtocolError
from kiro_protocol.requests import (
    CONVERTED_MEDIA_TYPES,
    MAX_LONG_EDGE,
    MEDIA_TYPES,
    ImageBlock,
    ImageJob,
    check_image,
    image_size,
    refit_image,
    sniff_format,
)

SEEDS = [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", 3000, 20) + b"\x08\x02\x00\x00\x00IEND\xaeB`\x82",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(9) + b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 20, 4000) + bytes(12) + b"\xff\xd9",
    b"GIF89a" + struct.pack("<HH", 2, 2) + bytes(3) + (b"\x21\xf9\x04" + bytes(5)) * 2 + b";",
    b"RIFF" + struct.pack("<I", 22) + b"WEBPVP8X" + struct.pack("<I", 10) + bytes(10),
    b"BM" + bytes(12) + struct.pack("<Iii", 40, 2000, -3) + bytes(28),
    b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHIHH", 256, 3, 1, 5000, 0) + struct.pack("<HHII", 257, 4, 1, 7),
    b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHII", 256, 4, 1, 2**32 - 1),
]
MEDIA = sorted([*MEDIA_TYPES, *CONVERTED_MEDIA_TYPES, "image/svg+xml"])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        data[pos : pos + 1] = draw(st.binary(min_size=0, max_size=4))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


IMAGES = st.one_of(mutated(), st.binary(max_size=200))


@given(IMAGES)
@example(b"II*\x00" + struct.pack("<IH", 8, 65535))
@example(b"BM" + bytes(12) + struct.pack("<I", 12))
def test_headers_give_a_size_or_zero(data: bytes) -> None:
    fmt = sniff_format(data)
    for name in ("png", "jpeg", "gif", "webp", "bmp", "tiff"):
        width, height = image_size(name, data)
        assert width >= 0 and height >= 0
    assert fmt is None or fmt in (*MEDIA_TYPES.values(), *CONVERTED_MEDIA_TYPES.values())


@given(st.sampled_from(MEDIA), IMAGES)
def test_check_image_returns_a_block_or_a_400(media_type: str, data: bytes) -> None:
    try:
        block = check_image(media_type, base64.b64encode(data).decode(), path="messages.0.content.0")
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.message.startswith("messages.0.content.0.source.")
        return
    assert block.decoded_size == len(data) and sniff_format(data) == block.format
    refit = block.refit
    if block.format in CONVERTED_MEDIA_TYPES.values():
        assert refit is not None and refit.required
    if max(block.width, block.height) > MAX_LONG_EDGE:
        assert refit is not None
    # The converter either sends it (as it is, or as the transform made it) or refuses it.
    try:
        sent, _ = refit_image(block, _one_pixel_png)
    except LocalProtocolError as exc:
        assert exc.status_hint == 400 and exc.param == "messages.0.content.0"
        return
    assert isinstance(sent, ImageBlock) and sent.format in MEDIA_TYPES.values()


_PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _one_pixel_png(job: ImageJob) -> bytes:
    return _PNG_1PX
