"""Exactly the size the caller asked for, whatever size an image came in at: scale to cover, crop the centre, PNG.

Shared by every backend, so one request gives the same framing whichever backend served it.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

# Far above any provider's output (4K is ~16 MP) and below Pillow's own bomb limits.
MAX_SOURCE_PIXELS = 64_000_000

# What a truncated, corrupt or hostile file makes Pillow raise while opening, decoding or transposing it.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError)


class _TooLarge(Exception):
    """Internal: keeps the size refusal out of the generic "could not be decoded" handler."""


def fit_cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale (Lanczos) to cover width×height and crop the centre: exactly that size, no bars, no distortion.

    The image itself when it already has that size. The mode is kept (convert first where it matters).
    """
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    if image.size == (width, height):
        return image
    # ImageOps.fit resamples the exact (fractional) centre box, so the crop is centred to the sub-pixel.
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def to_png(image: Image.Image) -> bytes:
    """Pillow's default PNG encoding (compress level 6, no optimize pass)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def exact_png(
    data: bytes, width: int, height: int, *, max_pixels: int = MAX_SOURCE_PIXELS
) -> tuple[bytes, tuple[int, int]]:
    """PNG bytes of exactly `width`x`height` from encoded image bytes, and the source's native (width, height).

    EXIF orientation is applied; alpha (RGBA, LA, PA or a transparency key) comes out as RGBA, anything else as RGB.
    ValueError when the bytes are not a decodable image or the header declares more than `max_pixels` (never
    more than MAX_SOURCE_PIXELS): a few KB of PNG can declare a 64-megapixel canvas.
    """
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    native = (0, 0)
    try:
        with Image.open(io.BytesIO(data)) as img:
            native = img.size
            # Checked from the header, before a single pixel is decoded.
            if native[0] * native[1] > min(max_pixels, MAX_SOURCE_PIXELS):
                raise _TooLarge
            img.load()
            # EXIF orientation first, or a rotated JPEG would be cropped along the wrong axis.
            upright = ImageOps.exif_transpose(img)
            alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
            out = fit_cover(upright.convert("RGBA" if alpha else "RGB"), width, height)
    except _TooLarge:
        raise ValueError(
            f"image of {native[0]}x{native[1]} is too large (over {min(max_pixels, MAX_SOURCE_PIXELS)} pixels)"
        ) from None
    except _DECODE_ERRORS as exc:
        raise ValueError(f"image could not be decoded: {type(exc).__name__}") from None
    return to_png(out), native


# Pillow's format names and the MIME types they produce.
_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
DEFAULT_QUALITY = 90


def encode_as(data: bytes, fmt: str, quality: int | None = None) -> tuple[bytes, str]:
    """The image re-encoded as `fmt` (png, jpeg or webp) and its MIME type; `quality` 0..100 for jpeg and webp.

    JPEG has no alpha: transparent pixels are laid on white, as a browser shows them on a blank page.
    ValueError for an unknown format or bytes that are not a decodable raster image.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; one of {sorted(_FORMATS)}")
    pil_format, mime = _FORMATS[fmt]
    native = (0, 0)
    try:
        with Image.open(io.BytesIO(data)) as img:
            native = img.size
            if native[0] * native[1] > MAX_SOURCE_PIXELS:
                raise _TooLarge
            if img.format == pil_format:
                return data, mime
            img.load()
            alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            out = img.convert("RGBA" if alpha else "RGB")
    except _TooLarge:
        raise ValueError(f"image of {native[0]}x{native[1]} is too large") from None
    except _DECODE_ERRORS as exc:
        raise ValueError(f"image could not be decoded: {type(exc).__name__}") from None
    if fmt == "jpeg" and out.mode == "RGBA":
        flat = Image.new("RGB", out.size, (255, 255, 255))
        flat.paste(out, mask=out.getchannel("A"))
        out = flat
    buf = io.BytesIO()
    if fmt == "png":
        out.save(buf, format=pil_format)
    else:
        out.save(buf, format=pil_format, quality=DEFAULT_QUALITY if quality is None else quality)
    return buf.getvalue(), mime
