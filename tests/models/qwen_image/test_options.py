from __future__ import annotations

import math

import pytest

from models.qwen_image import RECOMMENDED_SIZES, QwenOptions, native_size
from models.qwen_image.options import MAGIC_SUFFIXES, with_magic


def test_defaults_follow_the_model_card() -> None:
    options = QwenOptions()
    assert (options.default_steps, options.default_cfg, options.negative_prompt) == (50, 4.0, " ")
    lightning = QwenOptions(lightning_lora="/weights/lightning.safetensors")
    assert (lightning.default_steps, lightning.default_cfg) == (8, 1.0)
    assert QwenOptions(lightning_lora="x", steps=4).default_steps == 4


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"max_sequence_length": 2048}, {"size_policy": "square"}])
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QwenOptions(**kwargs)  # type: ignore[arg-type]


def test_magic_suffix_picks_the_prompt_s_language() -> None:
    assert with_magic("a cat") == "a cat" + MAGIC_SUFFIXES["en"]
    assert with_magic("一只猫") == "一只猫" + MAGIC_SUFFIXES["zh"]


@pytest.mark.parametrize(
    ("size", "multiple", "expected"),
    [((1024, 1024), 16, (1024, 1024)), ((50, 70), 16, (48, 64)), ((50, 70), 8, (48, 72)), ((3, 5), 16, (16, 16))],
)
def test_native_size_rounds_to_the_multiple(size: tuple[int, int], multiple: int, expected: tuple[int, int]) -> None:
    assert native_size(*size, multiple) == expected


def test_recommended_policy_picks_the_nearest_aspect() -> None:
    assert native_size(1920, 1080, 16, "recommended") == (1664, 928)
    assert native_size(600, 800, 16, "recommended") == (1104, 1472)
    assert native_size(512, 512, 16, "recommended") == (1328, 1328)
    for w, h in RECOMMENDED_SIZES:
        assert native_size(w, h, 16, "recommended") == (w, h)
    # A coarser multiple (the tiny pipeline's is 8; a made-up 64 here) still divides the result.
    assert all(side % 64 == 0 for side in native_size(1920, 1080, 64, "recommended"))


def test_lightning_scheduler_settings() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from models.qwen_image.loader import lightning_scheduler

    base = FlowMatchEulerDiscreteScheduler(shift_terminal=0.02, use_dynamic_shifting=True, max_shift=0.9)
    sched = lightning_scheduler(base)
    assert isinstance(sched, FlowMatchEulerDiscreteScheduler)
    assert sched.config.base_shift == sched.config.max_shift == pytest.approx(math.log(3))
    assert sched.config.shift_terminal is None and sched.config.time_shift_type == "exponential"
    sched.set_timesteps(8, mu=math.log(3))
    assert len(sched.timesteps) == 8
