"""Qwen-Image at its real shapes with random weights: seconds per step for each memory plan, no download needed.

    python bench/bench_qwen_shapes.py                       # on a GPU: every plan, 1328² and 1664×928, CFG on/off
    python bench/bench_qwen_shapes.py --compile both --steps 4 --cards 24,48,80
    python bench/bench_qwen_shapes.py --smoke               # shrunken shapes on the CPU: checks the script runs

The transformer, text encoder and VAE are built from the published configs (models.qwen_image.published) with their
parameters on the meta device, then materialised straight onto the device their plan gives them, filled with
N(0, 0.02) noise: compute and memory traffic are the real model's, the images are noise. Each card in --cards is
emulated on the one GPU by capping this process's CUDA allocator (torch.cuda.set_per_process_memory_fraction) at that
card's memory, and planned by the same `choose_plan` the replicas use. Placements repeat across cards (80 and 141 GB
both keep everything resident), so each distinct plan is measured once, on the smallest card that gets it. Compile is
measured only where the replicas use it (not with leaf-level offloading). The tokenizer is the byte-level one from
models.qwen_image.tiny (prompts come out a little longer in tokens than with the real vocabulary).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.qwen_image import published  # noqa: E402
from models.qwen_image.hostmem import available_bytes  # noqa: E402
from models.qwen_image.memory import GIB, ComponentSizes, PlanInputs, PlanRefused, choose_plan  # noqa: E402

# nvidia-smi totals (MiB) of the cards the README's table covers.
CARDS_MIB = {24: 24_564, 40: 40_960, 48: 49_140, 80: 81_559, 141: 143_771}
SIZES = ((1328, 1328), (1664, 928))
PROMPT = "a lighthouse on a cliff at dusk, storm clouds, cinematic"
# Small enough for a CPU, same component classes and code paths.
SMOKE = {
    "transformer": {**published.TRANSFORMER, "num_layers": 2, "num_attention_heads": 2, "joint_attention_dim": 64},
    "vae": {**published.VAE, "base_dim": 8, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1},
    "text_encoder": {
        "text_config": {
            **published.TEXT_ENCODER["text_config"],
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
        },
        "vision_config": {**published.TEXT_ENCODER["vision_config"], "depth": 1, "out_hidden_size": 64},
        "vocab_size": 152064,
        "hidden_size": 64,
    },
}


@dataclass(frozen=True)
class Row:
    card: str
    plan: str
    compiled: bool
    size: str
    cfg: bool
    step_s: float
    image_s: float  # the measured run (its steps) end to end
    overhead_s: float
    peak_gib: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", default="24,40,48,80,141", help="card sizes in GB, from: 24, 40, 48, 80, 141")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="both")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per measured run (≥ 3)")
    parser.add_argument("--smoke", action="store_true", help="shrunken shapes on the CPU")
    return parser.parse_args(argv)


def build_pipeline(shapes: dict[str, dict[str, Any]], mode: str, device: str) -> Any:
    """Random-weight components materialised where `mode` keeps them, then placed as the replicas place them."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from models.qwen_image.loader import pick_dtype, place
    from models.qwen_image.tiny import build_tokenizer

    dtype = pick_dtype(device)
    resident = {"off": {"transformer", "vae", "text_encoder"}, "text_encoder": {"transformer", "vae"}}.get(mode, set())
    from accelerate import init_empty_weights

    # Parameters on the meta device (no memory); buffers and computed tables (rotary frequencies) stay real.
    with init_empty_weights(include_buffers=False):
        modules = {
            "transformer": QwenImageTransformer2DModel(**shapes["transformer"]),
            "vae": AutoencoderKLQwenImage(**shapes["vae"]),
            "text_encoder": Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**shapes["text_encoder"])).eval(),
        }
    for name, module in modules.items():
        target = device if name in resident else "cpu"
        for sub in module.modules():
            for key, param in list(sub._parameters.items()):
                if param is None:
                    continue
                # Noise made on the fastest device, then moved: filling 54 GiB on the CPU would take minutes.
                noise = torch.randn(param.shape, device=device, dtype=torch.float32).mul_(0.02)
                sub._parameters[key] = torch.nn.Parameter(noise.to(target, dtype), requires_grad=False)
        module.to(target)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=0.5, max_image_seq_len=8192, max_shift=0.9, shift=1.0,
        shift_terminal=0.02, time_shift_type="exponential", use_dynamic_shifting=True,
    )  # fmt: skip
    pipe = QwenImagePipeline(scheduler=scheduler, tokenizer=build_tokenizer(), **modules)
    pipe.set_progress_bar_config(disable=True)
    place(pipe, mode, device)
    return pipe


def measure(
    pipe: Any, width: int, height: int, cfg: bool, steps: int, device: str
) -> tuple[float, float, float, float]:
    """(seconds per step, seconds for the run, overhead seconds, peak GiB) of one run after an untimed one."""
    import torch

    from models.qwen_image.timing import from_stamps

    def run() -> tuple[float, list[float], float]:
        stamps: list[float] = []

        def on_step(_pipe: Any, _i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            return kwargs

        started = time.perf_counter()
        pipe(
            PROMPT,
            negative_prompt=" " if cfg else None,
            true_cfg_scale=4.0 if cfg else 1.0,
            width=width,
            height=height,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
            callback_on_step_end=on_step,
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return started, stamps, time.perf_counter()

    run()  # first run at this shape: lazy init, compilation, pinned-memory set-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started, stamps, ended = run()
    timing = from_stamps(started, stamps, ended, tokens=0, pixels=0, forwards=1, cold=False)
    if timing is None or timing.overhead_s is None:
        raise SystemExit("--steps must be at least 3")
    peak = torch.cuda.max_memory_allocated() / GIB if device.startswith("cuda") else float("nan")
    return timing.step_s, ended - started, timing.overhead_s, peak


def plans(cards: list[int], smoke: bool) -> list[tuple[str, str, float | None]]:
    """(card label, plan mode, allocator fraction) per distinct placement, smallest card first."""
    if smoke:
        return [("cpu", "off", None), ("cpu", "group", None)]
    import torch

    total = torch.cuda.mem_get_info()[1]
    seen: dict[str, tuple[str, str, float | None]] = {}
    for gb in sorted(cards):
        budget = min(CARDS_MIB[gb] * 1024**2, total)
        context = total - torch.cuda.mem_get_info()[0]
        inputs = PlanInputs("auto", budget - context, available_bytes(), ComponentSizes.published(), 4_200_000)
        try:
            plan = choose_plan(inputs)
        except PlanRefused as exc:
            print(f"{gb} GB: refused: {exc}")
            continue
        print(f"{gb} GB: {plan.summary()}")
        seen.setdefault(plan.mode, (f"{gb} GB", plan.mode, budget / total))
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        print("no GPU: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    shapes = SMOKE if args.smoke else {k: getattr(published, k.upper()) for k in ("transformer", "vae", "text_encoder")}
    sizes = ((256, 256), (320, 192)) if args.smoke else SIZES
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows: list[Row] = []
    for card, mode, fraction in plans([int(c) for c in args.cards.split(",")], args.smoke):
        if fraction is not None:
            torch.cuda.set_per_process_memory_fraction(fraction)
        for compiled in compiles:
            from models.qwen_image.loader import compile_transformer, compiles_with

            if compiled and not compiles_with(mode):
                print(f"{card} {mode}: not compiled (the replicas skip compile with leaf-level offloading)")
                continue
            pipe = build_pipeline(shapes, mode, device)
            if compiled:
                compile_transformer(pipe)
            for width, height in sizes:
                for cfg in (True, False):
                    step_s, image_s, overhead_s, peak = measure(pipe, width, height, cfg, args.steps, device)
                    rows.append(Row(card, mode, compiled, f"{width}x{height}", cfg, step_s, image_s, overhead_s, peak))
                    print(rows[-1], flush=True)
            del pipe
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
            torch._dynamo.reset()
    print_table(rows, device)
    return 0


def print_table(rows: list[Row], device: str) -> None:
    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"\nQwen-Image real shapes, random weights, on {name} (torch {torch.__version__})")
    columns = ["card", "plan", "compile", "size", "cfg", "s/step", "50 steps cfg s", "8 steps s", "peak GiB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    by_key = {(r.card, r.plan, r.compiled, r.size, r.cfg): r for r in rows}
    for r in rows:
        # Whole-image projections from the measured step time and encode/decode overhead: 50 steps with CFG (the
        # base model's default) and 8 without (the Lightning LoRA's; fused, it costs what the base model does).
        cfg_row = by_key.get((r.card, r.plan, r.compiled, r.size, True))
        plain_row = by_key.get((r.card, r.plan, r.compiled, r.size, False))
        base = f"{50 * cfg_row.step_s + cfg_row.overhead_s:.1f}" if cfg_row and r.cfg else ""
        fast = f"{8 * plain_row.step_s + plain_row.overhead_s:.1f}" if plain_row and not r.cfg else ""
        cells = [r.card, r.plan, "on" if r.compiled else "off", r.size, "on" if r.cfg else "off"]
        cells += [f"{r.step_s:.3f}", base, fast, f"{r.peak_gib:.1f}"]
        print("| " + " | ".join(cells) + " |")
    spread = [r.step_s for r in rows]
    if spread:
        print(f"(median s/step over all rows: {statistics.median(spread):.3f})")


if __name__ == "__main__":
    raise SystemExit(main())
