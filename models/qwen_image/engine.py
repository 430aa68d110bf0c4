"""The Qwen-Image engine: one loaded pipeline, one generation at a time, progress readable from other threads.

Meant to be driven from a worker thread (the deployment runs `generate` off its event loop and passes a `should_stop`
that watches cancellation and the job's deadline). torch and diffusers are imported when an engine is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.imaging import fit_cover, to_png
from models.qwen_image import hostmem
from models.qwen_image.errors import EngineUnhealthy, GenerationCancelled, WeightsError
from models.qwen_image.options import QwenOptions, with_magic
from models.qwen_image.results import Progress, QwenImage
from models.qwen_image.sizes import native_size
from models.qwen_image.timing import SpeedModel, from_stamps
from models.qwen_image.weights import check_weights
from models.seeds import stable_seed

if TYPE_CHECKING:
    from diffusers import QwenImagePipeline
    from PIL import Image

log = logging.getLogger(__name__)

_GIB = 1024**3
# Errors after which the CUDA context is unusable: every later call would fail too, so health() reports it.
_FATAL_MARKERS = ("illegal memory access", "device-side assert", "CUDA error: unspecified launch failure")


class QwenImageEngine:
    """Loads the pipeline at construction (WeightsError when the folder is unusable) and serialises generations."""

    def __init__(self, path: str | Path, options: QwenOptions | None = None, device: str | None = None) -> None:
        """Plan memory (PlanRefused when nothing fits, before any weight is read), then load per the plan."""
        from models.qwen_image.loader import compiles_with, load_pipeline, make_plan, pick_device, pick_dtype

        self.path = Path(path)
        self.options = options or QwenOptions()
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        reason = check_weights(self.path)
        if reason:
            raise WeightsError(reason)
        self.plan = make_plan(self.path, self.options, self.device, hostmem.available_bytes())
        log.info("Qwen-Image memory plan: %s", self.plan.summary())
        started = time.perf_counter()
        with hostmem.peak_rss() as rss:
            self._pipe: QwenImagePipeline = load_pipeline(self.path, self.options, self.device, self.plan)
        self.load_seconds = time.perf_counter() - started
        self.load_peak_rss = rss
        self.compiled = self.options.compile and compiles_with(self.plan.mode)
        log.info(
            "Qwen-Image loaded in %.1f s, peak host RSS %.2f GiB%s",
            self.load_seconds,
            rss.bytes / _GIB,
            " (process peak: could not reset the high-water mark)" if rss.since_start else "",
        )
        # The pipeline floors sizes to this (VAE downsampling × the transformer's 2×2 patches): 16 for the real model.
        self.size_multiple = int(self._pipe.vae_scale_factor) * 2
        config = self._pipe.transformer.config
        self.speed = SpeedModel(hidden=int(config.num_attention_heads) * int(config.attention_head_dim))
        # With a terminal shift (the base model's scheduler) a single step divides 0 by 0: NaN, a black image.
        self.min_steps = 2 if self._pipe.scheduler.config.get("shift_terminal") else 1
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._broken: str | None = None
        self._tiling = False
        self.generated = 0

    @property
    def pipeline(self) -> QwenImagePipeline:
        return self._pipe

    def native_size(self, width: int, height: int) -> tuple[int, int]:
        return native_size(width, height, self.size_multiple, self.options.size_policy)

    def checked_native_size(self, width: int, height: int) -> tuple[int, int]:
        """The native size, ValueError when it is past what memory was planned for."""
        if width < 1 or height < 1:
            raise ValueError(f"size must be positive, got {width}x{height}")
        native_w, native_h = self.native_size(width, height)
        if native_w * native_h > self.plan.max_pixels:
            raise ValueError(
                f"size {width}x{height} renders {native_w}x{native_h}, over this replica's max_pixels "
                f"{self.plan.max_pixels}"
            )
        return native_w, native_h

    def forwards(self, guidance: float | None, negative_prompt: str | None = None) -> int:
        """Transformer forwards per step: CFG runs a second, negative one (as `_run` decides)."""
        cfg = self.options.default_cfg if guidance is None else float(guidance)
        negative = self.options.negative_prompt if negative_prompt is None else negative_prompt
        return 2 if cfg > 1 and negative is not None else 1

    def tokens(self, native_w: int, native_h: int) -> int:
        return (native_w // self.size_multiple) * (native_h // self.size_multiple)

    def estimate_seconds(
        self, width: int, height: int, steps: int | None = None, guidance: float | None = None
    ) -> float | None:
        """Seconds a job would take here, from this engine's own measured runs; None before any was measured."""
        native_w, native_h = self.checked_native_size(width, height)
        num_steps = self.options.default_steps if steps is None else int(steps)
        return self.speed.estimate(
            self.tokens(native_w, native_h), native_w * native_h, num_steps, self.forwards(guidance)
        )

    def progress(self) -> Progress | None:
        """The run in flight, or None. Safe from any thread: the value is immutable and swapped whole."""
        return self._progress

    def generate(
        self,
        prompt: str,
        width: int,
        height: int,
        seed: int | None = None,
        *,
        negative_prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        tag: str = "",
    ) -> QwenImage:
        """Render `prompt` at exactly width×height. Same seed and settings → same image.

        `should_stop` is polled before the run and after every step; when it returns True the run ends with
        GenerationCancelled(steps_done) and nothing is decoded. `on_step(done, total)` is called after every step.
        """
        if not prompt or not prompt.strip():
            raise ValueError("prompt is empty")
        if width < 1 or height < 1:
            raise ValueError(f"size must be positive, got {width}x{height}")
        num_steps = self.options.default_steps if steps is None else int(steps)
        if num_steps < self.min_steps:
            raise ValueError(f"steps must be >= {self.min_steps} with this scheduler, got {num_steps}")
        cfg = self.options.default_cfg if guidance is None else float(guidance)
        seed = stable_seed(prompt) if seed is None else int(seed)
        native_w, native_h = self.checked_native_size(width, height)

        with self._lock:
            if self._broken:
                raise EngineUnhealthy(self._broken)
            started = time.perf_counter()
            self._progress = Progress(tag, 0, num_steps, time.time())
            try:
                if should_stop is not None and should_stop():
                    raise GenerationCancelled(0, num_steps)
                image = self._run(
                    prompt, native_w, native_h, seed, negative_prompt, num_steps, cfg, should_stop, on_step, tag
                )
                png = to_png(fit_cover(image, width, height))
            except BaseException as exc:
                self._after_failure(exc)
                raise
            finally:
                self._progress = None
            self.generated += 1
        return QwenImage(
            png=png,
            width=width,
            height=height,
            seed=seed,
            native_width=native_w,
            native_height=native_h,
            steps=num_steps,
            guidance=cfg,
            elapsed_s=time.perf_counter() - started,
        )

    def _run(
        self,
        prompt: str,
        width: int,
        height: int,
        seed: int,
        negative_prompt: str | None,
        steps: int,
        cfg: float,
        should_stop: Callable[[], bool] | None,
        on_step: Callable[[int, int], None] | None,
        tag: str,
    ) -> Image.Image:
        import torch

        started_at = self._progress.started_at if self._progress else time.time()
        run_started = time.perf_counter()
        stamps: list[float] = []

        def on_step_end(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            stamps.append(time.perf_counter())
            done, total = i + 1, int(pipe.num_timesteps)
            self._progress = Progress(tag, done, total, started_at)
            if on_step is not None:
                on_step(done, total)
            if should_stop is not None and should_stop():
                # Raising is the only way out of the loop that also skips the VAE decode (`_interrupt` still decodes).
                raise GenerationCancelled(done, total)
            return kwargs

        self._set_tiling(width * height)
        generator = torch.Generator(device="cuda" if self.device.startswith("cuda") else "cpu").manual_seed(seed)
        if cfg > 1:
            negative = self.options.negative_prompt if negative_prompt is None else negative_prompt
        else:
            negative = None  # CFG is off: encoding a negative prompt would only cost time (and a warning).
        out = self._pipe(
            prompt=with_magic(prompt) if self.options.magic_suffix else prompt,
            negative_prompt=negative,
            true_cfg_scale=cfg,
            width=width,
            height=height,
            num_inference_steps=steps,
            generator=generator,
            max_sequence_length=self.options.max_sequence_length,
            output_type="pil",
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=[],
        )
        timing = from_stamps(
            run_started,
            stamps,
            time.perf_counter(),
            tokens=self.tokens(width, height),
            pixels=width * height,
            forwards=2 if negative is not None and cfg > 1 else 1,
            cold=self.generated == 0,
        )
        if timing is not None:
            self.speed.record(timing)
        return out.images[0]

    def _set_tiling(self, pixels: int) -> None:
        threshold = self.plan.vae_tiling_min_pixels
        want = threshold is not None and pixels >= threshold
        if want != self._tiling:
            if want:
                self._pipe.vae.enable_tiling()
            else:
                self._pipe.vae.disable_tiling()
            self._tiling = want

    def _after_failure(self, exc: BaseException) -> None:
        # An exception from the step callback skips the pipeline's own end-of-run cleanup, which is what moves
        # offloaded components back to the CPU; without it the next run starts with the transformer still on the GPU.
        try:
            self._pipe.maybe_free_model_hooks()
        except Exception:  # the original error matters more than a failed cleanup
            log.exception("cleanup after a failed Qwen-Image run failed")
        if not self.device.startswith("cuda"):
            return
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        elif isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _FATAL_MARKERS):
            self._broken = f"CUDA context unusable after: {str(exc)[:300]}"
            log.error("Qwen-Image engine broken: %s", self._broken)

    def warm_up(self) -> float:
        """Initialise (and compile) with a first run, then time one run per warm-up size. Returns seconds.

        The first run is at the smallest size (with streamed offloading the VAE's first forward must not be tiled)
        and always with CFG: the negative prompt's forward is a second compiled variant, so a CFG request after a
        Lightning warm-up does not compile inside its deadline.
        """
        sizes = sorted(self.options.warmup_sizes, key=lambda s: s[0] * s[1])
        steps = self.options.warmup_steps
        started = time.perf_counter()
        self.generate("warm-up", *sizes[0], 0, steps=steps, guidance=max(self.options.default_cfg, 4.0), tag="warm-up")
        for width, height in sizes:
            self.generate("warm-up", width, height, 0, steps=steps, tag="warm-up")
        return time.perf_counter() - started

    def health(self) -> dict[str, Any]:
        """A snapshot for /healthz; raises EngineUnhealthy when the engine can no longer serve."""
        if self._broken:
            raise EngineUnhealthy(self._broken)
        progress = self._progress
        info: dict[str, Any] = {
            "path": str(self.path),
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "busy": self._lock.locked(),
            "progress": asdict(progress) if progress else None,
            "generated": self.generated,
            "load_seconds": round(self.load_seconds, 3),
            "load_peak_host_rss_gib": round(self.load_peak_rss.bytes / _GIB, 2),
            "memory_plan": self.plan.as_dict(),
            "compiled": self.compiled,
        }
        if self.device.startswith("cuda"):
            import torch

            info["cuda_allocated_gib"] = round(torch.cuda.memory_allocated(self.device) / _GIB, 2)
        return info

    def speed_table(self, sizes: tuple[tuple[int, int], ...]) -> list[dict[str, Any]]:
        """Measured-speed estimates at `sizes` (native sizes past max_pixels are left out); empty before warm-up."""
        rows = []
        for width, height in sizes:
            native_w, native_h = self.native_size(width, height)
            if native_w * native_h > self.plan.max_pixels:
                continue
            tokens = self.tokens(native_w, native_h)
            cfg_step, plain_step = self.speed.seconds_per_step(tokens, 2), self.speed.seconds_per_step(tokens, 1)
            job = self.speed.estimate(tokens, native_w * native_h, self.options.default_steps, self.forwards(None))
            if cfg_step is None or plain_step is None:
                return []
            rows.append(
                {
                    "size": f"{native_w}x{native_h}",
                    "s_per_step_cfg": round(cfg_step, 3),
                    "s_per_step_no_cfg": round(plain_step, 3),
                    "default_job_s": None if job is None else round(job, 1),
                }
            )
        return rows

    def close(self) -> None:
        """Drop the pipeline so its memory can be reclaimed (e.g. before a replica shuts down)."""
        with self._lock:
            self._broken = self._broken or "engine closed"
            del self._pipe
            if self.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
