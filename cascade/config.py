"""Builder arguments shared by every backend: pydantic, validated when `serve_config.yaml` is loaded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cascade.access_config import AccessConfig, SentryConfig
from cascade.domain import Domain


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentOptions(_Strict):
    """Passed to `Deployment.options(...)` as is (None means Ray Serve's default)."""

    num_replicas: int | None = None
    autoscaling_config: dict[str, Any] | None = None
    max_ongoing_requests: int | None = None
    max_queued_requests: int | None = None
    # e.g. 1 for the gateway: its replicas spread over nodes, so one node going down leaves the others serving.
    max_replicas_per_node: int | None = Field(default=None, ge=1)
    ray_actor_options: dict[str, Any] = Field(default_factory=lambda: {"num_cpus": 1})
    health_check_period_s: float | None = None
    health_check_timeout_s: float | None = None
    graceful_shutdown_timeout_s: float | None = None

    def as_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}

    @property
    def num_gpus(self) -> float:
        return float(self.ray_actor_options.get("num_gpus", 0) or 0)


@dataclass(frozen=True)
class ClusterInfo:
    """What the builder knows about the cluster it deploys to."""

    gpus: float
    cpus: float


class BackendArgs(_Strict):
    """Settings every backend has. Subclasses add their model's settings and `missing()` checks."""

    enabled: bool | Literal["auto"] = "auto"
    timeout_s: float = Field(default=30.0, gt=0)
    # With no running replica (scaled to zero, still starting): `wait` for it, or `skip` at once and wake it.
    cold_start: Literal["wait", "skip"] = "wait"
    deployment: DeploymentOptions = Field(default_factory=DeploymentOptions)
    # Filled in by the app builder from the app's `access.sentry` (set that one, not this).
    sentry: SentryConfig | None = None

    def missing(self) -> str | None:
        """Why this backend cannot work whatever the cluster (no weights, no command...), or None."""
        return None

    def route_domain(self) -> Domain | None:
        """What this backend can draw, when it cannot draw just anything (the gateway skips other prompts)."""
        return None

    def unavailable_reason(self, cluster: ClusterInfo) -> str | None:
        """Why the builder leaves this backend out, or None to deploy it."""
        if self.enabled is False:
            return "disabled in config"
        if self.enabled is True:
            return None
        if self.deployment.num_gpus > cluster.gpus:
            return f"needs {self.deployment.num_gpus:g} GPU, the cluster has {cluster.gpus:g}"
        return self.missing()


class Limits(_Strict):
    """What a request may ask for."""

    max_prompt_chars: int = Field(default=4000, ge=1)
    min_side: int = Field(default=64, ge=1)
    max_side: int = Field(default=2048, ge=1)
    max_pixels: int = Field(default=4_200_000, ge=1)
    default_size: str = "1024x1024"
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # The whole body must arrive within this (408 otherwise): a client dripping bytes must not hold a request.
    body_read_timeout_s: float = Field(default=10.0, gt=0)


class CircuitArgs(_Strict):
    failure_threshold: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


class StorageArgs(_Strict):
    """Where images (objects) and their records (the index) go. A URL left unset comes from the gateway replica's
    environment, `CASCADE_STORAGE_URL` / `CASCADE_DATABASE_URL`, else the embedded default: the `storage_dir`
    folder and a SQLite file in it."""

    url: str | None = None  # a folder, file:///path, or s3://bucket/prefix
    database_url: str | None = None  # sqlite:///path or postgresql://user:pass@host/db?sslmode=require
    timeout_s: float = Field(default=10.0, gt=0, le=300)  # per save (object + row), per read, per health check
    redirect: bool = False  # /generated/<name> answers 307 to a presigned URL (S3 only)
    presign_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    sweep_interval_s: float = Field(default=600, gt=0)
    sweep_grace_s: float = Field(default=900, ge=60)  # an object younger than this may still be getting its row
    sweep_lookback_s: float = Field(default=24 * 3600, ge=0)  # how far back a replica's first sweep looks

    @field_validator("url")
    @classmethod
    def _known_store(cls, url: str | None) -> str | None:
        from cascade.store import parse_storage_url

        if url is not None:
            parse_storage_url(url)
        return url

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str | None) -> str | None:
        from cascade.index.urls import engine_url

        if url is not None:
            engine_url(url)
        return url

    @model_validator(mode="after")
    def _grace_outlasts_a_save(self) -> StorageArgs:
        if self.sweep_grace_s < 4 * self.timeout_s:
            raise ValueError("sweep_grace_s must be at least 4 x timeout_s: a save still under way is not an orphan")
        return self


class JobArgs(_Strict):
    """Jobs (`/api/jobs`): how long a silent gateway replica keeps its jobs, how long finished jobs stay."""

    lease_s: float = Field(default=10.0, gt=0)  # no heartbeat for this long: the replica's unfinished jobs are lost
    keep_s: float = Field(default=3600.0, gt=0)
    max_jobs: int = Field(default=10_000, ge=1)
    max_events: int = Field(default=1000, ge=10)  # per job; progress past it updates the job without an event
    events_heartbeat_s: float = Field(default=15.0, gt=0)  # an SSE comment this often keeps proxies from closing


@dataclass(frozen=True)
class Route:
    """How the gateway treats one backend of the chain."""

    timeout_s: float
    cold_start: Literal["wait", "skip"] = "wait"
    remote: bool = False  # `local: true` requests never reach it
    domain: Domain | None = None  # prompts outside it skip this backend unless the request names it


@dataclass(frozen=True)
class GatewaySettings:
    """What the gateway needs, built by the app builder (or by a test) from config."""

    order: tuple[str, ...]
    routes: dict[str, Route]
    request_timeout_s: float
    storage_dir: str
    limits: Limits = field(default_factory=Limits)
    storage: StorageArgs = field(default_factory=StorageArgs)
    circuit: CircuitArgs = field(default_factory=CircuitArgs)
    access: AccessConfig = field(default_factory=AccessConfig)
    # The host Serve's HTTP proxies bind, for the auth-off check; None: ask the Serve controller (tests set it).
    http_host: str | None = None
    jobs: JobArgs = field(default_factory=JobArgs)
    # Where clients reach this service (https://images.example.com): the base of `url` answers. None: the
    # request's own scheme and host.
    public_base_url: str | None = None
    # Pillow runs in the gateway replica itself instead of a deployment of its own (`runs_in: gateway`).
    pillow_in_gateway: bool = False
    built_at: float = field(default_factory=time.time)  # the models' `created` in /v1/models
