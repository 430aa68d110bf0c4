"""Turn whatever image a provider sent into a PNG of exactly the requested size (cover: scale, then centre-crop)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from models.remote.errors import ProviderBadResponse

# Far above any provider's output (4K is ~16 MP) and below Pillow's own bomb limits.
MAX_SOURCE_PIXELS = 64_000_000


def exact_png(data: bytes, width: int, height: int, provider: str = "") -> tuple[bytes, tuple[int, int]]:
    """PNG bytes of exactly `width`x`height`, and the source's native size. ProviderBadResponse if undecodable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            native = img.size
            # Checked from the header, before a single pixel is decoded.
            if native[0] * native[1] > MAX_SOURCE_PIXELS:
                raise ProviderBadResponse(f"image of {native[0]}x{native[1]} is too large", provider)
            img.load()
            out = _cover(img, width, height)
    except ProviderBadResponse:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ProviderBadResponse(f"image could not be decoded: {type(exc).__name__}", provider) from None
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue(), native


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    # EXIF orientation first, or a rotated JPEG would be cropped along the wrong axis.
    img = ImageOps.exif_transpose(img)
    mode = "RGBA" if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info else "RGB"
    img = img.convert(mode)
    if img.size == (width, height):
        return img
    return ImageOps.fit(img, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
