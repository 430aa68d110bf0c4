"""Cheap smooth noise: random grids summed over octaves at a small working size, then upsampled once."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Noise is smooth by construction, so computing it on at most this many pixels a side and upsampling loses nothing
# visible and keeps the cost flat whatever the output size.
_WORK = 96


def resize_field(grid: np.ndarray, w: int, h: int, *, cubic: bool = True) -> np.ndarray:
    """Resize a float32 (h', w') field to (h, w): bicubic, or bilinear (cheaper) for large upsamplings."""
    img = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32), mode="F")
    resample = Image.Resampling.BICUBIC if cubic else Image.Resampling.BILINEAR
    return np.asarray(img.resize((w, h), resample), dtype=np.float32)


def fractal2d(
    rng: np.random.Generator,
    w: int,
    h: int,
    *,
    cells: float = 3.0,
    octaves: int = 4,
    gain: float = 0.5,
    stretch: float = 1.0,
    work: int = _WORK,
) -> np.ndarray:
    """A (h, w) float32 field in [0, 1]. `cells` is the coarsest octave's cell count across the shorter side;
    `stretch` > 1 makes features wider than tall (clouds, waves); `work` caps the size the octaves are summed at."""
    aspect = w / h
    work_w = max(4, min(w, round(work * min(1.0, aspect))))
    work_h = max(4, min(h, round(work * min(1.0, 1 / aspect))))
    total = np.zeros((work_h, work_w), np.float32)
    amp = 1.0
    for octave in range(octaves):
        n = cells * 2**octave
        gw = max(2, round(n * max(1.0, aspect) / stretch))
        gh = max(2, round(n * max(1.0, 1 / aspect)))
        total += amp * resize_field(rng.random((gh, gw), dtype=np.float32), work_w, work_h)
        amp *= gain
    lo, hi = float(total.min()), float(total.max())
    total = (total - lo) / max(hi - lo, 1e-6)
    return total if (work_w, work_h) == (w, h) else resize_field(total, w, h)


def smooth1d(rng: np.random.Generator, n: int, *, points: int, octaves: int = 1, gain: float = 0.5) -> np.ndarray:
    """A (n,) float32 profile in about [-1, 1]: random knots joined by smoothstep curves, summed over octaves."""
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    amp, norm = 1.0, 0.0
    for octave in range(octaves):
        k = max(2, points * 2**octave)
        knots = rng.uniform(-1.0, 1.0, k + 1).astype(np.float32)
        t = x * k
        i = np.minimum(t.astype(np.int32), k - 1)
        f = t - i
        f = f * f * (3 - 2 * f)
        out += amp * (knots[i] * (1 - f) + knots[i + 1] * f)
        norm += amp
        amp *= gain
    return out / norm


def ridge1d(rng: np.random.Generator, n: int, *, points: int, octaves: int = 5) -> np.ndarray:
    """A (n,) float32 mountain profile in about [0, 1]: linear segments keep the peaks sharp, octaves add rock."""
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    amp, norm = 1.0, 0.0
    for octave in range(octaves):
        k = max(2, points * 2**octave)
        knots = rng.random(k + 1).astype(np.float32)
        out += amp * np.interp(x, np.linspace(0.0, 1.0, k + 1), knots).astype(np.float32)
        norm += amp
        amp *= 0.45
    return out / norm
