"""The Pillow image transform (``adapters/runtime/images.py``) on real images made with Pillow:
what it returns for each job the core can hand it, and its errors for data it cannot decode."""

from __future__ import annotations

import io
import os
import sys

import pytest
from PIL import Image

from adapters.runtime.images import PillowTransform, fit_image, image_transform
from kiro_protocol import ImageJob, ImageTransformError


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth image (compresses like a photo, not like noise)."""
    img = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (img, img.rotate(90).resize((width, height)), img)).convert(mode)


def job(data: bytes, source: str, target: str, **limits: int) -> ImageJob:
    return ImageJob(data=data, source_format=source, target_format=target, **limits)


def test_a_large_png_is_downscaled_with_its_aspect_ratio_kept() -> None:
    out = fit_image(job(encode(gradient(3000, 2000), "PNG"), "png", "png"))
    img = decode(out)
    assert (img.format, img.size) == ("PNG", (1568, 1045))


def test_a_tall_jpeg_is_downscaled_as_jpeg() -> None:
    out = fit_image(job(encode(gradient(1000, 4000), "JPEG", quality=90), "jpeg", "jpeg"))
    img = decode(out)
    assert (img.format, img.size) == ("JPEG", (392, 1568))


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_bmp_and_tiff_become_png_with_their_pixels(fmt: str) -> None:
    source = gradient(64, 48)
    img = decode(fit_image(job(encode(source, fmt), fmt.lower(), "png")))
    assert (img.format, img.size, img.mode) == ("PNG", (64, 48), "RGB")
    assert img.tobytes() == source.tobytes()  # lossless


def test_transparency_survives_the_conversion() -> None:
    source = Image.new("RGBA", (20, 10), (255, 0, 0, 0))
    source.putpixel((3, 3), (0, 0, 255, 255))
    img = decode(fit_image(job(encode(source, "TIFF"), "tiff", "png")))
    assert img.mode == "RGBA" and img.getpixel((0, 0)) == (255, 0, 0, 0) and img.getpixel((3, 3)) == (0, 0, 255, 255)


def test_an_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (30, 20), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(decode(data), "n_frames") == 3
    img = decode(fit_image(job(data, "gif", "png")))
    assert (img.format, img.size, getattr(img, "n_frames", 1)) == ("PNG", (30, 20), 1)
    assert img.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_a_16_bit_grey_tiff_is_shown_as_8_bits() -> None:
    img = decode(fit_image(job(encode(Image.new("I;16", (8, 8), 40000), "TIFF"), "tiff", "png")))
    assert img.mode == "L" and img.getpixel((0, 0)) == 40000 // 256


def test_the_exif_orientation_is_applied_before_the_exif_is_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    data = encode(gradient(2000, 1000), "JPEG", exif=exif.tobytes())
    img = decode(fit_image(job(data, "jpeg", "jpeg")))
    assert img.size == (784, 1568)  # upright: the long edge is now the height


def test_an_encoding_over_the_byte_limit_is_shrunk_until_it_fits() -> None:
    noise = Image.frombytes("RGB", (1000, 1000), os.urandom(1000 * 1000 * 3))
    data = encode(noise, "PNG")
    out = fit_image(job(data, "png", "png", max_bytes=len(data) // 3))
    assert len(out) <= len(data) // 3 and decode(out).width < 1000
    lossy = fit_image(job(encode(noise, "JPEG", quality=95), "jpeg", "jpeg", max_bytes=200_000))
    assert len(lossy) <= 200_000


def test_an_image_that_cannot_fit_the_bytes_is_refused() -> None:
    with pytest.raises(ImageTransformError, match="cannot encode it in 10 bytes"):
        fit_image(job(encode(gradient(50, 50), "PNG"), "png", "png", max_bytes=10))


def test_too_many_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(ImageTransformError, match="100x100 px is more than 5000 pixels"):
        fit_image(job(encode(gradient(100, 100), "PNG"), "png", "png", max_pixels=5000))


@pytest.mark.parametrize(
    ("data", "source"),
    [
        (encode(gradient(300, 200), "PNG")[:-400], "png"),
        (encode(gradient(300, 200), "JPEG")[:200], "jpeg"),
        (encode(gradient(300, 200), "BMP")[:100], "bmp"),
        (b"II*\x00" + bytes(40), "tiff"),
    ],
    ids=["truncated-png", "truncated-jpeg", "truncated-bmp", "empty-tiff"],
)
def test_broken_data_is_an_image_transform_error(data: bytes, source: str) -> None:
    with pytest.raises(ImageTransformError) as caught:
        fit_image(job(data, source, "png"))
    assert str(caught.value)  # names what Pillow found, for the client's 400


def test_results_are_cached_by_the_digest_of_the_input() -> None:
    transform = PillowTransform(cache_bytes=10_000_000)
    data = encode(gradient(2000, 100), "PNG")
    first = transform(job(data, "png", "png"))
    assert transform(job(bytes(data), "png", "png")) is first
    assert transform(job(data, "png", "jpeg")) is not first  # another target is another entry


def test_the_cache_keeps_to_its_byte_budget() -> None:
    results = [fit_image(job(encode(gradient(2000 + i, 100), "PNG"), "png", "png")) for i in range(3)]
    transform = PillowTransform(cache_bytes=len(results[0]) * 2 + 10)
    sources = [encode(gradient(2000 + i, 100), "PNG") for i in range(3)]
    outs = [transform(job(s, "png", "png")) for s in sources]
    assert transform(job(sources[2], "png", "png")) is outs[2]
    assert transform(job(sources[0], "png", "png")) is not outs[0]  # the oldest was dropped


def test_without_pillow_there_is_no_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(image_transform(), PillowTransform)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # import PIL.Image now raises ImportError
    assert image_transform() is None
