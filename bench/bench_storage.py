"""What saving and reading an image costs on each storage stack, side by side in one run.

    .venv/bin/python bench/bench_storage.py [--images 200] [--bytes 300000]

Rows: folder + SQLite (the embedded default) and S3 + PostgreSQL, with a throwaway PostgreSQL and moto_server
started here on loopback (moto is an in-process Python mock, far slower per request than a real S3, and a network
hop to a real one adds its own latency: read the S3 rows as "our code + a slow local S3", not as AWS). Each: `save`
(object, then row) at concurrency 1 and 8, a 20-row history page, a keyset walk of every page, and an image read
back whole through the service. Prints p50/p99 ms per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cascade.config import StorageArgs  # noqa: E402
from cascade.images import ImageService, NewImage  # noqa: E402
from cascade.index import Cursor  # noqa: E402
from tests.services.postgres import PostgresServer  # noqa: E402
from tests.services.s3 import MotoServer  # noqa: E402


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _image(i: int, size: int) -> NewImage:
    return NewImage(
        data=os.urandom(size),
        mime="image/png",
        prompt=f"bench prompt {i} a lighthouse at dusk",
        negative_prompt=None,
        width=512,
        height=512,
        seed=i,
        backend="pillow",
        provider="pillow",
        attempts=[{"backend": "pillow", "outcome": "ok", "error": None, "elapsed_ms": 12.0}],
        request_id=f"bench-{i}",
    )


async def _timed(calls: list[Callable[[], Awaitable[object]]], concurrency: int) -> list[float]:
    samples: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            started = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one(c) for c in calls))
    return samples


async def _save(svc: ImageService, image: NewImage) -> None:
    outcome = await svc.save(image)
    if outcome.error:
        raise RuntimeError(outcome.error)


async def _stack(name: str, args: StorageArgs, folder: Path, images: int, size: int) -> list[tuple[str, list[float]]]:
    svc = ImageService.open(args, folder, {})
    rows: list[tuple[str, list[float]]] = []
    try:
        await svc.ready()
        for concurrency in (1, 8):
            batch = [_image(i, size) for i in range(images)]
            samples = await _timed([lambda image=image: _save(svc, image) for image in batch], concurrency)
            rows.append((f"{name}: save (object + row), c={concurrency}", samples))
        pages = await _timed([lambda: svc.page(20, None, None, None) for _ in range(50)], 1)
        rows.append((f"{name}: first history page (20 rows)", pages))

        async def walk() -> None:
            after: Cursor | None = None
            while True:
                page = await svc.page(100, after, None, "lighthouse")
                if page.next is None:
                    return
                after = page.next

        rows.append((f"{name}: walk every page, q=lighthouse (100/page)", await _timed([walk for _ in range(5)], 1)))
        names = [g.object_key for g in (await svc.page(50, None, None, None)).items]

        async def read(name_: str) -> None:
            opened = await svc.open_object(name_, None, None)
            async for _ in svc.chunks(opened):
                pass

        rows.append((f"{name}: read one image whole", await _timed([lambda n=n: read(n) for n in names], 1)))
    finally:
        svc.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=300_000, help="image size (a 1024x1024 Pillow PNG is ~1 MB)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cascade-bench-storage-"))
    pg, s3 = PostgresServer().start(), MotoServer().start()
    try:
        os.environ.update(s3.env)
        stacks = {
            "folder+sqlite": StorageArgs(url=str(tmp / "images"), database_url=f"sqlite:///{tmp / 'index.sqlite3'}"),
            "s3+postgres": StorageArgs(url=f"s3://{s3.create_bucket()}/images", database_url=pg.create_database()),
        }
        rows: list[tuple[str, list[float]]] = []
        for name, storage in stacks.items():
            rows += asyncio.run(_stack(name, storage, tmp, args.images, args.bytes))
    finally:
        s3.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; {args.images} images of {args.bytes} bytes per save row\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'operation'.ljust(width)} |    n |   p50 ms |   p99 ms |")
    print(f"|{'-' * (width + 2)}|------|----------|----------|")
    for label, samples in rows:
        print(f"| {label.ljust(width)} | {len(samples):4d} | {_pct(samples, 0.5):8.2f} | {_pct(samples, 0.99):8.2f} |")


if __name__ == "__main__":
    main()
