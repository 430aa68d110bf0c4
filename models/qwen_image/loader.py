"""Load a `QwenImagePipeline` from a local folder and place it on its device. Imports torch: load lazily."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.qwen_image.errors import WeightsError
from models.qwen_image.options import LIGHTNING_SCHEDULER, QwenOptions
from models.qwen_image.weights import check_weights

if TYPE_CHECKING:
    import torch
    from diffusers import QwenImagePipeline

log = logging.getLogger(__name__)

_GIB = 1024**3


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str) -> torch.dtype:
    import torch

    # bf16 on GPUs: fp16 overflows in this model (NaN / black images); CPUs get float32 for speed and exactness.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def offload_mode(options: QwenOptions, device: str) -> str:
    """ "off", "model" or "sequential": resolves "auto" from the GPU's total memory."""
    if options.cpu_offload != "auto":
        return options.cpu_offload
    if not device.startswith("cuda"):
        return "off"
    import torch

    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return "model" if total < options.auto_offload_below_gib * _GIB else "off"


def lightning_scheduler(scheduler: Any) -> Any:
    """The checkpoint's FlowMatch scheduler with the shift settings Lightning was distilled with."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    # Private keys must go: `_use_default_values` would make from_config reset the shifts we set to class defaults.
    base = {key: value for key, value in scheduler.config.items() if not key.startswith("_")}
    return FlowMatchEulerDiscreteScheduler.from_config({**base, **LIGHTNING_SCHEDULER})


def _require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise WeightsError(f"{why} needs the '{module}' package, which is not installed")


def load_pipeline(path: str | Path, options: QwenOptions, device: str) -> QwenImagePipeline:
    """Load from `path` only (never the hub), apply the options, place on `device`. WeightsError on bad weights."""
    reason = check_weights(path)
    if reason:
        raise WeightsError(reason)
    mode = offload_mode(options, device)
    if mode != "off":
        _require("accelerate", f"CPU offload ({mode})")
    if options.lightning_lora:
        _require("peft", "the Lightning LoRA")
        lora = Path(options.lightning_lora).expanduser()
        if not lora.exists():
            raise WeightsError(f"Lightning LoRA {lora} does not exist")

    from diffusers import QwenImagePipeline

    try:
        pipe = QwenImagePipeline.from_pretrained(str(path), dtype=pick_dtype(device), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise WeightsError(f"could not load Qwen-Image from {path}: {type(exc).__name__}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)

    if options.lightning_lora:
        _apply_lightning(pipe, Path(options.lightning_lora).expanduser(), fuse=options.fuse_lora)

    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)

    if options.compile:
        # Compiling one transformer block and reusing it for the other 59 takes seconds, not minutes.
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    log.info("Qwen-Image loaded from %s on %s (offload %s, lightning %s)", path, device, mode, options.lightning_lora)
    return pipe


def _apply_lightning(pipe: QwenImagePipeline, lora: Path, *, fuse: bool) -> None:
    pipe.scheduler = lightning_scheduler(pipe.scheduler)
    try:
        if lora.is_file():
            pipe.load_lora_weights(
                str(lora.parent), weight_name=lora.name, adapter_name="lightning", local_files_only=True
            )
        else:
            pipe.load_lora_weights(str(lora), adapter_name="lightning", local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise WeightsError(f"could not load the Lightning LoRA {lora}: {type(exc).__name__}: {exc}") from exc
    if fuse:
        pipe.fuse_lora(adapter_names=["lightning"], lora_scale=1.0)
        pipe.unload_lora_weights()
