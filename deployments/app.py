"""The app builder named by `serve_config.yaml`: typed args in, a gateway bound to its backends out."""

# No `from __future__ import annotations` here: Ray Serve reads `build_app`'s annotation at run time to
# validate the config's args into AppArgs, and a string annotation would hand the builder a plain dict.

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray.serve import Application
from ray.serve.deployment import Deployment

from cascade.access_config import AccessConfig, QuotaConfig
from cascade.config import (
    BackendArgs,
    CircuitArgs,
    ClusterInfo,
    DeploymentOptions,
    GatewaySettings,
    JobArgs,
    Limits,
    Route,
    StorageArgs,
)
from deployments.gateway import Gateway
from deployments.pillow import PillowArgs, PillowBackend
from deployments.progress import ProgressBoard
from deployments.qwen_image import QwenImageArgs, QwenImageBackend
from deployments.remote import RemoteArgs, RemoteBackend
from deployments.script import ScriptArgs, ScriptBackend
from deployments.stylegan3 import StyleGAN3Args, StyleGAN3Backend

logger = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kind:
    deployment: Deployment
    remote: bool = False  # `local: true` requests never reach it
    reports_progress: bool = False  # posts its steps to the progress board (/healthz, job events)


# "svg" is not here: it runs inside the gateway and cannot be left out.
DEPLOYMENTS: dict[str, Kind] = {
    "stylegan3": Kind(StyleGAN3Backend),
    "qwen_image": Kind(QwenImageBackend, reports_progress=True),
    "pillow": Kind(PillowBackend),
    "script": Kind(ScriptBackend),
    "remote": Kind(RemoteBackend, remote=True),
}


class Backends(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stylegan3: StyleGAN3Args = Field(default_factory=StyleGAN3Args)
    pillow: PillowArgs = Field(default_factory=PillowArgs)
    qwen_image: QwenImageArgs = Field(default_factory=QwenImageArgs)
    script: ScriptArgs = Field(default_factory=ScriptArgs)
    remote: RemoteArgs = Field(default_factory=RemoteArgs)


class AppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order: list[str] = Field(default_factory=lambda: ["stylegan3", "qwen_image", "pillow", "remote", "svg"])
    backends: Backends = Field(default_factory=Backends)
    request_timeout_s: float = Field(default=180.0, gt=0)
    limits: Limits = Field(default_factory=Limits)
    # The folder store's folder (and the SQLite index's) when `storage` names no URL and the environment has none.
    storage_dir: str = "generated_images"
    storage: StorageArgs = Field(default_factory=StorageArgs)
    circuit: CircuitArgs = Field(default_factory=CircuitArgs)
    # API keys (auth: off | required), per-key and per-backend limits, prices, Sentry (README: "Keys and limits").
    access: AccessConfig = Field(default_factory=AccessConfig)
    jobs: JobArgs = Field(default_factory=JobArgs)
    # The base of the `url` answers of /v1/images/generations when clients reach the service through a proxy.
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    gateway: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(
            autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16},
            max_ongoing_requests=64,
            ray_actor_options={"num_cpus": 0.5},
        )
    )

    @model_validator(mode="after")
    def _order_is_known(self) -> "AppArgs":
        known = [*DEPLOYMENTS, "svg"]
        for name in self.order:
            if name not in known:
                raise ValueError(f"order: unknown backend {name!r}; known: {known}")
        if len(set(self.order)) != len(self.order):
            raise ValueError("order: a backend is listed twice")
        return self

    def backend(self, name: str) -> BackendArgs:
        return getattr(self.backends, name)


def cluster_info() -> ClusterInfo:
    import ray

    if not ray.is_initialized():
        ray.init()
    resources = ray.cluster_resources()
    return ClusterInfo(gpus=float(resources.get("GPU", 0)), cpus=float(resources.get("CPU", 0)))


def plan(args: AppArgs, cluster: ClusterInfo) -> tuple[dict[str, BackendArgs], dict[str, str]]:
    """Split the configured chain into what gets deployed and what is left out (with the reason)."""
    deployed: dict[str, BackendArgs] = {}
    left_out: dict[str, str] = {}
    for name in args.order:
        if name == "svg":
            continue
        backend = args.backend(name)
        reason = backend.unavailable_reason(cluster)
        if reason is None:
            deployed[name] = backend
        else:
            left_out[name] = reason
            logger.warning("backend %s left out: %s", name, reason)
    return deployed, left_out


def warn_unshared_limits(args: AppArgs, environ: Mapping[str, str]) -> str | None:
    """With limits in play and room for more than one gateway replica, each replica without CASCADE_REDIS_URL would
    keep its own count (N replicas, N times the limit). The builder may not see the replicas' environment (a cluster's
    head): a warning, not a refusal."""
    options = args.gateway
    replicas = (options.autoscaling_config or {}).get("max_replicas", options.num_replicas or 1)
    limits = args.access.limits
    limited = args.access.auth == "required" or limits.anonymous != QuotaConfig() or bool(limits.backend_caps)
    if replicas > 1 and limited and not (environ.get("CASCADE_REDIS_URL") or "").strip():
        message = (
            f"the gateway may run {replicas} replicas but CASCADE_REDIS_URL is not set here: replicas without it keep "
            "their limits each in its own memory, so every limit is multiplied by the number of replicas"
        )
        logger.warning(message)
        return message
    return None


def build_app(args: AppArgs) -> Application:
    warn_unshared_limits(args, os.environ)
    deployed, left_out = plan(args, cluster_info())
    # Always there: it holds /api/jobs as well as the backends' progress.
    board = ProgressBoard.options(name="progress").bind(args.jobs)
    handles: dict[str, Any] = {}
    pillow_in_gateway = "pillow" in deployed and args.backends.pillow.runs_in == "gateway"
    for name, backend in deployed.items():
        if name == "pillow" and pillow_in_gateway:
            continue  # the gateway makes its own (deployments/pillow.py, for_gateway)
        kind = DEPLOYMENTS[name]
        backend = backend.model_copy(update={"sentry": args.access.sentry})
        extra = (board,) if kind.reports_progress else ()
        handles[name] = kind.deployment.options(name=name, **backend.deployment.as_options()).bind(backend, *extra)
    settings = GatewaySettings(
        order=tuple(args.order),
        routes={
            name: Route(
                args.backend(name).timeout_s,
                args.backend(name).cold_start,
                DEPLOYMENTS[name].remote,
                args.backend(name).route_domain(),
            )
            for name in args.order
            if name != "svg"
        },
        request_timeout_s=args.request_timeout_s,
        # Relative to the project, not to wherever Ray happens to start the replica.
        storage_dir=str(PROJECT_ROOT / args.storage_dir),
        limits=args.limits,
        circuit=args.circuit,
        storage=args.storage,
        access=args.access,
        jobs=args.jobs,
        public_base_url=args.public_base_url,
        pillow_in_gateway=pillow_in_gateway,
    )
    return Gateway.options(name="gateway", **args.gateway.as_options()).bind(settings, handles, left_out, board)
