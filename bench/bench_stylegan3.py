"""Throughput and memory of the StyleGAN3 generator: fp32 reference path vs fast path, at several batch sizes.

    python bench/bench_stylegan3.py --random 256 --channels 64          # random net, CPU or GPU
    python bench/bench_stylegan3.py --random 1024 --cfg t                # full-size T-1024 shape, random weights
    python bench/bench_stylegan3.py --network stylegan3-t-ffhq-1024x1024.pkl --batches 1,8,32
    python bench/bench_stylegan3.py --suite gpu [--profile]              # the GPU check, one run (see SUITE)

`--suite gpu` is the release-shaped GPU check in one process and one table: T-1024 and R-1024 with random weights
(speed does not need trained ones), at batch 1/8/32: the fp32 reference path, and the fast path in fp32 without
TF32, with TF32, in fp16 and bf16 (the last resolutions, as the release's num_fp16_res), and fp16 + torch.compile.
Rows print as they finish, so a run cut short still reports. `--profile` adds, per config, the ops that take the
most GPU time in one fast fp16 forward at batch 8 (filtered leaky ReLU is the usual hot spot).

Peak memory: `torch.cuda.max_memory_allocated` on GPU; on CPU the process's peak RSS (VmHWM, reset before each run
via /proc/self/clear_refs where Linux allows it, else the lifetime `ru_maxrss`), reported together with the RSS
growth during the run — tracemalloc is not used because it does not see torch's allocator.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    path: str
    batch: int
    ms_per_batch: float
    peak_mb: float
    grew_mb: float | None

    @property
    def ms_per_image(self) -> float:
        return self.ms_per_batch / self.batch

    @property
    def images_per_s(self) -> float:
        return 1000.0 * self.batch / self.ms_per_batch


def _proc_status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class MemoryProbe:
    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.cuda = device.type == "cuda"
        self.resettable = False
        self.before = 0.0

    def start(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
            self.torch.cuda.reset_peak_memory_stats(self.device)
            self.before = self.torch.cuda.memory_allocated(self.device) / 2**20
        else:
            self.resettable = _reset_cpu_peak()
            self.before = _proc_status_mb("VmRSS") or 0.0

    def peak(self) -> tuple[float, float | None]:
        """(peak MB, growth over the start MB)."""
        if self.cuda:
            peak = self.torch.cuda.max_memory_allocated(self.device) / 2**20
            return peak, peak - self.before
        hwm = _proc_status_mb("VmHWM") if self.resettable else None
        if hwm is None:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, None
        return hwm, hwm - self.before


def build_generator(args: argparse.Namespace) -> tuple[Any, str]:
    from models.stylegan3.generator import make_generator
    from models.stylegan3.loader import load_network
    from models.stylegan3.testing import random_generator

    if args.network:
        return load_network(args.network, device="cpu"), str(args.network)
    if args.channels:
        g = random_generator(args.cfg, resolution=args.random, channels=args.channels, seed=0)
        return g, f"random {args.cfg.upper()}-{args.random}, ≤{args.channels} channels"
    g = make_generator(args.cfg, img_resolution=args.random).eval().requires_grad_(False)
    return g, f"random {args.cfg.upper()}-{args.random}, release channel widths"


@dataclass(frozen=True)
class Variant:
    """One way of running the generator: path, precision of the fp16 layers, TF32, torch.compile."""

    path: str  # reference | fast
    precision: str = "fp32"  # auto | fp32 | fp16 | bf16
    tf32: bool | None = None  # None: what the engine chooses (on for the fast path on CUDA)
    compile: bool = False
    batches: tuple[int, ...] | None = None  # None: the run's --batches

    @property
    def label(self) -> str:
        tf32 = "" if self.tf32 is None else (" tf32" if self.tf32 else " no-tf32")
        return f"{self.path} {self.precision}{tf32}{' compiled' if self.compile else ''}"


# The GPU check (issue 8): every variant on T-1024 and R-1024. The reference path is the slow literal maths, so it
# runs at batch 1 and 8 only; compiling costs a warm-up per shape, so it runs at 8 and 32.
SUITE = (
    Variant("reference", "fp32", batches=(1, 8)),
    Variant("fast", "fp32", tf32=False),
    Variant("fast", "fp32", tf32=True),
    Variant("fast", "fp16", tf32=True),
    Variant("fast", "bf16", tf32=True, batches=(8, 32)),
    Variant("fast", "fp16", tf32=True, compile=True, batches=(8, 32)),
)


def bench(args: argparse.Namespace, variants: tuple[Variant, ...], cfg_label: str | None = None) -> list[Row]:
    """Each variant at each batch size; rows are labelled by path alone unless a config label is given."""
    import torch

    from models.stylegan3.engine import SampleSpec, StyleGAN3Engine
    from models.stylegan3.generator import default_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    generator, desc = build_generator(args)
    n_params = sum(p.numel() for p in generator.parameters())
    card = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"# {desc}: {generator.img_resolution}px, {n_params / 1e6:.2f} M params | device {device}{card}"
        f" | torch {torch.__version__}"
        f" | threads {torch.get_num_threads()} | iters {args.iters} (+{args.warmup} warm-up), median",
        flush=True,
    )
    rows: list[Row] = []
    probe = MemoryProbe(device)
    for variant in variants:
        fast = variant.path == "fast"
        engine = StyleGAN3Engine.from_generator(
            generator, device=device, fast=fast, compile=variant.compile, precision=variant.precision
        )
        if variant.tf32 is not None and device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant.tf32
        label = variant.path if cfg_label is None else f"{cfg_label}{variant.label}"
        for batch in variant.batches or args.batches:
            specs = [SampleSpec(seed=i, psi=0.7, class_idx=0 if generator.c_dim else None) for i in range(batch)]

            def run(specs: list[SampleSpec] = specs, engine: StyleGAN3Engine = engine) -> None:
                engine.generate_tensor(specs)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)

            try:
                for _ in range(args.warmup):
                    run()
                probe.start()
                times = []
                for _ in range(args.iters):
                    start = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - start) * 1000)
                peak, grew = probe.peak()
            except torch.OutOfMemoryError:
                print(f"{label:>9} batch {batch}: out of memory", flush=True)
                torch.cuda.empty_cache()
                continue
            row = Row(label, batch, statistics.median(times), peak, grew)
            rows.append(row)
            print(f"  done {label} batch {batch}: {row.ms_per_image:.1f} ms/image", file=sys.stderr, flush=True)
        del engine
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.profile:
        profile(generator, device)
    return rows


def profile(generator: Any, device: Any, batch: int = 8, top: int = 12) -> None:
    """The ops that take the most device time in one fast fp16 forward (CPU time on CPU)."""
    import torch
    from torch.profiler import ProfilerActivity

    from models.stylegan3.engine import SampleSpec, StyleGAN3Engine

    engine = StyleGAN3Engine.from_generator(generator, device=device, fast=True, precision="fp16")
    specs = [SampleSpec(seed=i, psi=0.7, class_idx=0 if generator.c_dim else None) for i in range(batch)]
    engine.generate_tensor(specs)  # warm-up (cuDNN autotuning)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with torch.profiler.profile(activities=activities, record_shapes=False) as prof:
        with torch.profiler.record_function("stylegan3_forward"):
            engine.generate_tensor(specs)
            if cuda:
                torch.cuda.synchronize(device)
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(f"\n# top ops, fast fp16 forward, batch {batch}, by {key}")
    print(prof.key_averages().table(sort_by=key, row_limit=top))


def table(rows: list[Row], cuda: bool) -> str:
    mem = "peak alloc MB" if cuda else "peak RSS MB"
    lines = [
        f"| path | batch | ms/batch | ms/image | images/s | {mem} | +MB during run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        grew = "n/a" if r.grew_mb is None else f"{r.grew_mb:.0f}"
        lines.append(
            f"| {r.path} | {r.batch} | {r.ms_per_batch:.1f} | {r.ms_per_image:.2f} | {r.images_per_s:.2f} "
            f"| {r.peak_mb:.0f} | {grew} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the StyleGAN3 generator (reference vs fast path).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--network", help="network pickle (.pkl), our folder or .safetensors")
    source.add_argument("--random", type=int, metavar="RES", help="random-init network of this resolution")
    parser.add_argument("--suite", choices=["gpu"], help="the GPU check: T and R, every variant (see above)")
    parser.add_argument("--profile", action="store_true", help="also print the top ops of one forward")
    parser.add_argument("--cfg", choices=["t", "r"], default="t", help="config of the random network")
    parser.add_argument("--channels", type=int, default=None, help="cap the random network's width (default: release)")
    parser.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes")
    parser.add_argument("--paths", default="reference,fast", help="comma-separated: reference, fast")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.suite and args.network:
        parser.error("--suite runs random networks of the release's shapes; it takes --random, not --network")
    if not (args.suite or args.network or args.random):
        parser.error("give --network, --random RES or --suite gpu")
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.paths = [p for p in args.paths.split(",") if p]
    if any(p not in ("reference", "fast") for p in args.paths):
        parser.error("--paths takes reference and/or fast")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # run as a script from anywhere: make the repository importable
        sys.path.insert(0, root)
    cuda = args.device == "cuda" or (args.device is None and _has_cuda())
    if args.suite == "gpu":
        rows = []
        for cfg in ("t", "r"):
            args.cfg, args.random = cfg, args.random or 1024
            rows += bench(args, SUITE, f"{cfg.upper()}-{args.random} ")
    else:
        variants = tuple(Variant(p, args.precision, compile=p == "fast" and args.compile) for p in args.paths)
        rows = bench(args, variants)
    print(table(rows, cuda=bool(rows) and cuda))
    return 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    raise SystemExit(main())
