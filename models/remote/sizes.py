"""Map a requested size to what each provider accepts. Pure functions; the result is cover-cropped afterwards.

Aspect ratio matters most (a wrong ratio throws pixels away in the crop); among sizes of the same ratio the
smallest one that covers the request wins (no upscaling), else the largest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Size = tuple[int, int]

OPENAI_GPT_IMAGE_SIZES: tuple[Size, ...] = ((1024, 1024), (1536, 1024), (1024, 1536))
OPENAI_DALLE3_SIZES: tuple[Size, ...] = ((1024, 1024), (1792, 1024), (1024, 1792))
OPENAI_DALLE2_SIZES: tuple[Size, ...] = ((256, 256), (512, 512), (1024, 1024))

GEMINI_ASPECT_RATIOS: tuple[str, ...] = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")

FAL_NAMED_SIZES: dict[str, Size] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# Flux works on a 16-pixel grid; a custom size off the grid is rounded by the server in a direction we cannot know.
FAL_GRID = 16
FAL_MIN_SIDE = 256
FAL_MAX_SIDE = 2048


def _aspect_distance(width: int, height: int, other_w: float, other_h: float) -> float:
    return abs(math.log((width / height) / (other_w / other_h)))


def nearest_size(width: int, height: int, allowed: Sequence[Size]) -> Size:
    """The allowed size closest in aspect ratio; ties go to the smallest that covers the request, else the largest."""
    if not allowed:
        raise ValueError("no allowed sizes")

    def key(size: Size) -> tuple[float, int, int]:
        w, h = size
        covers = w >= width and h >= height
        # Round so that sizes of the same ratio tie exactly despite floating point.
        return (round(_aspect_distance(width, height, w, h), 9), 0 if covers else 1, w * h if covers else -w * h)

    return min(allowed, key=key)


def openai_sizes(model: str) -> tuple[Size, ...]:
    if model.startswith("dall-e-2"):
        return OPENAI_DALLE2_SIZES
    if model.startswith("dall-e"):
        return OPENAI_DALLE3_SIZES
    return OPENAI_GPT_IMAGE_SIZES


def openai_size(model: str, width: int, height: int) -> str:
    w, h = nearest_size(width, height, openai_sizes(model))
    return f"{w}x{h}"


def nearest_aspect_ratio(width: int, height: int, ratios: Sequence[str] = GEMINI_ASPECT_RATIOS) -> str:
    """The "W:H" ratio closest to width/height (log distance, so 2:1 and 1:2 are equally far from 1:1)."""

    def key(ratio: str) -> float:
        rw, rh = (int(part) for part in ratio.split(":"))
        return _aspect_distance(width, height, rw, rh)

    return min(ratios, key=key)


def _grid_up(side: int) -> int:
    return min(FAL_MAX_SIDE, max(FAL_MIN_SIDE, math.ceil(side / FAL_GRID) * FAL_GRID))


def fal_image_size(width: int, height: int) -> str | dict[str, int]:
    """A named size when the request is exactly one, else a custom `{width, height}` on flux's grid."""
    for name, size in FAL_NAMED_SIZES.items():
        if size == (width, height):
            return name
    # Rounding up keeps the result at least as large as the request, so the crop only ever shrinks it.
    return {"width": _grid_up(width), "height": _grid_up(height)}
