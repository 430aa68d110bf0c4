"""Map a requested size to what each model accepts (its catalogue `sizes`). Pure functions; the result is
cover-cropped to the request afterwards, so the native size keeps the request's aspect ratio as closely as the
model allows and covers it where it can (no upscaling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.remote.catalogue import Sizes

Size = tuple[int, int]

# Gemini's tiers, by the pixels of their 1:1 image (ai.google.dev image-generation guide: 1K 1024x1024,
# 2K 2048x2048, 4K 4096x4096; the other ratios hold about as many pixels).
GEMINI_TIER_SIDES: dict[str, int] = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}


def _aspect_distance(width: float, height: float, other_w: float, other_h: float) -> float:
    return abs(math.log((width / height) / (other_w / other_h)))


def _round_to(value: float, step: int, up: bool) -> int:
    return step * (math.ceil(value / step) if up else math.floor(value / step))


def grid_size(width: int, height: int, sizes: Sizes) -> Size:
    """The size on `sizes.grid` with the request's aspect ratio (clamped to `max_ratio`) and at least its pixels
    (within `min_pixels`..`max_pixels` and `max_side`): what OpenAI's GPT image models take as `size`."""
    step = sizes.grid or 1
    ratio = width / height
    if sizes.max_ratio:
        ratio = min(max(ratio, 1 / sizes.max_ratio), sizes.max_ratio)
    pixels = max(width * height, sizes.min_pixels)
    if sizes.max_pixels:
        pixels = min(pixels, sizes.max_pixels)
    w, h = math.sqrt(pixels * ratio), math.sqrt(pixels / ratio)
    if sizes.max_side and max(w, h) > sizes.max_side:
        scale = sizes.max_side / max(w, h)
        w, h = w * scale, h * scale
    # Up to the grid keeps the pixels; down where that would pass a bound.
    gw, gh = _round_to(w, step, up=True), _round_to(h, step, up=True)
    if (sizes.max_pixels and gw * gh > sizes.max_pixels) or (sizes.max_side and max(gw, gh) > sizes.max_side):
        gw, gh = _round_to(w, step, up=False), _round_to(h, step, up=False)
    return max(gw, step), max(gh, step)


def openai_size(sizes: Sizes, width: int, height: int) -> str:
    w, h = grid_size(width, height, sizes)
    return f"{w}x{h}"


def nearest_aspect_ratio(width: int, height: int, ratios: Sequence[str]) -> str:
    """The "W:H" ratio closest to width/height (log distance, so 2:1 and 1:2 are equally far from 1:1)."""
    if not ratios:
        raise ValueError("no aspect ratios")

    def key(ratio: str) -> float:
        rw, rh = (int(part) for part in ratio.split(":"))
        return _aspect_distance(width, height, rw, rh)

    return min(ratios, key=key)


def gemini_image_size(width: int, height: int, tiers: Sequence[str]) -> str | None:
    """The smallest tier holding at least the requested pixels, else the largest; None when the model has none."""
    known = sorted((t for t in tiers if t in GEMINI_TIER_SIDES), key=GEMINI_TIER_SIDES.__getitem__)
    if not known:
        return None
    for tier in known:
        if GEMINI_TIER_SIDES[tier] ** 2 >= width * height:
            return tier
    return known[-1]


def fal_image_size(width: int, height: int, sizes: Sizes) -> str | dict[str, int]:
    """A named size when the request is exactly one, else a custom `{width, height}` on the model's grid."""
    for name, size in sizes.named.items():
        if size == (width, height):
            return name
    step = sizes.grid or 1
    low, high = sizes.min_side, sizes.max_side or max(width, height)

    # Rounding up keeps the result at least as large as the request, so the crop only ever shrinks it.
    def side(value: int) -> int:
        return min(high, max(low, _round_to(value, step, up=True)))

    return {"width": side(width), "height": side(height)}
