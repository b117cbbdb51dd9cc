"""Image checks (``kiro_protocol.requests.check_image``/``sniff_format``): every format's header
is read for its pixel size, and malformed headers give a size of 0 instead of an error."""

from __future__ import annotations

import base64
import struct

import pytest

from kiro_protocol import LocalProtocolError
from kiro_protocol.requests import MAX_IMAGE_BYTES, check_image, sniff_format


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def webp(chunk: bytes, payload: bytes) -> bytes:
    body = chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def test_sniff_format_reads_webp_only_from_a_riff_webp_header() -> None:
    assert sniff_format(webp(b"VP8X", bytes(10))) == "webp"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None  # RIFF, but audio
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEB") is None  # too short to tell
    assert sniff_format(b"") is None


def test_webp_extended_header_gives_the_canvas_size() -> None:
    # VP8X: 4 flag bytes, then width-1 and height-1 as 24-bit little-endian integers.
    payload = bytes(4) + (639).to_bytes(3, "little") + (479).to_bytes(3, "little")
    block = check_image("image/webp", b64(webp(b"VP8X", payload)), path="messages.0.content.0")
    assert (block.format, block.width, block.height) == ("webp", 640, 480)


def test_webp_lossless_header_gives_the_size_from_its_14_bit_fields() -> None:
    bits = (300 - 1) | ((200 - 1) << 14)
    payload = b"\x2f" + bits.to_bytes(4, "little") + bytes(5)
    block = check_image("image/webp", b64(webp(b"VP8L", payload)), path="p")
    assert (block.width, block.height) == (300, 200)


def test_webp_lossy_header_gives_the_frame_size_without_the_scale_bits() -> None:
    # VP8 : a 3-byte frame tag, the start code, then 14-bit width and height (top 2 bits: scale).
    payload = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 0xC000 | 320, 0x4000 | 240)
    block = check_image("image/webp", b64(webp(b"VP8 ", payload)), path="p")
    assert (block.width, block.height) == (320, 240)


def test_webp_with_an_unknown_first_chunk_has_no_known_size() -> None:
    block = check_image("image/webp", b64(webp(b"ALPH", bytes(12))), path="p")
    assert (block.format, block.width, block.height) == ("webp", 0, 0)
    assert block.decoded_size == len(webp(b"ALPH", bytes(12)))


EOI = b"\xff\xd9"


def sof(width: int, height: int) -> bytes:
    """A baseline start-of-frame segment: length, precision, height, width."""
    return b"\xff\xc0" + struct.pack(">HBHH", 11, 8, height, width) + bytes(6)


def test_jpeg_size_is_read_past_standalone_markers_and_other_segments() -> None:
    data = (
        b"\xff\xd8"  # start of image
        + b"\xff\x01"  # TEM: a marker without a length
        + b"\xff\xd3"  # RST3: likewise
        + b"\xff\xe0" + struct.pack(">H", 6) + b"JFIF"  # an APP0 segment, skipped by its length
        + b"\xff\xc4" + struct.pack(">H", 4) + b"\x00\x00"  # DHT is not a frame header
        + sof(1024, 768)
        + b"\xff\xd9"  # end of image
    )
    block = check_image("image/jpeg", b64(data), path="p")
    assert (block.format, block.width, block.height) == ("jpeg", 1024, 768)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff\xe0" + struct.pack(">H", 1) + bytes(12) + EOI,  # a segment length below 2
        b"\xff\xd8\xff\xe0" + struct.pack(">H", 4) + b"\x00\x00" + b"\x00" * 12 + EOI,  # no marker byte next
        b"\xff\xd8\xff\xe0" + struct.pack(">H", 40) + bytes(10) + EOI,  # the next segment lies past the end
    ],
    ids=["short-length", "not-a-marker", "truncated"],
)
def test_a_jpeg_whose_segments_do_not_lead_to_a_frame_has_no_known_size(data: bytes) -> None:
    block = check_image("image/jpeg", b64(data), path="p")
    assert (block.format, block.width, block.height, block.decoded_size) == ("jpeg", 0, 0, len(data))


def test_png_without_an_ihdr_chunk_first_has_no_known_size() -> None:
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 0) + b"IEND" + bytes(8)
    block = check_image("image/png", b64(data), path="p")
    assert (block.width, block.height) == (0, 0)


def test_unverified_images_take_the_declared_type_or_png() -> None:
    assert check_image("image/gif", "AAAA", path="p", verify=False).format == "gif"
    unknown = check_image("image/tiff", "AAAAAAAA", path="p", verify=False)
    assert (unknown.format, unknown.decoded_size, unknown.width) == ("png", 6, 0)


def test_an_image_just_over_the_limit_is_marked_as_a_required_refit() -> None:
    raw = b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES + 1 - 20) + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    block = check_image("image/png", b64(raw), path="m")
    assert block.refit is not None and block.refit.required and block.refit.raw == raw
    assert block.refit.reasons == (f"{MAX_IMAGE_BYTES + 1} bytes, over the {MAX_IMAGE_BYTES}-byte limit",)
    at_limit = raw[: MAX_IMAGE_BYTES - 12] + raw[-12:]
    assert check_image("image/png", b64(at_limit), path="m").refit is None
