"""StyleGAN3 on a GPU: our own generator, NVIDIA network pickles loaded safely, concurrent requests batched."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from ray import serve

from cascade.config import BackendArgs, DeploymentOptions
from cascade.domain import PRESETS_WORDS, Domain, DomainArgs, preset, release_preset
from cascade.errors import JobRejected
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica


class StyleGAN3Args(BackendArgs):
    # A release `.pkl`, or our own export (folder or `.safetensors`); env STYLEGAN3_NETWORK when unset here.
    network: str | None = None
    truncation_psi: float = Field(default=0.7, ge=-2, le=2)
    fast: bool = True
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    compile: bool = False
    max_batch_size: int = Field(default=8, ge=1)
    batch_wait_timeout_s: float = Field(default=0.01, ge=0)
    warm_up: bool = True
    timeout_s: float = Field(default=10.0, gt=0)
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 8},
        # At least one batch in flight, or batches never fill; the bounded queue sends overflow down the chain.
        max_ongoing_requests=16,
        max_queued_requests=32,
        ray_actor_options={"num_gpus": 1, "num_cpus": 1},
    )

    # What the network draws; other prompts skip it unless the request names this backend. "auto": a release
    # network's preset by its file name (ffhq → faces, metfaces → portraits, afhq → animals), else any prompt;
    # "any"; a preset name; or {name, preset?, words, classes: {word: class index}} (classes: conditional networks).
    domain: str | DomainArgs = "auto"

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str | DomainArgs) -> str | DomainArgs:
        if isinstance(value, DomainArgs):
            value.build()  # a config error shows when the config is loaded
        elif value not in ("auto", "any", *PRESETS_WORDS):
            raise ValueError(f"domain must be auto, any, one of {sorted(PRESETS_WORDS)} or a mapping")
        return value

    def network_path(self) -> str | None:
        return self.network or os.environ.get("STYLEGAN3_NETWORK") or None

    def route_domain(self) -> Domain | None:
        if isinstance(self.domain, DomainArgs):
            return self.domain.build()
        name = release_preset(self.network_path()) if self.domain == "auto" else self.domain
        return None if name in (None, "any") else preset(name)

    def missing(self) -> str | None:
        path = self.network_path()
        if path is None:
            return "no network configured (backends.stylegan3.network or STYLEGAN3_NETWORK)"
        if not Path(path).exists():
            return f"network {path} not found"
        from models.stylegan3.errors import BAD_FILE_ERRORS, one_line
        from models.stylegan3.loader import inspect_network

        try:  # the whole check a replica's load makes, short of building: a bad file never gets a replica
            options = inspect_network(path)
        except BAD_FILE_ERRORS as exc:
            return f"network refused: {one_line(exc)}"
        return class_map_problem(self.route_domain(), int(options.get("c_dim", 0)))


def class_map_problem(domain: Domain | None, c_dim: int) -> str | None:
    bad = [f"{word}: {index}" for word, index in (domain.classes if domain else ()) if index >= c_dim]
    if bad:
        return f"domain {domain.name if domain else ''}: classes out of range for a network of {c_dim}: {bad}"
    return None


def _class_of(job: ImageJob, c_dim: int, domain: Domain | None) -> int | None:
    if c_dim == 0:
        return None  # unconditional: a requested class is ignored
    label = job.options.get("class_label")
    if label is None and domain is not None:
        label = domain.class_for(job.prompt)
    # A conditional network needs a class; without one, the seed picks it, so the same seed keeps its image.
    return job.seed % c_dim if label is None else int(label)


@serve.deployment
class StyleGAN3Backend:
    def __init__(self, args: StyleGAN3Args) -> None:
        start_replica("stylegan3", args.sentry)
        from models.stylegan3.engine import StyleGAN3Engine
        from models.stylegan3.errors import BAD_FILE_ERRORS, one_line

        self.args = args
        self.domain = args.route_domain()
        try:
            self.engine = StyleGAN3Engine(
                args.network_path(), fast=args.fast, precision=args.precision, compile=args.compile
            )
        except BAD_FILE_ERRORS as exc:  # the start-up fails with the reason, not a loader traceback
            raise RuntimeError(f"StyleGAN3 network refused: {one_line(exc)}") from None
        problem = class_map_problem(self.domain, self.engine.c_dim)
        if problem:
            raise RuntimeError(problem)
        self._batch.set_max_batch_size(args.max_batch_size)
        self._batch.set_batch_wait_timeout_s(args.batch_wait_timeout_s)
        if args.warm_up:
            self.engine.warm_up(sorted({1, args.max_batch_size}))

    async def generate(self, job: ImageJob) -> ImageResult:
        label = job.options.get("class_label")
        # On an unconditional network a class means nothing and is ignored, like other backends' extras.
        if label is not None and self.engine.c_dim and not 0 <= int(label) < self.engine.c_dim:
            raise JobRejected(f"class_label {label} is out of range for this network ({self.engine.c_dim} classes)")
        return await self._batch(job)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batch(self, jobs: list[ImageJob]) -> list[ImageResult]:
        # One forward for the whole batch, each sample with its own seed, ψ, class and transform.
        return await asyncio.to_thread(self._render, jobs)

    def _render(self, jobs: list[ImageJob]) -> list[ImageResult]:
        from models.imaging import fit_cover, to_png
        from models.stylegan3.engine import SampleSpec, to_pil

        specs = [
            SampleSpec(
                seed=job.seed,
                psi=float(job.options.get("truncation_psi", self.args.truncation_psi)),
                class_idx=_class_of(job, self.engine.c_dim, self.domain),
                translate=tuple(job.options.get("translate", (0.0, 0.0))),
                rotate_deg=float(job.options.get("rotate", 0.0)),
            )
            for job in jobs
        ]
        images = self.engine.generate_batch(specs)
        native = "{}x{}".format(*self.engine.native_size)
        return [
            ImageResult(
                to_png(fit_cover(to_pil(image), job.width, job.height)),
                "image/png",
                job.width,
                job.height,
                job.seed,
                "stylegan3",
                {"native_size": native, "truncation_psi": spec.psi, "class": spec.class_idx, "batch_size": len(jobs)},
            )
            for job, spec, image in zip(jobs, specs, images, strict=True)
        ]

    async def ping(self) -> None:
        return None

    async def check_health(self) -> None:
        report = await asyncio.to_thread(self.engine.health)
        if not report["ok"]:
            raise RuntimeError(f"StyleGAN3 health check failed: {report['error']}")
