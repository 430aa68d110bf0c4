"""How long a job will take on this replica, from its own measured runs. Pure: no torch, no clock.

A transformer forward costs `fixed + k · tokens · (tokens + 6 · hidden)`: the linear layers grow with the token count,
attention with its square (per block, 24·hidden² FLOPs per token in the linears, 4·hidden per token pair in
attention), and `fixed` covers what does not grow with the image (weights streamed over PCIe when offloading,
kernel launches). With runs at two sizes both terms are fitted; with one, the estimate is that run scaled up by the
cost ratio for larger images (an upper bound, since fixed ≥ 0) and that run's time for smaller ones (also an
upper bound). Encoding and decoding (`overhead`) are modelled the same way over pixels.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

# A new measurement of an already measured size moves the estimate halfway: quick to follow a change (another
# process on the GPU), not thrown by a single slow run.
_SMOOTHING = 0.5


@dataclass(frozen=True)
class RunTiming:
    """One finished run, from its step callbacks' timestamps. `overhead_s` None: not known (a cold first run)."""

    tokens: int
    pixels: int
    forwards: int  # transformer forwards per step: 2 with CFG, 1 without
    step_s: float
    overhead_s: float | None


def from_stamps(
    started: float, steps: list[float], ended: float, *, tokens: int, pixels: int, forwards: int, cold: bool
) -> RunTiming | None:
    """A RunTiming from the run's start, each step's end and the run's end (perf_counter seconds).

    The median step interval is the step time; everything else (text encoding before step 1, VAE decode after the
    last) is overhead. A cold run's first step pays for lazy initialisation and compilation, so its overhead is
    not kept. None when the run had too few steps to time one.
    """
    intervals = [b - a for a, b in itertools.pairwise(steps)]
    if not intervals:
        return None
    step_s = statistics.median(intervals)
    overhead = max(0.0, steps[0] - started - step_s) + max(0.0, ended - steps[-1])
    return RunTiming(tokens, pixels, forwards, step_s, None if cold else overhead)


def forward_cost(tokens: int, hidden: int) -> float:
    return float(tokens) * (tokens + 6 * hidden)


@dataclass(frozen=True)
class _Line:
    fixed: float
    slope: float


def _fit(points: dict[float, float]) -> _Line | None:
    """Least squares `fixed + slope·x` with both kept ≥ 0, from {x: seconds}; None with under two points."""
    if len(points) < 2:
        return None
    xs, ys = list(points), list(points.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = max(0.0, sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx) if sxx else 0.0
    fixed = my - slope * mx
    if fixed < 0:  # a line through the origin instead
        fixed, slope = 0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    return _Line(fixed, slope)


def _predict(points: dict[float, float], x: float) -> float | None:
    if not points:
        return None
    line = _fit(points)
    if line is None:
        [(x0, y0)] = points.items()
        return y0 * x / x0 if x > x0 and x0 > 0 else y0
    # Never below a measured run of a smaller (or equal) job: noisy runs can tilt a two-point fit the wrong way.
    floor = max((y for px, y in points.items() if px <= x), default=0.0)
    return max(line.fixed + line.slope * x, floor)


class SpeedModel:
    """Seconds per forward by token count and seconds of overhead by pixel count, from measured runs.

    Written by the engine's worker thread, read from the event loop: dictionaries are replaced, never mutated.
    """

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden
        self._forward: dict[float, float] = {}  # forward cost → seconds per forward
        self._overhead: dict[float, float] = {}  # pixels → seconds
        self.runs = 0

    def record(self, run: RunTiming) -> None:
        cost = forward_cost(run.tokens, self.hidden)
        self._forward = _merged(self._forward, cost, run.step_s / max(1, run.forwards))
        if run.overhead_s is not None:
            self._overhead = _merged(self._overhead, float(run.pixels), run.overhead_s)
        self.runs += 1

    @property
    def measured(self) -> bool:
        return bool(self._forward) and bool(self._overhead)

    def seconds_per_step(self, tokens: int, forwards: int) -> float | None:
        per_forward = _predict(self._forward, forward_cost(tokens, self.hidden))
        return None if per_forward is None else per_forward * forwards

    def estimate(self, tokens: int, pixels: int, steps: int, forwards: int) -> float | None:
        """Seconds for a whole job, or None before anything was measured."""
        per_step = self.seconds_per_step(tokens, forwards)
        overhead = _predict(self._overhead, float(pixels))
        if per_step is None or overhead is None:
            return None
        return steps * per_step + overhead


def _merged(points: dict[float, float], x: float, y: float) -> dict[float, float]:
    old = points.get(x)
    return {**points, x: y if old is None else old + _SMOOTHING * (y - old)}


def timeout_advice(
    default_s: float, lightning_s: float, timeout_s: float, *, default_steps: int, lightning: bool
) -> str | None:
    """Why the configured default job cannot finish within `timeout_s` and what would, or None when it can."""
    if default_s <= timeout_s:
        return None
    text = f"a default job ({default_steps} steps) takes ~{_secs(default_s)} s here, over timeout_s {timeout_s:g}"
    # A fifth more than the estimate: room for a slower run without declining the default job.
    fixes = [f"raise timeout_s to {math.ceil(default_s * 1.2)}"]
    if not lightning and lightning_s <= timeout_s:
        fixes.insert(0, f"use the 8-step Lightning LoRA (lightning_lora; ~{_secs(lightning_s)} s per job)")
    return f"{text}: " + " or ".join(fixes)


def _secs(seconds: float) -> str:
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
