"""Image checks: the formats Kiro accepts, the media type against the bytes, what must be refitted.

Kiro accepts ``png``, ``jpeg``, ``gif`` and ``webp`` only, refuses images over about 5 MB, and
refuses a PNG declared as JPEG (and the reverse), so each image is decoded once here and its
signature compared with the declared media type before anything is sent.

Converting or downscaling needs an image library, which the core does not have: this module only
reads headers (format, pixel size, animation, a missing end marker) and marks the block with an
``ImageRefit`` saying why; the converter hands the image to the transform it was given
(``_image_fit``). Reading a header is cheap, so an image that needs nothing costs no decoding.
"""

from __future__ import annotations

import binascii
import struct

from .._errors import LocalProtocolError
from ._model import ImageBlock, ImageRefit

__all__ = [
    "MEDIA_TYPES",
    "CONVERTED_MEDIA_TYPES",
    "MAX_IMAGE_BYTES",
    "MAX_LONG_EDGE",
    "MAX_REFIT_PIXELS",
    "check_image",
    "image_size",
    "sniff_format",
]

#: Declared media type -> upstream ``format``.
MEDIA_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
#: Media types Kiro refuses that the gateway converts to PNG when it has an image transform.
CONVERTED_MEDIA_TYPES: dict[str, str] = {
    "image/bmp": "bmp",
    "image/x-bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/tiff": "tiff",
}

#: Decoded size limit of one image (Kiro rejects larger ones).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: Longest edge sent: Claude scales anything larger down to this itself, so the extra pixels
#: cost upload bytes and nothing else (docs/conversion.md, Images).
MAX_LONG_EDGE = 1568
#: Largest image the gateway agrees to decode for a refit (a 2 MB PNG can hold 400 megapixels).
MAX_REFIT_PIXELS = 50_000_000

# DIB header sizes a BMP file can carry (core, info, v2-v5).
_BMP_HEADERS = frozenset({12, 40, 52, 56, 64, 108, 124})
# A graphics control extension: one precedes every frame of an animation.
_GIF_FRAME_CONTROL = b"\x21\xf9\x04"


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
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if len(data) >= 18 and data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADERS:
        return "bmp"
    return None


def image_size(fmt: str, data: bytes) -> tuple[int, int]:
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
        if fmt == "bmp" and len(data) >= 26:
            if int.from_bytes(data[14:18], "little") == 12:
                w, h = struct.unpack("<HH", data[18:22])
                return int(w), int(h)
            w, h = struct.unpack("<ii", data[18:26])
            return abs(int(w)), abs(int(h))  # a negative height means top-down rows
        if fmt == "tiff":
            return _tiff_dimensions(data)
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


def _tiff_dimensions(data: bytes) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) of the first IFD."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    size = {256: 0, 257: 0}
    # Each entry is 12 bytes; the count comes from the file, so the slice bounds the loop.
    entries = data[ifd + 2 : ifd + 2 + 12 * count]
    for pos in range(0, len(entries) - 11, 12):
        tag, kind = struct.unpack(order + "HH", entries[pos : pos + 4])
        if tag in size:
            value = entries[pos + 8 : pos + 12]
            if kind == 3:  # SHORT: the first two bytes of the field
                size[tag] = int(struct.unpack(order + "H", value[:2])[0])
            elif kind == 4:  # LONG
                size[tag] = int(struct.unpack(order + "I", value)[0])
    return size[256], size[257]


def _missing_end(fmt: str, data: bytes) -> str:
    """Why the data is cut short, or ``""``. Only checks that cost a search from the end."""
    if fmt == "png" and data.rfind(b"IEND") < 0:
        return "the PNG has no IEND chunk"
    if fmt == "jpeg" and data.rfind(b"\xff\xd9", 2) < 0:
        return "the JPEG has no end-of-image marker"
    if fmt == "webp" and int.from_bytes(data[4:8], "little") + 8 > len(data):
        return "the WebP is shorter than its RIFF header says"
    return ""


def _refit_reasons(fmt: str, raw: bytes, width: int, height: int) -> tuple[list[str], bool]:
    """What must change before Kiro gets the image, and whether Kiro refuses it as it is."""
    reasons: list[str] = []
    required = False
    if fmt not in MEDIA_TYPES.values():
        reasons.append(fmt.upper())
        required = True
    if len(raw) > MAX_IMAGE_BYTES:
        reasons.append(f"{len(raw)} bytes, over the {MAX_IMAGE_BYTES}-byte limit")
        required = True
    if max(width, height) > MAX_LONG_EDGE:
        reasons.append(f"{width}x{height} px, longer than {MAX_LONG_EDGE} px")
    if fmt == "gif" and raw.count(_GIF_FRAME_CONTROL, 13) > 1:
        reasons.append("animated GIF")
    return reasons, required


def check_image(media_type: str, data: str, *, path: str, verify: bool = True) -> ImageBlock:
    """Validate a base64 image and return it as an ``ImageBlock``.

    Raises ``LocalProtocolError`` (400) naming ``path`` when the media type is unsupported, the
    base64 is invalid or empty, the bytes are another format than declared, or the data is cut
    short. An image Kiro would refuse (BMP, TIFF, over ``MAX_IMAGE_BYTES``) or that is larger
    than useful (over ``MAX_LONG_EDGE``, animated) comes back with a ``refit`` for the converter.
    With ``verify=False`` (token counting, where nothing is sent) the image is taken as declared
    without decoding it.
    """
    if not verify:
        declared = MEDIA_TYPES.get(media_type, "png")
        return ImageBlock(format=declared, data=data, decoded_size=len(data) * 3 // 4)
    fmt = MEDIA_TYPES.get(media_type) or CONVERTED_MEDIA_TYPES.get(media_type)
    if fmt is None:
        supported = ", ".join([*MEDIA_TYPES, *CONVERTED_MEDIA_TYPES])
        raise LocalProtocolError(
            f"{path}.source.media_type: unsupported image type {media_type!r}; supported: {supported}",
            param=f"{path}.source.media_type",
        )
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise LocalProtocolError(
            f"{path}.source.data: not valid base64", param=f"{path}.source.data"
        ) from None
    if not raw:
        raise LocalProtocolError(f"{path}.source.data: image is empty", param=f"{path}.source.data")
    actual = sniff_format(raw)
    if actual != fmt:
        what = f"{actual.upper()} data" if actual else "not a PNG, JPEG, GIF, WebP, BMP or TIFF image"
        raise LocalProtocolError(
            f"{path}.source.media_type: declared {media_type} but the data is {what}",
            param=f"{path}.source.media_type",
        )
    broken = _missing_end(fmt, raw)
    if broken:
        raise LocalProtocolError(
            f"{path}.source.data: the image is truncated or corrupt ({broken})", param=f"{path}.source.data"
        )
    width, height = image_size(fmt, raw)
    reasons, required = _refit_reasons(fmt, raw, width, height)
    refit = ImageRefit(path=path, raw=raw, reasons=tuple(reasons), required=required) if reasons else None
    return ImageBlock(format=fmt, data=data, decoded_size=len(raw), width=width, height=height, refit=refit)
