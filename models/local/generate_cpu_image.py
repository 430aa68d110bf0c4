"""The Pillow backend's model: a prompt-aware procedural painter that needs no weights and no GPU.

It reads colour, scene and subject words from the prompt (models.local.procedural.prompt), paints a sky and terrain
layers with numpy, draws a simple figure for subjects such as "robot" or "cat", and falls back to an abstract
composition coloured by the prompt. Output is deterministic per (prompt, seed, size).

Run as a script it speaks the seed's protocol: one JSON object on stdin (`prompt`, optional `size` "WxH" and
`seed`), one JSON object on stdout with `dataUri`; bad input gives `{"error": ...}` and exit code 2 (models.protocol).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as `python models/local/generate_cpu_image.py`: put the repository root on the path for `models.*`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import dataclasses
import hashlib
import operator
from typing import Any, TextIO

import numpy as np
from PIL import Image

from models.datauri import encode_data_uri
from models.local.png import encode_png
from models.local.procedural import abstract
from models.local.procedural.canvas import Canvas
from models.local.procedural.prompt import Spec, read_prompt
from models.local.procedural.scenes import Scene, studio
from models.local.procedural.subjects import draw_subject
from models.protocol import optional_int, parse_size, required_str, run
from models.seeds import stable_seed

MIN_SIDE, MAX_SIDE = 64, 2048
DEFAULT_SIZE = "1024x1024"
# The fastest deflate: on these smooth images higher levels save little space for much more time.
PNG_LEVEL = 1
# Subjects that look lost in a studio get a sunny meadow when the prompt names no place.
_OUTDOOR = frozenset({"fox", "bird", "flower", "house", "tree"})


def _rng(prompt: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return np.random.default_rng([seed % 2**64, int.from_bytes(digest[:8], "little")])


def _grade(c: Canvas, spec: Spec) -> None:
    """Colour words that name no part of the picture tint all of it; mood words adjust it."""
    for tint in spec.tints[:2]:
        mean = max(sum(tint) / 3, 1.0)
        c.grade([0.72 + 0.28 * v / mean for v in tint])
    if "dark" in spec.mods:
        c.grade((0.6, 0.6, 0.66))
    if "pastel" in spec.mods:
        c.px *= 0.65
        c.px += 95.0
    if "vivid" in spec.mods:
        grey = c.px.mean(axis=0)
        c.px -= grey
        c.px *= 1.35
        c.px += grey


def render(prompt: str, width: int, height: int, seed: int) -> Image.Image:
    """An RGB image of exactly width×height that tries to show `prompt`; the same arguments give the same pixels."""
    width, height, seed = operator.index(width), operator.index(height), operator.index(seed)
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    spec = read_prompt(prompt)
    if spec.subject in _OUTDOOR and not spec.layers and spec.time is None:
        spec = dataclasses.replace(spec, layers=frozenset({"hills"}), time="day")
    rng = _rng(prompt, seed)
    canvas = Canvas(width, height)
    if spec.abstract:
        # The style follows the prompt, not the seed, so one prompt keeps its look across seeds.
        abstract.paint(canvas, spec, rng, style=stable_seed(prompt) % len(abstract.STYLES))
    elif not spec.layers and spec.time is None:
        studio(canvas, spec, rng)
        cx = canvas.w * (0.5 + rng.uniform(-0.05, 0.05))
        draw_subject(canvas, spec, rng, cx=cx, feet_y=canvas.h * 0.93, height=canvas.h * 0.66, ambient=(1.0, 1.0, 1.0),
                     night=False)  # fmt: skip
    else:
        scene = Scene(canvas, spec, rng)
        stage = scene.paint()
        cx = canvas.w * (0.5 + rng.uniform(-0.12, 0.12))
        draw_subject(canvas, spec, rng, cx=cx, feet_y=stage.feet_y, height=stage.height, ambient=stage.ambient,
                     night=stage.night)  # fmt: skip
        if stage.snowy:
            scene.snowfall()
    _grade(canvas, spec)
    return canvas.to_image()


def generate_png(prompt: str, width: int, height: int, seed: int) -> bytes:
    """`render` encoded as PNG (fast deflate; a standard file any decoder reads)."""
    return encode_png(render(prompt, width, height, seed), level=PNG_LEVEL)


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """The script protocol without the I/O: a request object in, the answer object out (BadRequest when bad)."""
    prompt = required_str(request, "prompt")
    width, height = parse_size(request.get("size", DEFAULT_SIZE), MIN_SIDE, MAX_SIDE)
    seed = optional_int(request, "seed", min_value=0, max_value=2**63 - 1)
    if seed is None:
        seed = stable_seed(prompt)
    png = generate_png(prompt, width, height, seed)
    return {"dataUri": encode_data_uri("image/png", png), "seed": seed}


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Script entry: 0 with `{"dataUri": ...}`, 2 with `{"error": ...}` for bad input, 1 if rendering failed."""
    return run(handle, stdin, stdout)


if __name__ == "__main__":
    sys.exit(main())
