"""Remote providers (OpenAI, Gemini, fal.ai) behind one CPU-light, autoscaled deployment."""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import share_serve_logging

# Room for the chain's own hard stop (1 s past a provider's deadline) and the answer's trip back to the gateway.
REPORT_MARGIN_S = 2.5


class ProviderArgs(BaseModel):
    """Per-provider overrides; unset fields keep the vendor defaults (or `<PROVIDER>_BASE_URL`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    model: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    attempt_timeout_s: float | None = Field(default=None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class RemoteArgs(BackendArgs):
    providers: list[Literal["openai", "gemini", "fal"]] = Field(default_factory=lambda: ["openai", "gemini", "fal"])
    overrides: dict[Literal["openai", "gemini", "fal"], ProviderArgs] = Field(default_factory=dict)
    # A refusal ends the request with 422 (`stop`), or lets the next provider try (`continue`).
    on_refusal: Literal["stop", "continue"] = "stop"
    # Hosts whose plain-http image URLs are accepted (tests, an in-cluster proxy); https is always accepted.
    allow_http_hosts: list[str] = Field(default_factory=list)
    # Enough for two providers' full tries (40 s each by default): a hung first provider must leave the next room.
    timeout_s: float = Field(default=90.0, gt=0)
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16},
        max_ongoing_requests=64,
        max_queued_requests=256,
        ray_actor_options={"num_cpus": 0.1},
    )

    def missing(self) -> str | None:
        from models.remote.config import KEY_ENV, keys_from_env

        if keys_from_env(os.environ).keys() & set(self.providers):
            return None
        names = ", ".join("/".join(KEY_ENV[p]) for p in self.providers)
        return f"no provider key set ({names})"

    def provider_overrides(self) -> dict[str, dict[str, Any]]:
        extra = {"allow_http_hosts": tuple(self.allow_http_hosts)} if self.allow_http_hosts else {}
        return {
            name: {**extra, **self.overrides[name].model_dump(exclude_none=True)} if name in self.overrides else extra
            for name in self.providers
        }


@serve.deployment
class RemoteBackend:
    def __init__(self, args: RemoteArgs) -> None:
        share_serve_logging()
        from models.remote.chain import configs_from_env, new_client

        self.args = args
        # Keys are read here, in the replica, from its own environment: they never travel in config or args.
        self.providers = configs_from_env(os.environ, args.providers, args.provider_overrides())
        self.client = new_client()

    async def generate(self, job: ImageJob) -> ImageResult:
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
