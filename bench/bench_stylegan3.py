"""Throughput and memory of the StyleGAN3 generator: fp32 reference path vs fast path, at several batch sizes.

    python bench/bench_stylegan3.py --random 256 --channels 64          # random net, CPU or GPU
    python bench/bench_stylegan3.py --random 1024 --cfg t                # full-size T-1024 shape, random weights
    python bench/bench_stylegan3.py --network stylegan3-t-ffhq-1024x1024.pkl --batches 1,8,32

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


def bench(args: argparse.Namespace) -> list[Row]:
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
    for path in args.paths:
        fast = path == "fast"
        engine = StyleGAN3Engine.from_generator(
            generator, device=device, fast=fast, compile=fast and args.compile, precision=args.precision
        )
        for batch in args.batches:
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
                print(f"{path:>9} batch {batch}: out of memory", flush=True)
                torch.cuda.empty_cache()
                continue
            row = Row(path, batch, statistics.median(times), peak, grew)
            rows.append(row)
            print(f"  done {path} batch {batch}: {row.ms_per_image:.1f} ms/image", file=sys.stderr, flush=True)
    return rows


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
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--network", help="network pickle (.pkl), our folder or .safetensors")
    source.add_argument("--random", type=int, metavar="RES", help="random-init network of this resolution")
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
    rows = bench(args)
    print(table(rows, cuda=bool(rows) and (args.device == "cuda" or (args.device is None and _has_cuda()))))
    return 0


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    raise SystemExit(main())
