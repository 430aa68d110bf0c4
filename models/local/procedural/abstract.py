"""Abstract compositions for prompts the scene painter does not understand: still calm, coloured by the prompt."""

from __future__ import annotations

import colorsys

import numpy as np

from models.local.procedural.canvas import RGB, Canvas, mix, scale
from models.local.procedural.noise import fractal2d, smooth1d
from models.local.procedural.prompt import Spec


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (r * 255, g * 255, b * 255)


def palette(spec: Spec, rng: np.random.Generator) -> list[RGB]:
    """Five colours from dark to light: the prompt's colour words when it has some, a harmony otherwise."""
    named = list(spec.colours)
    if not named:
        hue = rng.random()
        spread = rng.choice([0.06, 0.1, 0.5, 0.33])
        named = [_hsv(hue, 0.7, 0.85), _hsv(hue + spread, 0.6, 0.95)]
    first = named[0]
    second = named[1] if len(named) > 1 else _hsv(colorsys.rgb_to_hsv(*(v / 255 for v in first))[0] + 0.07, 0.5, 0.9)
    third = named[2] if len(named) > 2 else mix(first, second, 0.5)
    return [scale(first, 0.25), scale(first, 0.65), first, third, mix(second, (255, 255, 255), 0.3)]


def _planes(colours: list[RGB], field: np.ndarray) -> np.ndarray:
    """Map a [0, 1] field through the colour ramp: (3, h, w)."""
    at = np.linspace(0.0, 1.0, len(colours))
    return np.stack([np.interp(field, at, [c[k] for c in colours]) for k in range(3)]).astype(np.float32)


def flow(c: Canvas, colours: list[RGB], rng: np.random.Generator) -> None:
    soft, f = c.soft()
    a = fractal2d(rng, soft.w, soft.h, cells=1.5, octaves=4)
    b = fractal2d(rng, soft.w, soft.h, cells=2.5, octaves=3)
    field = (0.5 + 0.5 * np.sin(a * rng.uniform(5.0, 9.0) + b * 3.0)) * 0.75 + a * 0.25
    soft.px[:] = _planes(colours, field)
    _orbs(c, soft, f, colours, rng, count=4, opacity=0.35)


def bands(c: Canvas, colours: list[RGB], rng: np.random.Generator) -> None:
    soft, _ = c.soft()
    soft.fill_rows(soft.rows_gradient(((0.0, colours[4]), (0.6, colours[3])), 0, soft.h), 0)
    soft.glow(soft.w * rng.uniform(0.2, 0.8), soft.h * rng.uniform(0.2, 0.4), soft.s * 0.3, colours[4], 0.4)
    c.upsample(soft)
    c.disc(c.w * rng.uniform(0.25, 0.75), c.h * rng.uniform(0.18, 0.38), c.s * rng.uniform(0.08, 0.16),
           mix(colours[4], (255, 255, 255), 0.5))  # fmt: skip
    layers = [colours[3], colours[2], colours[1], colours[0]]
    for i, colour in enumerate(layers):
        wave = smooth1d(rng, c.w, points=1 + i, octaves=2)
        profile = c.h * (0.45 + 0.14 * i) + wave * min(c.h * 0.08, c.s * 0.12)
        c.silhouette(profile, colour, scale(colour, 0.8))


def _orbs(
    c: Canvas, soft: Canvas, f: float, colours: list[RGB], rng: np.random.Generator, count: int, opacity: float
) -> None:
    """Translucent discs with a halo: the halos go on the small canvas, which is then upsampled, the discs on top."""
    orbs = []
    for _ in range(count):
        colour = colours[int(rng.integers(2, 5))]
        cx, cy, r = c.w * rng.random(), c.h * rng.random(), c.s * rng.uniform(0.05, 0.2)
        soft.glow(cx * f, cy * f, r * 1.6 * f, colour, 0.3)
        orbs.append((cx, cy, r, colour))
    c.upsample(soft)
    for cx, cy, r, colour in orbs:
        c.disc(cx, cy, r, colour, opacity)


def orbs(c: Canvas, colours: list[RGB], rng: np.random.Generator) -> None:
    soft, f = c.soft()
    t = (np.arange(soft.h, dtype=np.float32) / max(soft.h - 1, 1))[:, None] * 0.6 + (
        np.arange(soft.w, dtype=np.float32) / max(soft.w - 1, 1)
    )[None, :] * 0.4
    lo, hi = np.asarray(colours[0], np.float32), np.asarray(colours[2], np.float32)
    for k in range(3):
        soft.px[k] = hi[k] + (lo[k] - hi[k]) * t
    _orbs(c, soft, f, colours, rng, count=9, opacity=0.5)


STYLES = (flow, bands, orbs)


def paint(c: Canvas, spec: Spec, rng: np.random.Generator, style: int) -> None:
    STYLES[style % len(STYLES)](c, palette(spec, rng), rng)
