"""Remote providers (OpenAI, Gemini, fal.ai) behind one CPU-light, autoscaled deployment."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica

if TYPE_CHECKING:
    from models.remote.config import ProviderConfig

Provider = Literal["openai", "gemini", "fal"]
logger = logging.getLogger("ray.serve")


class ProviderArgs(BaseModel):
    """Per-provider overrides; unset fields keep the vendor defaults (or `<PROVIDER>_BASE_URL`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    # A model from models/remote/catalogue.yaml; its options are checked against the catalogue at load.
    model: str | None = None
    # Default: what the catalogue says the model (with these options) takes.
    timeout_s: float | None = Field(default=None, gt=0)
    attempt_timeout_s: float | None = Field(default=None, gt=0)
    # Hosts its image URLs may point at ("cdn.example.com", "*.example.com", "*"); default: the catalogue's.
    image_hosts: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class RemoteArgs(BackendArgs):
    providers: list[Provider] = Field(default_factory=lambda: ["openai", "gemini", "fal"])
    overrides: dict[Provider, ProviderArgs] = Field(default_factory=dict)
    # A refusal ends the request with 422 (`stop`), or lets the next provider try (`continue`).
    on_refusal: Literal["stop", "continue"] = "stop"
    # Hosts whose plain-http image URLs are accepted (tests, an in-cluster proxy); https is always accepted.
    allow_http_hosts: list[str] = Field(default_factory=list)
    # Networks (CIDR) whose image addresses are not refused as private: tests and in-cluster proxies only.
    allow_private_networks: list[str] = Field(default_factory=list)
    # An image whose header declares more than max(min_pixel_cap, pixel_factor x requested pixels) is refused.
    pixel_factor: float = Field(default=4.0, gt=0)
    min_pixel_cap: int = Field(default=4 * 2**20, gt=0)
    # Default: every provider's try in turn (models.remote.catalogue.remote_timeout_s), so a slow first provider
    # still leaves the next its whole try. A config that sets it should keep to that sum (a test checks ours).
    timeout_s: float = Field(default=0.0, ge=0)
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16},
        max_ongoing_requests=64,
        max_queued_requests=256,
        ray_actor_options={"num_cpus": 0.1},
    )

    @model_validator(mode="after")
    def _check_models_and_time(self) -> RemoteArgs:
        # Built without keys: a retired model, an unknown one or a bad option fails here, when the config loads.
        derived = self.derived_timeout_s()
        if self.timeout_s == 0:
            object.__setattr__(self, "timeout_s", derived)
        return self

    def provider_configs(self, environ: Mapping[str, str]) -> list[ProviderConfig]:
        from models.remote.config import configs_from_env

        return configs_from_env(environ, self.providers, self.provider_overrides())

    def derived_timeout_s(self) -> float:
        from models.remote.catalogue import remote_timeout_s

        return remote_timeout_s(cfg.attempt_timeout_s or 0.0 for cfg in self.provider_configs({}))

    def missing(self) -> str | None:
        from models.remote.config import KEY_ENV, keys_from_env

        if keys_from_env(os.environ).keys() & set(self.providers):
            return None
        names = ", ".join("/".join(KEY_ENV[p]) for p in self.providers)
        return f"no provider key set ({names})"

    def provider_overrides(self) -> dict[str, dict[str, Any]]:
        shared: dict[str, Any] = {
            "allow_http_hosts": tuple(self.allow_http_hosts),
            "allow_private_networks": tuple(self.allow_private_networks),
            "pixel_factor": self.pixel_factor,
            "min_pixel_cap": self.min_pixel_cap,
        }
        out: dict[str, dict[str, Any]] = {}
        for name in self.providers:
            own = self.overrides[name].model_dump(exclude_none=True) if name in self.overrides else {}
            if "image_hosts" in own:
                own["image_hosts"] = tuple(own["image_hosts"])
            out[name] = {**shared, **own}
        return out


@serve.deployment
class RemoteBackend:
    def __init__(self, args: RemoteArgs) -> None:
        start_replica("remote", args.sentry)
        from models.remote.chain import new_client

        self.args = args
        # Keys are read here, in the replica, from its own environment: they never travel in config or args.
        self.providers = args.provider_configs(os.environ)
        for cfg in self.providers:
            if cfg.model_spec.deprecated:
                logger.warning("remote %s: %s", cfg.served_by, cfg.model_spec.deprecated)
        self.client = new_client()

    async def generate(self, job: ImageJob) -> ImageResult:
        from models.remote.catalogue import REPORT_MARGIN_S
        from models.remote.chain import generate_chain

        # The gateway cancels us at `timeout_s`; ending a little before lets every provider's try be reported.
        deadline = time.time() + self.args.timeout_s - REPORT_MARGIN_S
        if job.deadline is not None:
            deadline = min(deadline, job.deadline - REPORT_MARGIN_S)
        return await generate_chain(
            self.client,
            self.providers,
            job.prompt,
            job.width,
            job.height,
            job.seed,
            deadline,
            on_refusal=self.args.on_refusal,
        )

    async def ping(self) -> None:
        return None

    async def check_health(self) -> None:
        # Keys missing in this replica are reported per request as skipped providers, not as a sick replica.
        if self.client.is_closed:
            raise RuntimeError("the HTTP client is closed")

    async def __del__(self) -> None:
        await self.client.aclose()
