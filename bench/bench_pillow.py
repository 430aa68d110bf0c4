"""Speed of the Pillow backend's procedural generator on one core.

    .venv/bin/python bench/bench_pillow.py [--runs 40] [--sizes 512,1024] [--tune-malloc] [--per-prompt]

Pins itself to one CPU and to one thread in every numeric library (as a `num_cpus=1` replica would be), then times
`render` (the picture) and `generate_png` (picture + PNG encode) over a mix of prompts, a new seed each run.
Prints wall-clock p50/p90 and the thread's CPU time p50 (which a busy machine inflates less) in ms per image.
`--tune-malloc` applies `models.local.tuning.tune_malloc()` first, as a long-lived replica should.
"""

from __future__ import annotations

import os

# Before numpy loads: one thread, like a one-CPU replica.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.local.generate_cpu_image import generate_png, render  # noqa: E402
from models.local.tuning import tune_malloc  # noqa: E402

PROMPTS = (
    "a friendly robot",
    "sunset over the ocean",
    "a red fox in a snowy forest",
    "city at night",
    "galaxy",
    "purple mountains at dusk",
    "desert dunes",
    "a portrait of a woman",
    "red",
    "xyzzy plugh",
)


def _pin() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _time(fn: Callable[[str, int, int, int], object], prompts: tuple[str, ...], size: int, runs: int):
    for i in range(3):  # warm caches and the allocator
        fn(prompts[i % len(prompts)], size, size, i)
    wall: list[float] = []
    cpu: list[float] = []
    for i in range(runs):
        prompt = prompts[i % len(prompts)]
        w0, c0 = time.perf_counter(), time.thread_time()
        fn(prompt, size, size, 1000 + i)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return statistics.median(wall), _pct(wall, 0.9), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--tune-malloc", action="store_true")
    parser.add_argument("--per-prompt", action="store_true", help="also one row per prompt at the first size")
    args = parser.parse_args()

    pinned = _pin()
    tuned = tune_malloc() if args.tune_malloc else False
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {pinned}, malloc {'tuned' if tuned else 'default'}, "
          f"load average {load:.2f}, {args.runs} runs per row over {len(PROMPTS)} prompts")  # fmt: skip
    print(f"{'size':>9}  {'what':<13} {'wall p50':>9} {'wall p90':>9} {'cpu p50':>8}   (ms per image)")
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        for label, fn in (("render", render), ("render + PNG", generate_png)):
            p50, p90, cpu = _time(fn, PROMPTS, size, args.runs)
            print(f"{size:>4}x{size:<4}  {label:<13} {p50:9.1f} {p90:9.1f} {cpu:8.1f}")
    if args.per_prompt:
        size = sizes[0]
        print(f"\n{'prompt':<30} {'render+PNG p50':>15} {'cpu p50':>8}   ({size}x{size})")
        for prompt in PROMPTS:
            p50, _, cpu = _time(generate_png, (prompt,), size, max(5, args.runs // 4))
            print(f"{prompt:<30} {p50:15.1f} {cpu:8.1f}")


if __name__ == "__main__":
    main()
