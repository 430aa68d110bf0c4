"""The CPU pool: a fast procedural generator, one core per replica, scaled by Serve's autoscaler."""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica


class PillowArgs(BackendArgs):
    enabled: bool | Literal["auto"] = True
    timeout_s: float = Field(default=5.0, gt=0)
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2},
        max_ongoing_requests=4,
        max_queued_requests=64,
        ray_actor_options={"num_cpus": 1},
    )


@serve.deployment
class PillowBackend:
    def __init__(self, args: PillowArgs) -> None:
        start_replica("pillow", args.sentry)
        from models.local.generate_cpu_image import generate_png
        from models.local.tuning import tune_malloc

        # This process does nothing but make images: keeping freed buffers mapped saves thousands of page
        # faults per image (measured in bench/bench_pillow.py --tune-malloc).
        tune_malloc()
        self._generate_png = generate_png

    async def generate(self, job: ImageJob) -> ImageResult:
        # A thread keeps the replica's event loop free for health checks and cancellations while numpy works.
        data = await asyncio.to_thread(self._generate_png, job.prompt, job.width, job.height, job.seed)
        return ImageResult(data, "image/png", job.width, job.height, job.seed, "pillow")

    async def ping(self) -> None:
        return None

    async def check_health(self) -> None:
        if not self._generate_png("health", 64, 64, 0).startswith(b"\x89PNG"):
            raise RuntimeError("the Pillow generator did not produce a PNG")
