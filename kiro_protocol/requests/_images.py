"""Image checks: the formats Kiro accepts, the media type against the bytes, the size cap.

Kiro accepts ``png``, ``jpeg``, ``gif`` and ``webp`` only, refuses images over about 5 MB, and
refuses a PNG declared as JPEG (and the reverse), so each image is decoded once here and its
signature compared with the declared media type before anything is sent.
"""

from __future__ import annotations

import binascii
import struct

from .._errors import LocalProtocolError
from ._model import ImageBlock

__all__ = ["MEDIA_TYPES", "MAX_IMAGE_BYTES", "check_image", "sniff_format"]

#: Declared media type -> upstream ``format``.
MEDIA_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

#: Decoded size limit of one image (Kiro rejects larger ones).
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def sniff_format(data: bytes) -> str | None:
    """The image format the leading bytes announce, or ``None`` if unrecognised."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _dimensions(fmt: str, data: bytes) -> tuple[int, int]:
    """Pixel size from the image header, ``(0, 0)`` when it cannot be read cheaply."""
    try:
        if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if fmt == "gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if fmt == "webp" and len(data) >= 30:
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8L" and len(data) >= 25:
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w) & 0x3FFF, int(h) & 0x3FFF
        if fmt == "jpeg":
            return _jpeg_dimensions(data)
    except struct.error:
        pass
    return 0, 0


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    pos = 2
    # Walk the marker segments up to the first start-of-frame; bounded by the data length.
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return 0, 0
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(w), int(h)
        if length < 2:
            return 0, 0
        pos += 2 + length
    return 0, 0


def check_image(media_type: str, data: str, *, path: str, verify: bool = True) -> ImageBlock:
    """Validate a base64 image and return it as an ``ImageBlock``.

    Raises ``LocalProtocolError`` (400) naming ``path`` when the media type is unsupported, the
    base64 is invalid or empty, the bytes are another format than declared, or the decoded
    image is larger than ``MAX_IMAGE_BYTES``. With ``verify=False`` (token counting, where
    nothing is sent) the image is taken as declared without decoding it.
    """
    if not verify:
        declared = MEDIA_TYPES.get(media_type, "png")
        return ImageBlock(format=declared, data=data, decoded_size=len(data) * 3 // 4)
    fmt = MEDIA_TYPES.get(media_type)
    if fmt is None:
        supported = ", ".join(MEDIA_TYPES)
        raise LocalProtocolError(
            f"{path}.source.media_type: unsupported image type {media_type!r}; supported: {supported}",
            param=f"{path}.source.media_type",
        )
    # base64 inflates by 4/3: reject an oversized image before decoding it.
    if len(data) > (MAX_IMAGE_BYTES + 2) // 3 * 4 + 4:
        raise LocalProtocolError(
            f"{path}.source.data: image is larger than {MAX_IMAGE_BYTES} bytes", param=f"{path}.source.data"
        )
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise LocalProtocolError(
            f"{path}.source.data: not valid base64", param=f"{path}.source.data"
        ) from None
    if not raw:
        raise LocalProtocolError(f"{path}.source.data: image is empty", param=f"{path}.source.data")
    if len(raw) > MAX_IMAGE_BYTES:
        raise LocalProtocolError(
            f"{path}.source.data: image is {len(raw)} bytes, over the {MAX_IMAGE_BYTES}-byte limit",
            param=f"{path}.source.data",
        )
    actual = sniff_format(raw)
    if actual != fmt:
        what = f"{actual.upper()} data" if actual else "not a PNG, JPEG, GIF or WebP image"
        raise LocalProtocolError(
            f"{path}.source.media_type: declared {media_type} but the data is {what}",
            param=f"{path}.source.media_type",
        )
    width, height = _dimensions(fmt, raw)
    return ImageBlock(format=fmt, data=data, decoded_size=len(raw), width=width, height=height)
