"""The CPU each part of Cascade's HTTP path costs per 512² image, measured alone in one process (no Ray, no HTTP).

Issue 14 asks where the time goes. Ray's own parts (the proxy hop, handle routing, an idle cluster) are measured by
bench/serve_floor.py; this script measures ours, the same code the gateway and the Pillow replica run:

- render + PNG: `models.local.generate_cpu_image.generate_png` (the Pillow replica's whole job);
- pickle: an `ImageResult` with that PNG, dumped and loaded (what a handle reply costs each side, at least);
- data URI: base64 of the PNG (`models.datauri.encode_data_uri`);
- JSON: the `GenerateResponse` written by pydantic (`model_dump_json`, as the gateway answers);
- save: `ImageService.save` on the embedded default (folder store with fsync, then a SQLite row);
- log line: one gateway chain line through a logging handler writing to a file, as Ray's replica log does.

Each row: wall and CPU milliseconds per call (median of `--runs`), CPU from `time.process_time` (all threads).
Run: `.venv/bin/python bench/path_parts.py [--runs 200] [--size 512x512] [--shared-bench ../shared/bench]`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `runs` calls, after 5 warm-up calls."""
    for _ in range(5):
        fn()
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpus.append((time.process_time() - c) * 1000)
        walls.append((time.perf_counter() - w) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--shared-bench", type=Path, default=ROOT.parent / "shared" / "bench")
    args = parser.parse_args()
    # The shared harness's own prompts (PNG sizes vary with them), so these parts match its requests.
    sys.path.insert(0, str(args.shared_bench))
    from load import PROMPTS

    width, height = map(int, args.size.split("x"))

    from cascade.config import StorageArgs
    from cascade.fallback import ChainResult
    from cascade.images import ImageService, NewImage
    from cascade.schemas import AttemptModel, GenerateResponse
    from cascade.types import Attempt, ImageResult
    from models.datauri import encode_data_uri
    from models.local.generate_cpu_image import generate_png

    # The largest PNG stands in for the answer below, so the per-byte parts are not under-counted.
    pngs = [generate_png(prompt, width, height, i) for i, prompt in enumerate(PROMPTS)]
    png = max(pngs, key=len)
    result = ImageResult(png, "image/png", width, height, 7, "pillow")
    attempts = (Attempt("pillow", "ok", None, 14.0),)
    chain = ChainResult(result, attempts, "pillow")
    data_uri = encode_data_uri(result.mime, result.data)
    answer = GenerateResponse(
        data_uri=data_uri,
        content="/generated/x.png",
        saved="/generated/x.png",
        image_id="0" * 32,
        provider="pillow",
        backend="pillow",
        width=width,
        height=height,
        seed=7,
        request_id="r" * 16,
        attempts=[AttemptModel.of(a) for a in chain.attempts],
    )
    rows: list[tuple[str, float, float]] = []
    wall, cpu = measure(lambda: [generate_png(p, width, height, 7) for p in PROMPTS], 10)
    rows.append(
        ("render + PNG (the Pillow replica's job), mean over the prompts", wall / len(PROMPTS), cpu / len(PROMPTS))
    )
    rows.append(
        ("pickle dumps + loads of the ImageResult", *measure(lambda: pickle.loads(pickle.dumps(result)), args.runs))
    )
    rows.append(
        ("data URI (base64 of the PNG)", *measure(lambda: encode_data_uri(result.mime, result.data), args.runs))
    )
    rows.append(("JSON answer (model_dump_json)", *measure(lambda: answer.model_dump_json(by_alias=True), args.runs)))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "generated_images"
        folder.mkdir()
        image = NewImage(
            data=png,
            mime="image/png",
            prompt="a lighthouse at dusk",
            negative_prompt=None,
            width=width,
            height=height,
            seed=7,
            backend="pillow",
            provider="pillow",
            attempts=[AttemptModel.of(a).model_dump() for a in attempts],
            meta={},
            request_id="r" * 16,
            api_key_id=None,
        )

        async def saves() -> tuple[float, float]:
            service = ImageService.open(StorageArgs(), folder, {})
            service.start()
            await service.save(image)
            walls, cpus = [], []
            for _ in range(args.runs):
                w, c = time.perf_counter(), time.process_time()
                outcome = await service.save(image)
                cpus.append((time.process_time() - c) * 1000)
                walls.append((time.perf_counter() - w) * 1000)
                if outcome.error:
                    raise SystemExit(f"save failed: {outcome.error}")
            service.close()
            return statistics.median(walls), statistics.median(cpus)

        rows.append(("save: folder (fsync) + SQLite row", *asyncio.run(saves())))

        log = logging.getLogger("bench.parts")
        log.propagate = False
        handler = logging.FileHandler(Path(tmp) / "replica.log")
        handler.setFormatter(
            logging.Formatter("%(levelname)s %(asctime)s %(name)s %(filename)s:%(lineno)d - %(message)s")
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        rows.append(
            ("one log line to a file", *measure(lambda: log.info("chain: %s key=%s", "pillow=ok", None), args.runs))
        )
        handler.close()

    sizes = f"PNG {min(map(len, pngs))}-{len(png)} bytes, answer {len(answer.model_dump_json(by_alias=True))} bytes"
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.2f}, {width}x{height}, {sizes}; median of {args.runs} runs (render: of 10 rounds)"
    )
    print("| part | wall ms | CPU ms |")
    print("|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
