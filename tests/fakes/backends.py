"""Backends that misbehave on purpose, as real Serve deployments speaking the backend interface."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import serve

from cascade.access_config import AccessConfig
from cascade.config import CircuitArgs, GatewaySettings, JobArgs, Limits, Route, StorageArgs
from cascade.errors import BackendFailed
from cascade.types import ImageJob, ImageResult


def run_gateway(
    app: str,
    routes: Mapping[str, Route],
    backends: Mapping[str, Any],
    storage_dir: str | Path,
    *,
    left_out: Mapping[str, str] | None = None,
    board: Any = None,
    request_timeout_s: float = 30.0,
    circuit: CircuitArgs | None = None,
    storage: StorageArgs | None = None,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    jobs: JobArgs | None = None,
    public_base_url: str | None = None,
    replicas: int = 1,
    access: AccessConfig | None = None,
    http_host: str | None = None,
) -> None:
    """Deploy a gateway over `backends` (bound test deployments) at `/<app>`, chain = `routes` in order, then svg.

    `env`: extra environment variables for the gateway replica (e.g. the AWS ones an S3 store reads). A progress
    board (which holds the jobs) is made unless one is given. `access`: keys and limits; `http_host`: the host the
    gateway believes it serves on."""
    from deployments.gateway import Gateway
    from deployments.progress import ProgressBoard

    settings = GatewaySettings(
        order=(*routes, "svg"),
        routes=dict(routes),
        request_timeout_s=request_timeout_s,
        storage_dir=str(storage_dir),
        circuit=circuit or CircuitArgs(),
        limits=limits or Limits(),
        storage=storage or StorageArgs(),
        jobs=jobs or JobArgs(),
        public_base_url=public_base_url,
        access=access or AccessConfig(),
        http_host=http_host,
    )
    if board is None:
        board = ProgressBoard.options(name="progress").bind(settings.jobs)
    options: dict[str, Any] = {"name": "gateway", "num_replicas": replicas}
    if env:
        options["ray_actor_options"] = {"num_cpus": 1, "runtime_env": {"env_vars": dict(env)}}
    gateway = Gateway.options(**options).bind(settings, dict(backends), dict(left_out or {}), board)
    serve.run(gateway, name=app, route_prefix=f"/{app}", blocking=False)
    wait_running(app)


def wait_running(app: str, timeout_s: float = 90) -> None:
    """Block until a Serve app deployed with `blocking=False` is RUNNING; fail fast when it cannot deploy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = serve.status().applications.get(app)
        if status is not None and status.status == "RUNNING":
            return
        if status is not None and status.status == "DEPLOY_FAILED":
            raise RuntimeError(f"app {app} failed: {status.message}")
        time.sleep(0.2)
    raise TimeoutError(f"app {app} not RUNNING after {timeout_s} s")


def tiny_png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Fake:
    """`mode`: ok | raise | hang. Every call is logged to `journal` (one line each) so tests see what arrived."""

    def __init__(self, mode: str, journal: str) -> None:
        self.mode, self.journal = mode, Path(journal)

    def _note(self, text: str) -> None:
        with self.journal.open("a") as f:
            f.write(text + "\n")

    async def generate(self, job: ImageJob) -> ImageResult:
        self._note(f"called {job.prompt}")
        if self.mode == "raise":
            raise BackendFailed("weights exploded")
        if self.mode == "hang":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self._note("cancelled")
                raise
        return ImageResult(tiny_png(job.width, job.height), "image/png", job.width, job.height, job.seed, "fake")

    async def ping(self) -> None:
        self._note("ping")
