"""Which size the model renders at, and how that becomes exactly the size the caller asked for."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from models.qwen_image.options import SizePolicy

if TYPE_CHECKING:
    from PIL import Image

# The model card's recommended sizes (width, height): the resolutions the model was trained around.
RECOMMENDED_SIZES: tuple[tuple[int, int], ...] = (
    (1328, 1328),
    (1664, 928),
    (928, 1664),
    (1472, 1104),
    (1104, 1472),
    (1584, 1056),
    (1056, 1584),
)


def round_to_multiple(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def native_size(width: int, height: int, multiple: int, policy: SizePolicy = "multiple") -> tuple[int, int]:
    """The (width, height) to render at: each side a multiple of `multiple` (the pipeline floors anything else)."""
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    if policy == "recommended":
        # Nearest aspect ratio on a log scale, so 2:1 and 1:2 are equally far from 1:1.
        target = math.log(width / height)
        w, h = min(RECOMMENDED_SIZES, key=lambda s: abs(math.log(s[0] / s[1]) - target))
        return round_to_multiple(w, multiple), round_to_multiple(h, multiple)
    return round_to_multiple(width, multiple), round_to_multiple(height, multiple)


def fit_cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale `image` to cover width×height (Lanczos) and crop the centre: no bars, no distortion."""
    from PIL import Image

    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    scaled_w = max(width, math.ceil(image.width * scale - 1e-9))
    scaled_h = max(height, math.ceil(image.height * scale - 1e-9))
    scaled = image.resize((scaled_w, scaled_h), Image.Resampling.LANCZOS)
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    return scaled.crop((left, top, left + width, top + height))


def to_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
