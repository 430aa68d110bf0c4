"""What the access checks add to one request, side by side in one run.

    .venv/bin/python bench/bench_limits.py [--requests 2000]
    .venv/bin/python bench/bench_limits.py --http [--requests 300]

One "request" here is what the gateway will do around a generation: authenticate the key (a cache hit after
the first), `admit` (rate + daily images + concurrency), one capped backend slot taken and given back, a
spend hold settled, `finish`. Rows: the in-process store, a real redis-server on loopback (started here), and
a Redis that is down (fail_open: after the first failure, requests skip Redis for `retry_s`). Each at
concurrency 1 and 16. Prints p50/p99 ms per request and requests/s.

`--http`: the same over real HTTP through Serve, three gateways side by side (one replica each, the in-process SVG
step, so no backend's time hides the difference): auth off with no limits; a key with rate, concurrency and daily
images in process; the same in Redis. Their requests are interleaved in rounds so that a machine whose load changes
during the run shifts every row alike.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import os  # noqa: E402
import tempfile  # noqa: E402

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


HTTP_QUOTA = Quota(rate_per_s=1e6, burst=1_000_000, max_concurrency=10_000, daily_images=10**9)


async def _blast(call: Callable[[], Awaitable[object]], n: int, concurrency: int) -> tuple[list[float], float]:
    """`n` calls, `concurrency` at a time: each one's latency (ms), and the seconds the whole took."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for _ in counter:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _http(requests: int, rounds: int = 5) -> None:
    import httpx
    import ray
    from ray import serve

    from cascade.access_config import AccessConfig
    from cascade.config import StorageArgs
    from cascade.index import Index
    from cascade.keys.sql import SqlKeyStore
    from tests.fakes.backends import run_gateway

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}},
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING"})
    tmp = Path(tempfile.mkdtemp(prefix="cascade-bench-limits-"))
    with redis_server() as server:
        rows = [
            ("open", "auth off, no limits", "off", None),
            ("memory", "key + limits, in process", "required", None),
            ("redis", "key + limits, Redis on loopback", "required", server.url),
        ]
        targets: dict[str, tuple[str, dict[str, str]]] = {}
        for app, _, auth, redis in rows:
            database = f"sqlite:///{tmp / app / 'index.sqlite3'}"
            index = Index(database)
            index.migrate()
            _, key = asyncio.run(create_key(SqlKeyStore(index.engine), "bench", quota=HTTP_QUOTA))
            run_gateway(
                app,
                {},
                {},
                tmp / app,
                storage=StorageArgs(database_url=database),
                access=AccessConfig(auth=auth),  # type: ignore[arg-type]
                env={"CASCADE_REDIS_URL": redis} if redis else None,
                gateway_options={"num_replicas": 1, "max_ongoing_requests": 64},
            )
            url = f"http://127.0.0.1:{port}/{app}/api/generate/image"
            targets[app] = (url, {"authorization": f"Bearer {key}"})

        async def measure(concurrency: int) -> dict[str, tuple[list[float], float]]:
            latencies: dict[str, list[float]] = {app: [] for app in targets}
            seconds = dict.fromkeys(targets, 0.0)
            body = {"prompt": "bench", "size": "64x64", "backend": "svg"}
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
                for round_ in range(rounds + 1):  # round 0 warms up
                    for app, (url, headers) in targets.items():

                        async def one(url: str = url, headers: dict[str, str] = headers) -> None:
                            (await client.post(url, json=body, headers=headers)).raise_for_status()

                        batch, took = await _blast(one, requests // rounds if round_ else 20, concurrency)
                        if round_:
                            latencies[app] += batch
                            seconds[app] += took
            return {app: (latencies[app], len(latencies[app]) / seconds[app]) for app in targets}

        print(f"| {'over HTTP (SVG step, 1 replica)':<34} |   c |   p50 ms |   p99 ms |  req/s | p50 added |")
        print(f"|{'-' * 36}|-----|----------|----------|--------|-----------|")
        for concurrency in (1, 16):
            results = asyncio.run(measure(concurrency))
            floor = _pct(results["open"][0], 0.5)
            for app, name, _, _ in rows:
                measured, rate = results[app]
                p50, p99 = _pct(measured, 0.5), _pct(measured, 0.99)
                added = p50 - floor
                print(f"| {name:<34} | {concurrency:3d} | {p50:8.2f} | {p99:8.2f} | {rate:6.0f} | {added:+9.2f} |")
    serve.shutdown()
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="over real HTTP through Serve (default --requests 300)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.http:
        requests = args.requests if "--requests" in sys.argv else 300
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}; {requests} per row\n")
        _http(requests)
        return
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
