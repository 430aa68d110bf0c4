"""Settings for a Qwen-Image engine: one frozen value, fixed when the replica starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SizePolicy = Literal["multiple", "recommended"]
OffloadMode = Literal["auto", "off", "model", "sequential"]

# The model card's "positive magic", appended to prompts when enabled; Chinese prompts get the Chinese one.
MAGIC_SUFFIXES = {"en": ", Ultra HD, 4K, cinematic composition.", "zh": ", 超清，4K，电影级构图."}

# Qwen-Image-Lightning was distilled with shift 3: a flat dynamic shift of log(3) and no terminal stretch.
# Applied on top of the checkpoint's own scheduler config, so everything else stays as published.
LIGHTNING_SCHEDULER: dict[str, Any] = {
    "base_shift": math.log(3),
    "max_shift": math.log(3),
    "shift_terminal": None,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}
LIGHTNING_STEPS = 8
LIGHTNING_CFG = 1.0
DEFAULT_STEPS = 50
DEFAULT_CFG = 4.0


@dataclass(frozen=True)
class QwenOptions:
    """How the engine loads and runs the pipeline.

    `steps` and `true_cfg_scale` left as None mean the model's defaults: 50 steps with CFG 4.0, or 8 steps without
    CFG when a Lightning LoRA is set (the distilled model breaks with the base settings and vice versa).
    """

    steps: int | None = None
    true_cfg_scale: float | None = None
    # The model card uses a single space: CFG only runs with *some* negative prompt, and " " is the neutral one.
    negative_prompt: str = " "
    magic_suffix: bool = False
    max_sequence_length: int = 512
    lightning_lora: str | Path | None = None
    # Fusing removes the LoRA's per-layer overhead on every step; unfused keeps the base weights untouched.
    fuse_lora: bool = True
    size_policy: SizePolicy = "multiple"
    # VAE decode memory grows with the image (~8 GiB at 1328², ~21 GiB at 2048²); tile above this many pixels.
    vae_tiling_min_pixels: int | None = 1536 * 1536
    # "auto" offloads when the GPU has less memory than the ~54 GiB of bf16 weights plus working room.
    cpu_offload: OffloadMode = "auto"
    auto_offload_below_gib: float = 72.0
    compile: bool = False
    warmup_size: tuple[int, int] = (512, 512)
    warmup_steps: int = 2

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 1 <= self.max_sequence_length <= 1024:
            raise ValueError(f"max_sequence_length must be in 1..1024, got {self.max_sequence_length}")
        if self.size_policy not in ("multiple", "recommended"):
            raise ValueError(f"size_policy must be 'multiple' or 'recommended', got {self.size_policy!r}")
        if self.cpu_offload not in ("auto", "off", "model", "sequential"):
            raise ValueError(f"cpu_offload must be auto, off, model or sequential, got {self.cpu_offload!r}")

    @property
    def default_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return LIGHTNING_STEPS if self.lightning_lora else DEFAULT_STEPS

    @property
    def default_cfg(self) -> float:
        if self.true_cfg_scale is not None:
            return self.true_cfg_scale
        return LIGHTNING_CFG if self.lightning_lora else DEFAULT_CFG


def with_magic(prompt: str) -> str:
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in prompt) else "en"
    return prompt + MAGIC_SUFFIXES[lang]
