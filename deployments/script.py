"""The seed's `script` backend: any program speaking JSON on stdin/stdout, run as a child per request."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from pydantic import Field
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.errors import BackendFailed
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica


class ScriptArgs(BackendArgs):
    # The program: `script` runs with $PYTHON_BIN (default python3); `command` is a full argv instead.
    script: str | None = None
    command: list[str] | None = None
    cwd: str | None = None
    # Children see no GPU unless one is named here: a stray CUDA context would steal memory from the GPU backends.
    cuda_visible_devices: str | None = None
    # The child's environment is an allowlist (PATH, HOME, LANG, LC_*, PYTHON*, CUDA_VISIBLE_DEVICES); these add
    # variables from the replica's environment by name. API keys (OPENAI_API_KEY, GEMINI_API_KEY, GOOGLE_API_KEY,
    # FAL_KEY, FAL_API_KEY) reach it only when named, and are masked in its errors anyway.
    pass_env: list[str] = Field(default_factory=list)
    # Like pass_env, and their values are masked (also URL-encoded or base64) in everything that becomes an error.
    secret_env: list[str] = Field(default_factory=list)
    # Literal values set in the child's environment (visible in config: no secrets here).
    env: dict[str, str] = Field(default_factory=dict)
    max_output_bytes: int = Field(default=64 * 2**20, gt=0)
    max_image_bytes: int = Field(default=32 * 2**20, gt=0)
    # Hosts an image URL from the script may point at ("cdn.example.com", "*.example.com"); "*": any public host.
    # Private, loopback and link-local addresses are refused whatever the host.
    image_hosts: list[str] = Field(default_factory=lambda: ["*"])
    # Hosts whose plain-http image URLs are accepted (tests, an in-cluster proxy); https is always accepted.
    allow_http_hosts: list[str] = Field(default_factory=list)
    # Networks (CIDR) exempt from the private-address refusal: tests and in-cluster services only.
    allow_private_networks: list[str] = Field(default_factory=list)
    # An image whose header declares more than max(min_pixel_cap, pixel_factor x requested pixels) is refused.
    pixel_factor: float = Field(default=4.0, gt=0)
    min_pixel_cap: int = Field(default=4 * 2**20, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    deployment: DeploymentOptions = DeploymentOptions(
        num_replicas=1, max_ongoing_requests=2, max_queued_requests=16, ray_actor_options={"num_cpus": 1}
    )

    def argv(self) -> list[str]:
        if self.command:
            return list(self.command)
        if self.script:
            from models.script.runner import default_python

            return [default_python(), self.script]
        return []

    def missing(self) -> str | None:
        return None if self.argv() else "no script or command configured"


@serve.deployment
class ScriptBackend:
    def __init__(self, args: ScriptArgs) -> None:
        start_replica("script", args.sentry)
        import httpx

        from models.remote.fetch import UrlPolicy
        from models.script.runner import build_env, secret_values

        self.args = args
        self.argv = args.argv()
        self.env = build_env(
            os.environ, args.cuda_visible_devices, pass_env=args.pass_env, secret_env=args.secret_env, extra=args.env
        )
        self.secrets = secret_values(os.environ, args.secret_env, args.env)
        self.policy = UrlPolicy(
            tuple(args.image_hosts), tuple(args.allow_http_hosts), tuple(args.allow_private_networks)
        )
        self.http = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def generate(self, job: ImageJob) -> ImageResult:
        from models.imaging import exact_png
        from models.remote.errors import ProviderError
        from models.remote.fetch import fetch_image
        from models.script.runner import ScriptError, run_script
        from models.scrub import scrub

        deadline = time.time() + self.args.timeout_s
        if job.deadline is not None:
            deadline = min(deadline, job.deadline)
        payload = {"prompt": job.prompt, "size": f"{job.width}x{job.height}", "seed": job.seed, **job.options}
        try:
            out = await run_script(
                self.argv,
                payload,
                timeout_s=max(deadline - time.time(), 0.001),
                max_output_bytes=self.args.max_output_bytes,
                env=self.env,
                cwd=self.args.cwd,
                secrets=self.secrets,
            )
            _, data = await fetch_image(
                self.http,
                out.data_uri or out.url or "",
                max_bytes=self.args.max_image_bytes,
                timeout_s=deadline - time.time(),
                policy=self.policy,
            )
            cap = max(self.args.min_pixel_cap, int(self.args.pixel_factor * job.width * job.height))
            png, native = await asyncio.to_thread(exact_png, data, job.width, job.height, max_pixels=cap)
        # ValueError: exact_png could not decode what the script produced, or it declares too many pixels.
        except (ScriptError, ProviderError, ValueError) as exc:
            # A URL the script printed may carry a secret too.
            raise BackendFailed(scrub(str(exc), self.secrets)) from None
        meta = {"native_size": f"{native[0]}x{native[1]}", "source": "url" if out.url else "data_uri"}
        return ImageResult(png, "image/png", job.width, job.height, job.seed, "script", meta)

    async def ping(self) -> None:
        return None

    async def check_health(self) -> None:
        program = shutil.which(self.argv[0]) if self.argv else None
        if program is None:
            raise RuntimeError(f"cannot run {self.argv[:1]}: not found or not executable")
        script = self.args.script
        if script is not None and not os.access(Path(self.args.cwd or ".", script), os.R_OK):
            raise RuntimeError(f"script {script} is not readable")

    async def __del__(self) -> None:
        await self.http.aclose()
