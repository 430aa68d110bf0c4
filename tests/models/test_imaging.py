"""The one cover-fit every backend uses: exact sizes, centred crops, EXIF orientation, alpha, and refusing bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models import imaging
from models.imaging import encode_as, exact_png, fit_cover, to_png

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        img.load()
        return img


def _is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


@pytest.mark.parametrize("target", [(1, 1), (7, 301), (333, 777), (1025, 63), (1537, 1025), (2048, 2048)])
def test_exact_png_gives_exactly_the_size_up_or_down(target: tuple[int, int]) -> None:
    data, native = exact_png(_encode(Image.new("RGB", (1536, 1024), BLUE)), *target)

    assert native == (1536, 1024)
    out = _decode(data)
    assert out.size == target and out.mode == "RGB"
    # Covered, then cropped: no bars anywhere, not even in a corner.
    assert out.getpixel((0, 0)) == BLUE and out.getpixel((target[0] - 1, target[1] - 1)) == BLUE


@pytest.mark.parametrize("target", [(50, 70), (70, 50), (48, 72), (100, 30), (7, 300), (97, 145)])
def test_fit_cover_gives_the_exact_size(target: tuple[int, int]) -> None:
    out = fit_cover(Image.new("RGB", (48, 72), (200, 10, 10)), *target)

    assert out.size == target
    assert out.getpixel((0, 0)) == (200, 10, 10)


def test_fit_cover_leaves_an_image_of_the_right_size_alone() -> None:
    image = Image.new("RGB", (40, 30))
    assert fit_cover(image, 40, 30) is image


def test_fit_cover_keeps_the_mode() -> None:
    # StyleGAN3's one-channel networks give grayscale images: they stay one channel.
    assert fit_cover(Image.new("L", (16, 16), 128), 5, 9).mode == "L"


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (-1, 5)])
def test_non_positive_sizes_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        fit_cover(Image.new("RGB", (8, 8)), *size)
    with pytest.raises(ValueError, match="positive"):
        exact_png(_encode(Image.new("RGB", (8, 8))), *size)


def test_wide_source_into_a_square_keeps_the_centre() -> None:
    # 300x100, blue middle third: a square crop is exactly that third, so the red sides are gone.
    src = Image.new("RGB", (300, 100), RED)
    src.paste(BLUE, (100, 0, 200, 100))

    out = _decode(exact_png(_encode(src), 50, 50)[0])

    for xy in ((0, 0), (25, 25), (49, 49)):
        red, _, blue = out.getpixel(xy)
        assert red < 40 and blue > 215  # Lanczos lets a little red bleed into the edge pixels


def test_a_marked_corner_moves_with_the_crop() -> None:
    # 200x100 source, a red 20x20 mark at the top-left of its central 100x100 square: once the 100-wide sides are
    # cropped away and the rest halved, the mark is the output's top-left 10x10 corner.
    src = Image.new("RGB", (200, 100), BLUE)
    src.paste(RED, (50, 0, 70, 20))

    out = fit_cover(src, 50, 50)

    assert out.size == (50, 50)
    assert _is_red(out.getpixel((3, 3)))
    assert not _is_red(out.getpixel((14, 14))) and not _is_red(out.getpixel((46, 3)))
    assert not _is_red(out.getpixel((3, 46)))


def test_a_marked_corner_scales_up_in_place_when_the_aspect_matches() -> None:
    src = Image.new("RGB", (30, 20), BLUE)
    src.paste(RED, (0, 0, 5, 5))

    out = fit_cover(src, 90, 60)

    # Three times larger, nothing cropped: the mark spans the top-left 15x15.
    assert _is_red(out.getpixel((2, 2))) and _is_red(out.getpixel((12, 12)))
    assert not _is_red(out.getpixel((18, 18))) and not _is_red(out.getpixel((88, 58)))


def test_exif_rotated_jpeg_is_turned_upright_before_cropping() -> None:
    # Stored landscape 80x40 with a red block top-left; orientation 6 says "display rotated 90° clockwise", so the
    # upright picture is portrait 40x80 with the block top-right.
    stored = Image.new("RGB", (80, 40), BLUE)
    stored.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = _encode(stored, "JPEG", exif=exif.tobytes(), quality=95)

    data, native = exact_png(jpeg, 40, 80)

    assert native == (80, 40)  # the size the file declares
    out = _decode(data)
    assert out.size == (40, 80)
    assert _is_red(out.getpixel((35, 5)))
    assert not _is_red(out.getpixel((5, 5))) and not _is_red(out.getpixel((35, 75)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a-not-really",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        _encode(Image.new("RGB", (64, 64), BLUE))[:60],  # a real header, the pixel data cut off
    ],
    ids=["empty", "fake-gif", "png-magic-only", "truncated-png"],
)
def test_undecodable_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="could not be decoded"):
        exact_png(data, 10, 10)


def test_too_many_pixels_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "MAX_SOURCE_PIXELS", 99)

    with pytest.raises(ValueError, match="10x10 is too large"):
        exact_png(_encode(Image.new("RGB", (10, 10))), 5, 5)


def test_a_callers_pixel_cap_is_checked_from_the_header() -> None:
    data = _encode(Image.new("RGB", (100, 100)))

    with pytest.raises(ValueError, match="100x100 is too large"):
        exact_png(data, 5, 5, max_pixels=9_999)
    assert exact_png(data, 5, 5, max_pixels=10_000)[1] == (100, 100)


def test_rgba_is_preserved() -> None:
    # Transparent left half, half-transparent right half: both survive the resampling.
    src = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    src.paste((10, 200, 30, 128), (32, 0, 64, 64))

    out = _decode(exact_png(_encode(src), 31, 17)[0])

    assert out.mode == "RGBA"
    assert out.getpixel((2, 8))[3] == 0
    r, g, b, a = out.getpixel((28, 8))
    # Resampling premultiplies by alpha, so a colour may come back one level off; alpha comes back exactly.
    assert a == 128 and max(abs(r - 10), abs(g - 200), abs(b - 30)) <= 1


@pytest.mark.parametrize(
    ("source", "mode"),
    [
        (Image.new("LA", (8, 8), (100, 50)), "RGBA"),
        (Image.new("P", (8, 8), 0), "RGB"),
        (Image.new("L", (8, 8), 100), "RGB"),
        (Image.new("I;16", (8, 8), 100), "RGB"),
    ],
    ids=["LA", "P", "L", "I16"],
)
def test_modes_come_out_as_rgb_or_rgba(source: Image.Image, mode: str) -> None:
    assert _decode(exact_png(_encode(source), 4, 4)[0]).mode == mode


def test_a_transparency_key_counts_as_alpha() -> None:
    src = Image.new("P", (8, 8), 0)
    src.putpalette([0, 0, 0, 255, 255, 255])
    data = _encode(src, transparency=0)

    out = _decode(exact_png(data, 8, 8)[0])

    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0


def test_to_png_round_trips_the_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (13, 7, 3), dtype=np.uint8)

    out = _decode(to_png(Image.fromarray(pixels)))

    np.testing.assert_array_equal(np.asarray(out), pixels)


@pytest.mark.parametrize(("fmt", "mime", "pil"), [("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")])
def test_encode_as_re_encodes_with_the_quality_asked(fmt: str, mime: str, pil: str) -> None:
    rng = np.random.default_rng(0)
    noisy = _encode(Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)))
    small, got_mime = encode_as(noisy, fmt, 10)
    big, _ = encode_as(noisy, fmt, 95)
    assert got_mime == mime and len(small) < len(big)
    with Image.open(io.BytesIO(small)) as img:
        assert img.format == pil and img.size == (96, 64)


def test_encode_as_lays_alpha_on_white_for_jpeg_and_keeps_it_for_webp() -> None:
    clear = _encode(Image.new("RGBA", (8, 8), (255, 0, 0, 0)))
    jpeg, _ = encode_as(clear, "jpeg")
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.mode == "RGB" and min(img.getpixel((4, 4))) > 245  # type: ignore[arg-type]
    webp, _ = encode_as(clear, "webp")
    with Image.open(io.BytesIO(webp)) as img:
        assert img.mode == "RGBA" and img.getpixel((4, 4))[3] == 0  # type: ignore[index]


def test_encode_as_leaves_an_image_already_in_that_format_alone_and_refuses_junk() -> None:
    png = _encode(Image.new("RGB", (4, 4)))
    assert encode_as(png, "png") == (png, "image/png")
    with pytest.raises(ValueError, match="could not be decoded"):
        encode_as(b"<svg/>", "png")
    with pytest.raises(ValueError, match="unknown output format"):
        encode_as(png, "gif")
