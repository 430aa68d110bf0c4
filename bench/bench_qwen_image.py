"""Benchmark the Qwen-Image engine: load time, seconds per image, peak memory.

    python bench/bench_qwen_image.py --weights /models/Qwen-Image --size 1328x1328 --steps 50
    python bench/bench_qwen_image.py --weights /models/Qwen-Image --lightning-lora /models/lightning-8step.safetensors
    python bench/bench_qwen_image.py --tiny               # random tiny pipeline in a temp dir: CPU smoke test
    python bench/bench_qwen_image.py --real-shapes [...]  # no weights: bench/bench_qwen_shapes.py, every memory plan

Peak memory is CUDA max allocated per size on a GPU, the process's max RSS on CPU (a high-water mark that only grows).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.qwen_image import QwenImageEngine, QwenOptions  # noqa: E402
from models.qwen_image.__main__ import parse_size  # noqa: E402
from models.qwen_image.memory import OFFLOAD_MODES  # noqa: E402

_GIB = 1024**3


@dataclass(frozen=True)
class Row:
    size: str
    native: str
    steps: int
    cfg: float
    first_s: float
    mean_s: float
    min_s: float
    peak_gib: float

    @property
    def ms_per_step(self) -> float:
        return self.mean_s / self.steps * 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="local Qwen-Image pipeline folder")
    source.add_argument("--tiny", action="store_true", help="build and use a random tiny pipeline")
    parser.add_argument("--size", action="append", help="WxH, repeatable (default 1328x1328; 64x64 with --tiny)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 50, or 8 with a Lightning LoRA)")
    parser.add_argument("--guidance", type=float, help="true_cfg_scale (default 4.0, or 1.0 with a Lightning LoRA)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size, after one untimed first run")
    parser.add_argument("--lightning-lora", type=Path, help="Lightning LoRA file or folder")
    parser.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    parser.add_argument("--cpu-offload", choices=OFFLOAD_MODES, default="auto")
    parser.add_argument("--compile", action="store_true", help="compile the transformer's repeated blocks")
    parser.add_argument("--policy", choices=["multiple", "recommended"], default="multiple")
    return parser.parse_args(argv)


def peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / _GIB
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / _GIB


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def bench_size(engine: QwenImageEngine, width: int, height: int, args: argparse.Namespace) -> Row:
    reset_peak(engine.device)
    times: list[float] = []
    result = None
    for run in range(args.runs + 1):
        started = time.perf_counter()
        result = engine.generate(
            "a lighthouse on a cliff at dusk", width, height, seed=run, steps=args.steps, guidance=args.guidance
        )
        if engine.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(engine.device)
        times.append(time.perf_counter() - started)
    assert result is not None
    timed = times[1:] or times
    return Row(
        size=f"{width}x{height}",
        native=f"{result.native_width}x{result.native_height}",
        steps=result.steps,
        cfg=result.guidance,
        first_s=times[0],
        mean_s=statistics.fmean(timed),
        min_s=min(timed),
        peak_gib=peak_gib(engine.device),
    )


def describe_device(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def print_table(rows: list[Row], header: str, load_s: float, device: str) -> None:
    memory = "peak CUDA GiB" if device.startswith("cuda") else "max RSS GiB"
    print(header)
    print(f"load: {load_s:.2f} s")
    columns = ["size", "native", "steps", "cfg", "first s", "s/image", "min s", "ms/step", memory]
    lines = [
        [
            r.size,
            r.native,
            str(r.steps),
            f"{r.cfg:g}",
            f"{r.first_s:.3f}",
            f"{r.mean_s:.3f}",
            f"{r.min_s:.3f}",
            f"{r.ms_per_step:.1f}",
            f"{r.peak_gib:.2f}",
        ]
        for r in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print("| " + " | ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--real-shapes" in argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_qwen_shapes import main as shapes_main

        return shapes_main([a for a in argv if a != "--real-shapes"])
    args = parse_args(argv)
    sizes = [parse_size(s) for s in (args.size or (["64x64"] if args.tiny else ["1328x1328"]))]
    options = QwenOptions(
        lightning_lora=args.lightning_lora,
        cpu_offload=args.cpu_offload,
        compile=args.compile,
        size_policy=args.policy,
    )
    with tempfile.TemporaryDirectory(prefix="qwen-tiny-") as tmp:
        if args.tiny:
            from models.qwen_image.tiny import build_tiny_pipeline

            weights = build_tiny_pipeline(Path(tmp) / "pipeline")
        else:
            weights = args.weights
        engine = QwenImageEngine(weights, options, device=args.device)
        rows = [bench_size(engine, w, h, args) for w, h in sizes]
        source = "tiny random pipeline" if args.tiny else str(weights)
        lora = f", Lightning LoRA {args.lightning_lora}" if args.lightning_lora else ""
        print_table(
            rows,
            f"Qwen-Image bench: {source}{lora} on {describe_device(engine.device)}, {args.runs} timed runs per size; "
            f"memory plan {engine.plan.summary()}",
            engine.load_seconds,
            engine.device,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
