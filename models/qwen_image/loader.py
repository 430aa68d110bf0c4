"""Load a `QwenImagePipeline` from a local folder straight to where its memory plan puts each component.

Imports torch: load lazily. Components planned to stay on the GPU are read from their safetensors shards directly
into device memory (`device_map`), so the host never stages the ~54 GiB of weights; only what the plan offloads
lives in host RAM.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.qwen_image.errors import WeightsError
from models.qwen_image.memory import ComponentSizes, MemoryPlan, PlanInputs, choose_plan
from models.qwen_image.options import LIGHTNING_SCHEDULER, QwenOptions
from models.qwen_image.weights import check_weights, parameter_counts

if TYPE_CHECKING:
    import torch
    from diffusers import QwenImagePipeline

log = logging.getLogger(__name__)

_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str) -> torch.dtype:
    import torch

    # bf16 on GPUs: fp16 overflows in this model (NaN / black images); CPUs get float32 for speed and exactness.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def lightning_scheduler(scheduler: Any) -> Any:
    """The checkpoint's FlowMatch scheduler with the shift settings Lightning was distilled with."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    # Private keys must go: `_use_default_values` would make from_config reset the shifts we set to class defaults.
    base = {key: value for key, value in scheduler.config.items() if not key.startswith("_")}
    return FlowMatchEulerDiscreteScheduler.from_config({**base, **LIGHTNING_SCHEDULER})


def _require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise WeightsError(f"{why} needs the '{module}' package, which is not installed")


def component_sizes(path: str | Path, dtype_bytes: int) -> ComponentSizes:
    """Sizes from the checkpoint's own safetensors headers; the published sizes for what they do not cover."""
    counts = parameter_counts(path)
    published = ComponentSizes.published(dtype_bytes)
    if not all(name in counts for name in ("transformer", "text_encoder", "vae")):
        return published
    hidden, ffn = _transformer_widths(path, published)
    return ComponentSizes(
        transformer=counts["transformer"][0] * dtype_bytes,
        text_encoder=counts["text_encoder"][0] * dtype_bytes,
        vae=counts["vae"][0] * dtype_bytes,
        largest_leaf=max(largest for _, largest in counts.values()) * dtype_bytes,
        hidden=hidden,
        ffn=ffn,
        dtype_bytes=dtype_bytes,
    )


def _transformer_widths(path: str | Path, fallback: ComponentSizes) -> tuple[int, int]:
    import json

    try:
        config = json.loads((Path(path) / "transformer" / "config.json").read_text(encoding="utf-8"))
        hidden = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return fallback.hidden, fallback.ffn
    return hidden, 4 * hidden  # diffusers' FeedForward default: mult 4


def gpu_memory(device: str) -> tuple[int, int] | None:
    """(free, total) bytes on `device`, or None for the CPU. Free counts what other processes hold."""
    if not device.startswith("cuda"):
        return None
    import torch

    free, total = torch.cuda.mem_get_info(torch.device(device))
    return int(free), int(total)


def make_plan(path: str | Path, options: QwenOptions, device: str, host_available: int | None) -> MemoryPlan:
    """The memory plan for this folder on this device (PlanRefused when nothing fits)."""
    import torch

    dtype_bytes = torch.finfo(pick_dtype(device)).bits // 8
    memory = gpu_memory(device)
    return choose_plan(
        PlanInputs(
            requested=options.cpu_offload,
            gpu_free=None if memory is None else memory[0],
            host_available=host_available,
            sizes=component_sizes(path, dtype_bytes),
            max_pixels=options.plan_max_pixels,
            text_tokens=options.max_sequence_length,
            vae_tiling_min_pixels=options.vae_tiling_min_pixels,
            device=device,
        )
    )


def load_pipeline(path: str | Path, options: QwenOptions, device: str, plan: MemoryPlan) -> QwenImagePipeline:
    """Load from `path` only (never the hub) and place per `plan`. WeightsError on bad weights or missing packages."""
    reason = check_weights(path)
    if reason:
        raise WeightsError(reason)
    on_gpu = device.startswith("cuda")
    if plan.mode != "off" or on_gpu:
        _require("accelerate", f"loading onto {device} with the {plan.mode} plan")
    if options.lightning_lora:
        _require("peft", "the Lightning LoRA")
        lora = Path(options.lightning_lora).expanduser()
        if not lora.exists():
            raise WeightsError(f"Lightning LoRA {lora} does not exist")

    pipe = _load_components(Path(path), device, plan)
    pipe.set_progress_bar_config(disable=True)
    if options.lightning_lora:
        # Fused before any offload hook exists, on whichever device the transformer already is.
        _apply_lightning(pipe, Path(options.lightning_lora).expanduser(), fuse=options.fuse_lora)
    place(pipe, plan.mode, device)
    if options.compile and compiles_with(plan.mode):
        compile_transformer(pipe)
    elif options.compile:
        log.warning("compile skipped: with %s offload every layer's transfer hook would break the graph", plan.mode)
    log.info("Qwen-Image loaded from %s: %s (lightning %s)", path, plan.summary(), options.lightning_lora)
    return pipe


def _load_components(path: Path, device: str, plan: MemoryPlan) -> QwenImagePipeline:
    from diffusers import AutoencoderKLQwenImage, QwenImagePipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    dtype = pick_dtype(device)
    # Only components the plan keeps on the GPU for good are read straight into it; offloaded ones live in host RAM.
    resident = {"off": ("transformer", "vae", "text_encoder"), "text_encoder": ("transformer", "vae")}.get(
        plan.mode, ()
    )

    def where(name: str) -> dict[str, Any]:
        target = device if device.startswith("cuda") and name in resident else "cpu"
        return {"device_map": {"": target}} if target != "cpu" else {}

    try:
        transformer = QwenImageTransformer2DModel.from_pretrained(
            path / "transformer", dtype=dtype, local_files_only=True, low_cpu_mem_usage=True, **where("transformer")
        )
        vae = AutoencoderKLQwenImage.from_pretrained(
            path / "vae", dtype=dtype, local_files_only=True, low_cpu_mem_usage=True, **where("vae")
        )
        text_encoder = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            path / "text_encoder", dtype=dtype, local_files_only=True, **where("text_encoder")
        )
        return QwenImagePipeline.from_pretrained(
            str(path),
            transformer=transformer,
            vae=vae,
            text_encoder=text_encoder,
            dtype=dtype,
            local_files_only=True,
        )
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"could not load Qwen-Image from {path}: {type(exc).__name__}: {exc}") from exc


def place(pipe: QwenImagePipeline, mode: str, device: str) -> None:
    """Put the loaded components where `mode` says, installing the offload hooks it needs."""
    import torch

    onload, offload = torch.device(device), torch.device("cpu")
    # CUDA streams overlap the next leaf's transfer with the current leaf's compute; the CPU has none.
    streams = onload.type == "cuda"
    if mode == "off":
        pipe.to(device)
    elif mode == "text_encoder":
        from diffusers.hooks import apply_group_offloading

        pipe.transformer.to(device)
        pipe.vae.to(device)
        apply_group_offloading(
            pipe.text_encoder,
            onload_device=onload,
            offload_device=offload,
            offload_type="leaf_level",
            use_stream=streams,
        )
    elif mode == "group":
        pipe.enable_group_offload(
            onload_device=onload, offload_device=offload, offload_type="leaf_level", use_stream=streams
        )
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        raise ValueError(f"unknown placement {mode!r}")


def compiles_with(mode: str) -> bool:
    """Leaf-level offloading hooks every Linear inside the blocks: a full-graph compile of a block cannot trace them."""
    return mode not in ("group", "sequential")


def compile_transformer(pipe: QwenImagePipeline, **kwargs: Any) -> None:
    """Compile the transformer's 60 identical blocks once, with dynamic shapes.

    `dynamic=True` makes image and prompt lengths symbolic from the first compile, so a request at a size the
    warm-up did not see reuses the compiled code instead of recompiling inside its deadline. Compiling one block
    class, not the whole model, takes seconds rather than minutes. `kwargs` go to torch.compile (tests pass a
    counting backend).

    Duck sizing is switched off (process-wide: this replica compiles nothing else): it would tie two symbols that
    happen to be equal at the first size (the text rope slice's offset and the image token count on the tiny test
    model) and so recompile at the next size anyway.
    """
    import torch.fx.experimental._config as fx_config

    fx_config.use_duck_shape = False
    pipe.transformer.compile_repeated_blocks(fullgraph=True, dynamic=True, **kwargs)


def _apply_lightning(pipe: QwenImagePipeline, lora: Path, *, fuse: bool) -> None:
    pipe.scheduler = lightning_scheduler(pipe.scheduler)
    try:
        if lora.is_file():
            pipe.load_lora_weights(
                str(lora.parent), weight_name=lora.name, adapter_name="lightning", local_files_only=True
            )
        else:
            pipe.load_lora_weights(str(lora), adapter_name="lightning", local_files_only=True)
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"could not load the Lightning LoRA {lora}: {type(exc).__name__}: {exc}") from exc
    if fuse:
        pipe.fuse_lora(adapter_names=["lightning"], lora_scale=1.0)
        pipe.unload_lora_weights()
