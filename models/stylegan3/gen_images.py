"""Generate images like the release's `gen_images.py`, without its code or CUDA plugins.

python -m models.stylegan3.gen_images --network net.pkl --seeds 0-3 --trunc 0.7 [--class N]
    [--translate x,y] [--rotate deg] [--device cpu|cuda] --outdir out/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.stylegan3.engine import SampleSpec, StyleGAN3Engine, to_pil
from models.stylegan3.errors import BAD_FILE_ERRORS, one_line
from models.stylegan3.sampling import parse_seeds, parse_vec2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate images with a StyleGAN3 network.")
    parser.add_argument("--network", required=True, help="network pickle (.pkl), our folder or .safetensors")
    parser.add_argument("--seeds", required=True, type=parse_seeds, help="e.g. 0,1,5-8 (ranges inclusive)")
    parser.add_argument("--trunc", dest="psi", type=float, default=1.0, help="truncation psi (default 1)")
    parser.add_argument("--class", dest="class_idx", type=int, default=None, help="class (conditional networks)")
    parser.add_argument(
        "--noise-mode",
        choices=["const", "random", "none"],
        default="const",
        help="accepted for compatibility; StyleGAN3 has no noise inputs",
    )
    parser.add_argument("--translate", type=parse_vec2, default=(0.0, 0.0), help="x,y in image widths")
    parser.add_argument("--rotate", type=float, default=0.0, help="degrees")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")
    parser.add_argument("--reference", action="store_true", help="use the fp32 reference path instead of the fast one")
    parser.add_argument("--batch", type=int, default=8, help="images per forward")
    parser.add_argument("--outdir", required=True, type=Path)
    args = parser.parse_args(argv)

    try:
        engine = StyleGAN3Engine(
            args.network, device=args.device, fast=not args.reference, max_batch=max(1, args.batch)
        )
    except BAD_FILE_ERRORS as exc:  # a bad or hostile file: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if engine.c_dim and args.class_idx is None:
        parser.error("--class is required for a conditional network")
    if not engine.c_dim and args.class_idx is not None:
        print("warning: --class is ignored for an unconditional network", file=sys.stderr)
    class_idx = args.class_idx if engine.c_dim else None
    specs = [SampleSpec(seed, args.psi, class_idx, args.translate, args.rotate) for seed in args.seeds]
    args.outdir.mkdir(parents=True, exist_ok=True)
    for spec, image in zip(specs, engine.generate_batch(specs), strict=True):
        path = args.outdir / f"seed{spec.seed:04d}.png"
        to_pil(image).save(path)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
