"""What the access checks add to one request, side by side in one run.

    .venv/bin/python bench/bench_limits.py [--requests 2000]

One "request" here is what the gateway will do around a generation: authenticate the key (a cache hit after
the first), `admit` (rate + daily images + concurrency), one capped backend slot taken and given back, a
spend hold settled, `finish`. Rows: the in-process store, a real redis-server on loopback (started here), and
a Redis that is down (fail_open: after the first failure, requests skip Redis for `retry_s`). Each at
concurrency 1 and 16. Prints p50/p99 ms per request and requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cascade.keys import Authenticator, MemoryKeyStore, create_key  # noqa: E402
from cascade.limits.guard import Caller, Guard, LimitPolicy  # noqa: E402
from cascade.limits.memory import MemoryLimitStore  # noqa: E402
from cascade.limits.prices import PriceTable  # noqa: E402
from cascade.limits.quota import Quota  # noqa: E402
from cascade.limits.redis_store import RedisLimitStore  # noqa: E402
from cascade.limits.store import LimitStore  # noqa: E402
from tests.services.redis_server import free_port, redis_server  # noqa: E402

ROOMY = Quota(rate_per_s=1e6, burst=1_000_000, max_concurrency=10_000, daily_images=10**9, daily_spend_usd=1e6)
PRICES = PriceTable.from_usd({"openai:gpt-image-1.5": 0.04, "fal:*": 0.003})


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(open_store: Callable[[], LimitStore], requests: int, concurrency: int) -> tuple[list[float], float]:
    keys = MemoryKeyStore()
    record, key = await create_key(keys, "bench", quota=ROOMY)
    auth = Authenticator(keys)
    store = open_store()
    guard = Guard(store, LimitPolicy(backend_caps={"qwen_image": 10_000}, prices=PRICES))
    headers = {"authorization": f"Bearer {key}"}
    latencies: list[float] = []
    counter = iter(range(requests))

    async def one() -> None:
        who = Caller((await auth.authenticate(headers)).id, record.quota)
        admission = await guard.admit(who)
        slot = await guard.backend_slot("qwen_image")
        if slot is not None:
            await guard.release_slot(slot)
        hold = await guard.hold_spend(who)
        if hold is not None:
            await guard.settle_spend(hold, "fal:fal-ai/flux/schnell")
        await guard.finish(admission, images_made=1)

    async def worker() -> None:
        for _ in counter:
            started = time.perf_counter()
            try:
                await one()
            except Exception:  # the down-Redis row: spend fails closed, by design
                pass
            latencies.append((time.perf_counter() - started) * 1000)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, 50))))  # warm
        counter = iter(range(requests))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, requests / (time.perf_counter() - started)
    finally:
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; {args.requests} requests per row\n")
    print(f"| {'store':<34} |   c |   p50 ms |   p99 ms |    req/s |")
    print(f"|{'-' * 36}|-----|----------|----------|----------|")
    with redis_server() as server:
        memory = MemoryLimitStore()
        rows: list[tuple[str, Callable[[], LimitStore]]] = [
            ("in process (one replica)", lambda: memory),
            ("Redis on loopback", lambda: RedisLimitStore.from_url(server.url, timeout_s=2.0)),
            (
                "Redis down, fail_open (spend refused)",
                lambda: RedisLimitStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.25, retry_s=60),
            ),
        ]
        for concurrency in (1, 16):
            for name, open_store in rows:
                latencies, rate = asyncio.run(_run(open_store, args.requests, concurrency))
                p50, p99 = _pct(latencies, 0.5), _pct(latencies, 0.99)
                print(f"| {name:<34} | {concurrency:3d} | {p50:8.3f} | {p99:8.3f} | {rate:8.0f} |")


if __name__ == "__main__":
    main()
