"""Which size the model renders at; `models.imaging.fit_cover` then makes it exactly the size the caller asked for."""

from __future__ import annotations

import math

from models.qwen_image.options import SizePolicy

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
