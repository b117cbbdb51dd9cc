"""The image transform the core is handed (``ConversionConfig.image_transform``): Pillow.

Pillow is an optional extra (``pip install 'kiro2api[images]'``); without it ``image_transform()``
returns ``None`` and the core refuses what Kiro would refuse (docs/conversion.md, Images). The
core decides which images to refit, the target format and the limits (``ImageJob``); this module
only does the pixels: first frame, orientation, downscale with the aspect ratio kept, encode, and
shrink further while the encoding is over the byte limit.

Claude Code sends every image of a conversation again on every turn, so results are cached by
the digest of the input: hashing a few megabytes costs far less than decoding them again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from kiro_protocol import ImageJob, ImageTransformError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["PillowTransform", "image_transform"]

# Lossy encoders start here and step down before the image is made smaller.
_QUALITY = 85
_MIN_QUALITY = 55
_QUALITY_STEP = 15
# Each further shrink when the encoding is still over the byte limit.
_SHRINK = 0.75
_MAX_ATTEMPTS = 10
# Modes each target encodes as they are; anything else is converted first.
_MODES = {
    "png": frozenset({"L", "LA", "RGB", "RGBA"}),
    "jpeg": frozenset({"L", "RGB"}),
    "webp": frozenset({"RGB", "RGBA"}),
}
_PILLOW_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def image_transform() -> PillowTransform | None:
    """The transform to hand the core, or ``None`` when Pillow is not installed.

    Pillow is found, not imported: it is imported by the first image to refit. Importing it is
    2 MiB resident in every process, most of which never see an image (issue 17 item 4).
    """
    try:
        found = importlib.util.find_spec("PIL.Image")
    except (ImportError, ValueError):
        return None
    return None if found is None else PillowTransform()


class PillowTransform:
    """``ImageJob`` -> encoded bytes, with an LRU cache of recent results.

    Args:
        cache_bytes: how many bytes of results (and their keys' inputs) the cache may hold.
    """

    def __init__(self, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        # Calls come from the event loop and, under gevent or a thread pool, from several tasks.
        self._lock = threading.Lock()

    def __call__(self, job: ImageJob) -> bytes:
        limits = f"|{job.target_format}|{job.max_long_edge}|{job.max_bytes}|{job.max_pixels}".encode()
        key = hashlib.blake2b(job.data, digest_size=20).digest() + limits
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        out = fit_image(job)
        with self._lock:
            if key not in self._cache and len(out) <= self._cache_bytes:
                self._cache[key] = out
                self._held += len(out)
                while self._held > self._cache_bytes:
                    _, dropped = self._cache.popitem(last=False)
                    self._held -= len(dropped)
        return out


def fit_image(job: ImageJob) -> bytes:
    """Do ``job`` with Pillow; ``ImageTransformError`` when the data is not a decodable image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(job.data)) as img:
            width, height = img.size
            if width * height > job.max_pixels:
                raise ImageTransformError(f"{width}x{height} px is more than {job.max_pixels} pixels")
            img.seek(0)  # an animation is sent as its first frame
            box = (job.max_long_edge, job.max_long_edge)
            if img.format == "JPEG":
                img.draft(None, box)  # decode at 1/2, 1/4 or 1/8 scale when that is still big enough
            img.load()
            frame = _convertible(img, job.target_format)
            frame.thumbnail(box, Image.Resampling.LANCZOS)
            return _encode_within(_upright(frame), job)
    except ImageTransformError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ValueError, ...) on bad data
        raise ImageTransformError(_describe(exc)) from None


def _describe(exc: Exception) -> str:
    text = str(exc).split("\n", 1)[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _convertible(img: Image, target: str) -> Image:
    """``img`` in a mode ``target`` encodes, resampled in colour (a palette resizes badly)."""
    if img.mode == "1":
        return img.convert("L")
    if img.mode in _MODES[target]:
        return img
    alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if target == "jpeg":
        return img.convert("L" if img.mode in ("I;16", "I", "F", "L") else "RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scaled to 8 bits, as a viewer would show them.
        return img.convert("I").point(lambda v: v / 256).convert("L")
    return img.convert("RGBA" if alpha else "RGB")


def _upright(img: Image) -> Image:
    """Apply the EXIF orientation: the re-encoded image carries no EXIF to say it later."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(img) or img


def _encode_within(img: Image, job: ImageJob) -> bytes:
    fmt = _PILLOW_FORMAT[job.target_format]
    lossy = job.target_format in ("jpeg", "webp")
    quality = _QUALITY
    for _ in range(_MAX_ATTEMPTS):
        out = _encode(img, fmt, quality if lossy else None)
        if len(out) <= job.max_bytes:
            return out
        if lossy and quality - _QUALITY_STEP >= _MIN_QUALITY:
            quality -= _QUALITY_STEP
            continue
        from PIL import Image

        # Shrink in proportion to the overshoot (encoded size goes roughly with the pixel count).
        factor = min(_SHRINK, (job.max_bytes / len(out)) ** 0.5 * 0.95)
        size = (max(1, int(img.width * factor)), max(1, int(img.height * factor)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    raise ImageTransformError(f"cannot encode it in {job.max_bytes} bytes")


def _encode(img: Image, fmt: str, quality: int | None) -> bytes:
    buffer = io.BytesIO()
    if quality is None:
        img.save(buffer, format=fmt)
    else:
        img.save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()
