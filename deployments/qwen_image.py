"""Qwen-Image on one GPU: one generation at a time, progress as metrics, stops within a step when nobody waits.

The model code is `models.qwen_image` (no Ray); this is the thin Serve wrapper around its engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from cascade.config import BackendArgs, DeploymentOptions
from cascade.errors import BackendFailed, Declined, JobRejected
from cascade.types import ImageJob, ImageResult
from deployments.plumbing import start_replica
from models.qwen_image.errors import EngineUnhealthy, WeightsError

if TYPE_CHECKING:
    from models.qwen_image import QwenImage, QwenImageEngine, QwenOptions

logger = logging.getLogger("ray.serve")

_MAX_ERROR_CHARS = 300


def _weights_from_env() -> str | None:
    return os.environ.get("QWEN_IMAGE_PATH") or None


class QwenImageArgs(BackendArgs):
    """Builder args for the Qwen-Image backend.

    `weights` is a local pipeline folder. Left unset, QWEN_IMAGE_PATH is read when these args are validated, i.e.
    where the app builder runs; the resolved path then travels to the replica with the args, so the builder's check
    and the replica's load look at the same place (on a multi-node cluster that folder must exist on the GPU nodes
    too: set the variable in the application's runtime_env, or give `weights` explicitly).
    """

    weights: str | None = Field(default_factory=_weights_from_env)
    # None: the model's defaults (50 steps with CFG 4.0; 8 steps without CFG with a Lightning LoRA).
    steps: int | None = Field(default=None, ge=1, le=200)
    true_cfg_scale: float | None = Field(default=None, ge=0, le=50)
    negative_prompt: str = " "
    magic_suffix: bool = False
    max_sequence_length: int = Field(default=512, ge=1, le=1024)
    lightning_lora: str | None = None
    size_policy: Literal["multiple", "recommended"] = "multiple"
    vae_tiling_min_pixels: int | None = Field(default=1536 * 1536, ge=1)
    # Where the weights live; "auto" picks from the card's free memory at start (models.qwen_image.memory).
    cpu_offload: Literal["auto", "off", "text_encoder", "group", "sequential", "model"] = "auto"
    # The largest native image: memory is planned for it (keep it at or above the gateway's limits.max_pixels).
    max_pixels: int = Field(default=4_200_000, ge=64 * 64)
    compile: bool = False
    # The first real request should not pay for lazy CUDA init and compilation, and the timed warm-up runs are
    # what job estimates (and the start-time timeout check) come from.
    warm_up: bool = True
    warmup_sizes: tuple[tuple[int, int], ...] = Field(default=((512, 512), (1328, 1328)), min_length=1)
    warmup_steps: int = Field(default=3, ge=2)
    # Answer at once (outcome "declined") when the measured speed says a job cannot finish before its deadline.
    decline_late_jobs: bool = True
    device: str | None = None  # None: cuda when present, else cpu
    timeout_s: float = Field(default=120.0, gt=0)
    # While the replica is still loading (minutes for 54 GiB of weights) requests move on instead of waiting.
    cold_start: Literal["wait", "skip"] = "skip"
    # min_replicas 1: a reload costs minutes, so an idle replica is kept; set 0 (with cold_start skip) to free the
    # GPU when idle. One request at a time per replica (the pipeline holds per-call state) and a short queue: a
    # request that would wait behind two 30-second jobs is better served by the next backend.
    deployment: DeploymentOptions = DeploymentOptions(
        autoscaling_config={"min_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 1},
        max_ongoing_requests=1,
        max_queued_requests=2,
        ray_actor_options={"num_gpus": 1, "num_cpus": 1},
    )

    def missing(self) -> str | None:
        from models.qwen_image import check_weights

        reason = check_weights(self.weights)
        if reason is None and self.lightning_lora and not Path(self.lightning_lora).expanduser().exists():
            reason = f"Lightning LoRA {self.lightning_lora} does not exist"
        return reason

    def options(self) -> QwenOptions:
        """The engine's options: every field these args share with QwenOptions (the rest keep their defaults)."""
        from models.qwen_image import QwenOptions

        names = {f.name for f in fields(QwenOptions)}
        return QwenOptions(**{k: v for k, v in self.model_dump().items() if k in names})


def _short(exc: BaseException) -> str:
    """One line for the caller's attempt list; the traceback goes to the replica's log."""
    text = (str(exc).strip().splitlines() or [""])[0]
    # Our own errors (and the engine's argument checks) read well alone; anything else needs its type to make sense.
    if not text or not isinstance(exc, ValueError | WeightsError | EngineUnhealthy):
        text = f"{type(exc).__name__}: {text}".rstrip(": ")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _job_settings(job: ImageJob) -> dict[str, Any]:
    """The engine's keyword arguments from the job's extras (the gateway validated their types and ranges)."""
    opts = job.options
    settings: dict[str, Any] = {}
    if opts.get("negative_prompt") is not None:
        settings["negative_prompt"] = str(opts["negative_prompt"])
    if opts.get("steps") is not None:
        settings["steps"] = int(opts["steps"])
    if opts.get("guidance") is not None:
        settings["guidance"] = float(opts["guidance"])
    return settings


_POST_EVERY_S = 0.5
# The sizes /healthz quotes measured-speed estimates for: the model card's square and widescreen defaults.
_SPEED_SIZES = ((1328, 1328), (1664, 928))


def _log_every(total: int) -> int:
    # About ten progress lines per job, whatever its length.
    return max(1, total // 10)


class _Run:
    """One job's bookkeeping, written by the worker thread and the event loop, read by `last_run()`."""

    def __init__(self, tag: str, steps: int | None) -> None:
        self.stop = threading.Event()
        self.info: dict[str, Any] = {
            "request_id": tag,
            "steps_requested": steps,
            "steps_run": 0,
            "steps_at_cancel": None,
            "outcome": "running",
            "elapsed_s": None,
        }
        self.started = time.perf_counter()

    def end(self, outcome: str, steps_run: int | None = None) -> None:
        if steps_run is not None:
            self.info["steps_run"] = steps_run
        self.info["outcome"] = outcome
        self.info["elapsed_s"] = round(time.perf_counter() - self.started, 3)


# Module-level helpers stay above the class: Serve serialises the decorated class when it is defined.
@serve.deployment
class QwenImageBackend:
    def __init__(self, args: QwenImageArgs, board: DeploymentHandle | None = None) -> None:
        start_replica("qwen_image", args.sentry)
        from ray.serve import metrics

        from models.qwen_image import QwenImageEngine

        self.args = args
        # A plan that cannot fit raises PlanRefused here, before any weight is read: the replica never starts and
        # `serve status` shows the message, which names a configuration that would.
        self.engine: QwenImageEngine = QwenImageEngine(args.weights or "", args.options(), args.device)
        logger.info(
            "Qwen-Image loaded from %s on %s in %.1f s (%s)",
            args.weights,
            self.engine.device,
            self.engine.load_seconds,
            self.engine.plan.summary(),
        )
        if args.warm_up:
            logger.info("Qwen-Image warm-up took %.1f s", self.engine.warm_up())
            self._check_timeout()
        self.step_gauge = metrics.Gauge("cascade_qwen_step", "Denoising steps done in the Qwen-Image job in flight.")
        self.total_gauge = metrics.Gauge("cascade_qwen_steps_total", "Denoising steps of the Qwen-Image job in flight.")
        self._last: _Run | None = None
        self.board = board
        self._replica = serve.get_replica_context().replica_id.unique_id
        self._post_info()

    def _check_timeout(self) -> None:
        """Refuse to start when the measured speed says a default job cannot finish within timeout_s."""
        from models.qwen_image.options import LIGHTNING_CFG, LIGHTNING_STEPS
        from models.qwen_image.timing import timeout_advice

        options = self.engine.options
        width, height = max(options.warmup_sizes, key=lambda s: s[0] * s[1])
        default_s = self.engine.estimate_seconds(width, height)
        lightning_s = self.engine.estimate_seconds(width, height, LIGHTNING_STEPS, LIGHTNING_CFG)
        if default_s is None or lightning_s is None:
            return
        logger.info("Qwen-Image: a default job at %dx%d takes ~%.1f s here", width, height, default_s)
        advice = timeout_advice(
            default_s,
            lightning_s,
            self.args.timeout_s,
            default_steps=options.default_steps,
            lightning=bool(options.lightning_lora),
        )
        if advice:
            raise RuntimeError(f"Qwen-Image refuses to start at {width}x{height} ({self.engine.plan.mode}): {advice}")

    def info(self) -> dict[str, Any]:
        """What /healthz shows for this replica: memory plan, load cost, measured speed."""
        health = self.engine.health()
        return {
            "backend": "qwen_image",
            "replica": self._replica,
            "device": health["device"],
            "memory_plan": health["memory_plan"],
            "load_seconds": health["load_seconds"],
            "load_peak_host_rss_gib": health["load_peak_host_rss_gib"],
            "speed": self.engine.speed_table(_SPEED_SIZES),
            "timeout_s": self.args.timeout_s,
        }

    def _post_info(self) -> None:
        if self.board is not None:
            self.board.describe.remote(self._replica, self.info())

    async def generate(self, job: ImageJob) -> ImageResult:
        from models.qwen_image import GenerationCancelled, stop_check

        settings = _job_settings(job)
        run = _Run(job.request_id, settings.get("steps", self.engine.options.default_steps))
        self._last = run
        # The gateway cancels us when its timeout passes; the job's deadline and our own timeout also cover
        # callers that go away without cancelling (and direct handle callers that set no deadline).
        deadline = time.time() + self.args.timeout_s
        if job.deadline is not None:
            deadline = min(deadline, job.deadline)
        try:
            estimate = self.engine.estimate_seconds(
                job.width, job.height, settings.get("steps"), settings.get("guidance")
            )
        except ValueError as exc:
            run.end("error")
            raise JobRejected(_short(exc)) from None
        left = deadline - time.time()
        if self.args.decline_late_jobs and estimate is not None and estimate > left:
            run.end("declined", 0)
            raise Declined(f"needs ~{estimate:.1f} s at this replica's measured speed, {max(left, 0):.1f} s left")

        loop = asyncio.get_running_loop()
        key = f"{self._replica}:{job.request_id}"
        posted = [0.0]

        def on_step(done: int, total: int) -> None:
            run.info["steps_run"] = done
            self.step_gauge.set(done)
            self.total_gauge.set(total)
            if done == 1 or done == total or done % _log_every(total) == 0:
                logger.info("qwen_image step %d/%d", done, total)
            if self.board is not None and (done == 1 or time.monotonic() - posted[0] >= _POST_EVERY_S):
                posted[0] = time.monotonic()
                entry = {
                    "backend": "qwen_image",
                    "request_id": job.request_id,
                    "replica": self._replica,
                    "step": done,
                    "total": total,
                    "elapsed_s": round(time.perf_counter() - run.started, 2),
                }
                # Handles belong to the replica's event loop, and this runs in the worker thread.
                loop.call_soon_threadsafe(self._post, key, entry)

        def work() -> QwenImage:
            return self.engine.generate(
                job.prompt,
                job.width,
                job.height,
                job.seed,
                should_stop=stop_check(run.stop, deadline),
                on_step=on_step,
                tag=job.request_id,
                **settings,
            )

        # to_thread copies the context: the request id (in log lines and metric tags) follows the job into the thread.
        worker = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            image = await asyncio.shield(worker)
        except asyncio.CancelledError:
            progress = self.engine.progress()
            run.info["steps_at_cancel"] = progress.step if progress is not None else run.info["steps_run"]
            run.stop.set()
            # Serve frees the request's slot as soon as the cancel arrives (user code runs on its own loop), so a
            # next job may already be waiting on the engine's lock: at most the one step in progress. Waiting here
            # still matters: the run's record is complete, and the thread's exception is consumed, not leaked.
            await asyncio.wait({worker})
            steps = worker.exception().steps_done if isinstance(worker.exception(), GenerationCancelled) else None
            run.end("cancelled", steps)
            logger.info("qwen_image cancelled by the caller after %s steps", run.info["steps_run"])
            raise
        except GenerationCancelled as exc:
            run.end("deadline", exc.steps_done)
            raise BackendFailed(f"deadline passed: stopped after {exc.steps_done} of {exc.total} steps") from None
        except ValueError as exc:  # the engine's argument checks: this request's settings, not a broken replica
            run.end("error")
            raise JobRejected(_short(exc)) from None
        except Exception as exc:
            run.end("error")
            logger.warning("qwen_image failed", exc_info=True)
            raise BackendFailed(_short(exc)) from None
        finally:
            self.step_gauge.set(0)
            self._post(key, None)
        run.end("ok", image.steps)
        meta = {
            "native_size": f"{image.native_width}x{image.native_height}",
            "steps": image.steps,
            "guidance": image.guidance,
            "elapsed_s": round(image.elapsed_s, 3),
        }
        return ImageResult(image.png, "image/png", image.width, image.height, image.seed, "qwen_image", meta)

    def _post(self, key: str, entry: dict[str, Any] | None) -> None:
        if self.board is not None:
            self.board.post.remote(key, entry)  # fire and forget: progress must never slow the job

    async def ping(self) -> None:
        return None

    async def progress(self) -> dict[str, Any] | None:
        """The job in flight (tag, step, total, started_at), or None when idle."""
        progress = self.engine.progress()
        return asdict(progress) if progress is not None else None

    async def last_run(self) -> dict[str, Any] | None:
        """How the latest job went: steps requested and run, steps done when cancelled, outcome, seconds."""
        return dict(self._last.info) if self._last is not None else None

    async def check_health(self) -> None:
        try:
            self.engine.health()
        except EngineUnhealthy as exc:
            raise RuntimeError(f"Qwen-Image engine unhealthy: {exc}") from None
        # Health checks run every few seconds, busy or not: they keep this replica's entry on the board fresh
        # (entries of replicas that died go stale and drop off) and its speed figures current.
        self._post_info()
