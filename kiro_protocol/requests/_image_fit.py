"""Refitting images through a transform the core is handed (docs/conversion.md, Images).

The parser marks an image that Kiro would refuse, or that is larger than useful, with an
``ImageRefit`` (``_images``). The converter calls ``refit_image`` for it: the decision (target
format and limits) is made here, the pixels are done by an ``ImageTransform`` from outside (the
runtime's is Pillow, ``adapters/runtime/images.py``), and what comes back is checked here before
it is sent: the media type sent to Kiro is the format its bytes announce.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass, field

from .._errors import ErrorKind, LocalProtocolError
from ._images import MAX_IMAGE_BYTES, MAX_LONG_EDGE, MAX_REFIT_PIXELS, MEDIA_TYPES, image_size, sniff_format
from ._model import ImageBlock

__all__ = ["ImageJob", "ImageTransform", "ImageTransformError", "ImageFitted", "refit_image", "INSTALL_HINT"]

#: What an operator runs to give the gateway its image transform.
INSTALL_HINT = "install Pillow (pip install 'kiro2api[images]') to have the gateway convert it"
# Formats re-encoded as themselves; anything else (GIF frames, BMP, TIFF) becomes PNG, which keeps
# every pixel and any transparency.
_KEPT_FORMATS = frozenset({"png", "jpeg", "webp"})


class ImageTransformError(Exception):
    """Raised by a transform for an image it cannot decode; the message reaches the client."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageJob:
    """What a transform must produce: one still image in ``target_format``, aspect ratio kept,
    its long edge at most ``max_long_edge`` and its encoding at most ``max_bytes``."""

    data: bytes = field(repr=False)
    #: ``png`` / ``jpeg`` / ``gif`` / ``webp`` / ``bmp`` / ``tiff``, as sniffed from ``data``.
    source_format: str
    target_format: str
    max_long_edge: int = MAX_LONG_EDGE
    max_bytes: int = MAX_IMAGE_BYTES
    #: Refuse (``ImageTransformError``) an image with more pixels than this before decoding it.
    max_pixels: int = MAX_REFIT_PIXELS


#: Takes a job, returns the encoded image; raises ``ImageTransformError`` for a broken image.
ImageTransform = Callable[[ImageJob], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageFitted:
    """One image the converter changed, for the debug log (``KiroRequest.fitted_images``)."""

    path: str
    reasons: tuple[str, ...]
    source_format: str
    source_bytes: int
    source_size: tuple[int, int]
    result_format: str
    result_bytes: int
    result_size: tuple[int, int]

    @property
    def saved(self) -> int:
        """Decoded bytes saved (negative when a conversion made the image larger)."""
        return self.source_bytes - self.result_bytes

    def describe(self) -> str:
        w, h = self.source_size
        nw, nh = self.result_size
        return (
            f"image-refit: {self.path} ({', '.join(self.reasons)}): {self.source_format} {w}x{h} "
            f"{self.source_bytes} bytes -> {self.result_format} {nw}x{nh} {self.result_bytes} bytes, {self.saved} bytes saved"
        )


def _unusable(path: str, what: str) -> LocalProtocolError:
    # The transform broke its contract: our fault, not the client's.
    return LocalProtocolError(f"{path}: the image conversion failed: {what}", kind=ErrorKind.API, param=path)


def refit_image(image: ImageBlock, transform: ImageTransform | None) -> tuple[ImageBlock, ImageFitted | None]:
    """``image`` made fit for Kiro, and what was done (``None``: sent as it is).

    Raises ``LocalProtocolError``: 400 naming the block when Kiro would refuse the image and there
    is no transform, when the image is too large to decode, or when the transform cannot decode
    it; 500 when the transform returns something Kiro would refuse.
    """
    refit = image.refit
    if refit is None:
        return image, None
    path = refit.path
    if transform is None or image.width * image.height > MAX_REFIT_PIXELS:
        if not refit.required:
            # Kiro takes it as it is; the refit would only have saved upload bytes.
            return image, None
        what = ", ".join(refit.reasons)
        if transform is None:
            hint = f"Kiro accepts PNG, JPEG, GIF and WebP up to {MAX_IMAGE_BYTES} bytes; {INSTALL_HINT}"
        else:
            hint = f"too large to convert (at most {MAX_REFIT_PIXELS} pixels)"
        raise LocalProtocolError(f"{path}: the image cannot be sent ({what}); {hint}", param=path)
    target = image.format if image.format in _KEPT_FORMATS else "png"
    job = ImageJob(data=refit.raw, source_format=image.format, target_format=target)
    try:
        out = transform(job)
    except ImageTransformError as exc:
        raise LocalProtocolError(f"{path}: the image could not be decoded ({exc})", param=path) from None
    fmt = sniff_format(out)
    if fmt is None or fmt not in MEDIA_TYPES.values():
        raise _unusable(path, f"the result is {fmt or 'not an image'}")
    if len(out) > MAX_IMAGE_BYTES:
        raise _unusable(path, f"the result is {len(out)} bytes")
    width, height = image_size(fmt, out)
    if max(width, height) > MAX_LONG_EDGE:
        raise _unusable(path, f"the result is {width}x{height} px")
    fitted = ImageFitted(
        path=path,
        reasons=refit.reasons,
        source_format=image.format,
        source_bytes=image.decoded_size,
        source_size=(image.width, image.height),
        result_format=fmt,
        result_bytes=len(out),
        result_size=(width, height),
    )
    data = binascii.b2a_base64(out, newline=False).decode("ascii")
    block = ImageBlock(format=fmt, data=data, decoded_size=len(out), width=width, height=height)
    return block, fitted

