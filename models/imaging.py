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
