"""Settings for a Qwen-Image engine: one frozen value, fixed when the replica starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from models.qwen_image.memory import OFFLOAD_MODES, OffloadMode

SizePolicy = Literal["multiple", "recommended"]

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
    # VAE decode memory grows with the image (~8 GiB at 1328², ~21 GiB at 2048²); tile from this many pixels (the
    # memory plan lowers it when decodes would not fit otherwise).
    vae_tiling_min_pixels: int | None = 1536 * 1536
    # Where the weights live (models.qwen_image.memory): "auto" picks the fastest placement that fits the card.
    cpu_offload: OffloadMode = "auto"
    # The largest image (native pixels) this replica renders: memory is planned for it, larger requests refused.
    # The gateway's own default cap is 4.2 MP; the "recommended" size policy never goes past 1328².
    max_pixels: int = 4_200_000
    compile: bool = False
    # The first run initialises (and compiles); then one timed run per size measures this replica's speed, which
    # sizes every later job's estimate. Two sizes let the estimate separate per-image from per-pixel cost.
    warmup_sizes: tuple[tuple[int, int], ...] = ((512, 512), (1328, 1328))
    warmup_steps: int = 3

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 1 <= self.max_sequence_length <= 1024:
            raise ValueError(f"max_sequence_length must be in 1..1024, got {self.max_sequence_length}")
        if self.size_policy not in ("multiple", "recommended"):
            raise ValueError(f"size_policy must be 'multiple' or 'recommended', got {self.size_policy!r}")
        if self.cpu_offload not in OFFLOAD_MODES:
            raise ValueError(f"cpu_offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.cpu_offload!r}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if not self.warmup_sizes or self.warmup_steps < 2:
            raise ValueError("warm-up needs at least one size and 2 steps (a step time is measured between steps)")

    @property
    def default_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return LIGHTNING_STEPS if self.lightning_lora else DEFAULT_STEPS

    @property
    def plan_max_pixels(self) -> int:
        """The largest native image memory is planned for."""
        if self.size_policy == "recommended":
            from models.qwen_image.sizes import RECOMMENDED_SIZES

            return min(self.max_pixels, max(w * h for w, h in RECOMMENDED_SIZES))
        return self.max_pixels

    @property
    def default_cfg(self) -> float:
        if self.true_cfg_scale is not None:
            return self.true_cfg_scale
        return LIGHTNING_CFG if self.lightning_lora else DEFAULT_CFG


def with_magic(prompt: str) -> str:
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in prompt) else "en"
    return prompt + MAGIC_SUFFIXES[lang]
