"""A planar float32 RGB canvas (3, h, w) with the few blending operations the scenes need.

Planar, not (h, w, 3): numpy's inner loops then run along whole rows instead of 3-element pixels, which makes
every blend several times faster, and Image.merge turns the planes into a PIL image without a transpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

RGB = tuple[float, float, float]


def mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def scale(c: Sequence[float], k: float) -> RGB:
    return (c[0] * k, c[1] * k, c[2] * k)


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _col(c: Sequence[float]) -> np.ndarray:
    return np.asarray(c, np.float32).reshape(3, 1, 1)


class Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.px = np.zeros((3, h, w), np.float32)
        self.s = float(min(w, h))  # the unit for sizes that must look alike in any aspect ratio

    def rows_gradient(self, stops: Sequence[tuple[float, Sequence[float]]], y0: int, y1: int) -> np.ndarray:
        """(3, y1-y0) colours interpolated between `stops` given as (fraction of the height, colour)."""
        y = np.arange(y0, y1, dtype=np.float32) / max(self.h - 1, 1)
        at = [p for p, _ in stops]
        return np.stack([np.interp(y, at, [c[k] for _, c in stops]) for k in range(3)]).astype(np.float32)

    def fill_rows(self, colours: np.ndarray, y0: int) -> None:
        self.px[:, y0 : y0 + colours.shape[1], :] = colours[:, :, None]

    def blend(self, alpha: np.ndarray, colour: Sequence[float] | np.ndarray, y0: int = 0, x0: int = 0) -> None:
        """Paint `colour` (RGB, or a (3, h, w) array) through `alpha` (h, w) with its top-left at (x0, y0)."""
        h, w = alpha.shape
        view = self.px[:, y0 : y0 + h, x0 : x0 + w]
        c = colour if isinstance(colour, np.ndarray) else _col(colour)
        view += (c - view) * alpha

    def add(self, alpha: np.ndarray, colour: Sequence[float], y0: int = 0, x0: int = 0) -> None:
        """Add light (glows, stars): brightens without ever darkening."""
        h, w = alpha.shape
        self.px[:, y0 : y0 + h, x0 : x0 + w] += _col(colour) * alpha

    def box(self, cx: float, cy: float, r: float) -> tuple[int, int, int, int]:
        """The canvas-clipped integer box (x0, y0, x1, y1) around a circle."""
        x0, y0 = max(0, int(cx - r) - 1), max(0, int(cy - r) - 1)
        x1, y1 = min(self.w, int(cx + r) + 2), min(self.h, int(cy + r) + 2)
        return x0, y0, max(x0, x1), max(y0, y1)

    def radial(self, cx: float, cy: float, r: float) -> tuple[np.ndarray, int, int]:
        """Distances to (cx, cy) over the clipped box of radius r, with the box's top-left."""
        x0, y0, x1, y1 = self.box(cx, cy, r)
        dx = np.arange(x0, x1, dtype=np.float32) - cx
        dy = np.arange(y0, y1, dtype=np.float32) - cy
        return np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2), x0, y0

    def disc(self, cx: float, cy: float, r: float, colour: Sequence[float], opacity: float = 1.0) -> None:
        d, x0, y0 = self.radial(cx, cy, r + 1)
        if d.size:
            self.blend(np.clip(r - d + 0.5, 0.0, 1.0) * opacity, colour, y0, x0)

    def glow(self, cx: float, cy: float, r: float, colour: Sequence[float], strength: float = 1.0) -> None:
        d, x0, y0 = self.radial(cx, cy, 2.5 * r)
        if d.size:
            self.add(np.exp(-((d / r) ** 2)) * strength, colour, y0, x0)

    def silhouette(
        self,
        profile: np.ndarray,
        top: Sequence[float],
        bottom: Sequence[float] | None = None,
        *,
        floor: int | None = None,
        shade: np.ndarray | None = None,
        shade_depth: float | None = None,
    ) -> None:
        """Fill everything below `profile` (a y per column) down to `floor`, anti-aliased along the edge.

        Colour runs from `top` at the highest point to `bottom` at the floor. `shade` (w,) scales it per column,
        all the way down, or only near the edge, fading out over `shade_depth` pixels below it.
        """
        floor = self.h if floor is None else floor
        y0 = max(0, int(np.floor(profile.min())))
        if y0 >= floor:
            return
        y_edge = min(floor, int(np.ceil(profile.max())) + 1)
        colours = self.rows_gradient(((y0 / self.h, top), (floor / self.h, bottom or top)), y0, floor)
        # Rows down to `y_blend` are blended (edge, fading shade); the rest are filled flat, which is cheaper.
        y_blend = y_edge if shade is None or shade_depth is None else min(floor, y_edge + int(shade_depth))
        if y_blend > y0:
            rows = np.arange(y0, y_blend, dtype=np.float32)[:, None]
            below = rows - profile[None, :]
            band = colours[:, : y_blend - y0, None]
            if shade is not None and shade_depth is not None:
                band = band * (1.0 + (shade - 1.0) * np.clip(1.0 - below / shade_depth, 0.0, 1.0))
            elif shade is not None:
                band = band * shade
            self.blend(np.clip(below + 0.5, 0.0, 1.0), band, y0)
        if floor > y_blend:
            rest = colours[:, y_blend - y0 :, None]
            self.px[:, y_blend:floor, :] = rest * shade if shade is not None and shade_depth is None else rest

    def upsample(self, low: Canvas, rows: int | None = None) -> None:
        """Fill the top `rows` rows (all by default) with `low`, a smaller canvas of smooth content, resized.

        Callers that will cover the rest of the picture anyway (water, ground) pass `rows` to skip resizing it.
        """
        rows = self.h if rows is None else max(0, min(self.h, rows))
        if rows == 0:
            return
        box = (0.0, 0.0, float(low.w), rows * low.h / self.h)
        for k in range(3):
            img = Image.fromarray(low.px[k])
            self.px[k, :rows] = np.asarray(img.resize((self.w, rows), Image.Resampling.BILINEAR, box=box))

    def soft(self, limit: int = 160) -> tuple[Canvas, float]:
        """A small canvas with this one's aspect for smooth layers (gradients, glows, clouds), and its scale.

        Smooth content drawn small and upsampled once costs a fraction of drawing it at full size.
        """
        f = min(1.0, limit / max(self.w, self.h))
        return Canvas(max(2, round(self.w * f)), max(2, round(self.h * f))), f

    def patch(self, x0: int, y0: int, x1: int, y1: int) -> Image.Image:
        """The box (x0, y0)-(x1, y1) as an 8-bit RGB image, for drawing on with ImageDraw."""
        planes = np.clip(self.px[:, y0:y1, x0:x1], 0.0, 255.0).astype(np.uint8)
        return Image.merge("RGB", [Image.fromarray(planes[k]) for k in range(3)])

    def put(self, image: Image.Image, x0: int, y0: int) -> None:
        """Write an RGB image (a patch drawn on) back with its top-left at (x0, y0)."""
        w, h = image.size
        for k, band in enumerate(image.split()):
            self.px[k, y0 : y0 + h, x0 : x0 + w] = np.asarray(band)

    def grade(self, gain: Sequence[float]) -> None:
        self.px *= _col(gain)

    def to_image(self) -> Image.Image:
        planes = np.clip(self.px, 0.0, 255.0).astype(np.uint8)
        return Image.merge("RGB", [Image.fromarray(planes[k]) for k in range(3)])
