"""The CPU pool: a fast procedural generator, one core per replica, scaled by Serve's autoscaler.

Or, with `runs_in: gateway`, the same generator inside the gateway's own process: no hop, no copy of the image
between processes, at the price of sharing the gateway's cores (bench/RESULTS.md, "HTTP path").
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import Field
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica


class PillowArgs(BackendArgs):
    enabled: bool | Literal["auto"] = True
    timeout_s: float = Field(default=5.0, gt=0)
    # `pool`: a deployment of its own (below), scaled apart from the gateway. `gateway`: threads of each gateway
    # replica, one per core it may use; `deployment` is then unused and Pillow scales with the gateway.
    runs_in: Literal["pool", "gateway"] = "pool"
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2},
        max_ongoing_requests=4,
        max_queued_requests=64,
        ray_actor_options={"num_cpus": 1},
    )


class PillowGenerator:
    """The generator behind both placements; the PNG is made in a thread, so the caller's event loop stays free
    for health checks, cancellations and (in the gateway) other requests while numpy and zlib work."""

    def __init__(self, threads: int | None = None) -> None:
        from models.local.generate_cpu_image import generate_png
        from models.local.tuning import tune_malloc

        # A process that makes images: keeping freed buffers mapped saves thousands of page faults per image
        # (measured in bench/bench_pillow.py --tune-malloc).
        tune_malloc()
        self._generate_png = generate_png
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="pillow") if threads else None

    async def generate(self, job: ImageJob) -> ImageResult:
        # The caller's context goes along (as asyncio.to_thread does): the request id of any log line made there.
        make = contextvars.copy_context().run
        args = (self._generate_png, job.prompt, job.width, job.height, job.seed)
        data = await asyncio.get_running_loop().run_in_executor(self._threads, make, *args)
        return ImageResult(data, "image/png", job.width, job.height, job.seed, "pillow")

    def start(self, job: ImageJob) -> asyncio.Task[ImageResult]:
        """A call the fallback chain can await and cancel (a cancelled render still ends its thread: ~15 ms at 512²)."""
        return asyncio.ensure_future(self.generate(job))

    def check(self) -> None:
        if not self._generate_png("health", 64, 64, 0).startswith(b"\x89PNG"):
            raise RuntimeError("the Pillow generator did not produce a PNG")


def for_gateway() -> PillowGenerator:
    """`runs_in: gateway`: as many threads as this process may run on, as a pool replica per core would have."""
    try:
        cores = len(os.sched_getaffinity(0))  # Linux: the cores this process may run on, not the host's
    except AttributeError:  # macOS has no affinity
        cores = os.cpu_count() or 1
    return PillowGenerator(threads=cores)


@serve.deployment
class PillowBackend:
    def __init__(self, args: PillowArgs) -> None:
        start_replica("pillow", args.sentry)
        self._pillow = PillowGenerator()

    async def generate(self, job: ImageJob) -> ImageResult:
        return await self._pillow.generate(job)

    async def ping(self) -> None:
        return None

    async def check_health(self) -> None:
        self._pillow.check()
