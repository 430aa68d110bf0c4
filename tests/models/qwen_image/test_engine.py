from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models.imaging import fit_cover
from models.qwen_image import (
    GenerationCancelled,
    Progress,
    QwenImageEngine,
    QwenOptions,
    stop_check,
)

PROMPT = "a red fox in the snow"


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def test_engine_matches_the_pipeline_called_directly(engine: QwenImageEngine, tiny_weights: Path) -> None:
    import torch
    from diffusers import QwenImagePipeline

    result = engine.generate(PROMPT, 50, 70, seed=5, steps=2)

    # An independent load, called the way the model card does it.
    pipe = QwenImagePipeline.from_pretrained(str(tiny_weights), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert (result.native_width, result.native_height) == (48, 72)  # the tiny VAE's multiple is 8, not 16
    direct = pipe(
        PROMPT,
        negative_prompt=" ",
        true_cfg_scale=4.0,
        width=48,
        height=72,
        num_inference_steps=2,
        generator=torch.Generator("cpu").manual_seed(5),
        max_sequence_length=512,
    ).images[0]
    expected = np.asarray(fit_cover(direct, 50, 70).convert("RGB"))

    got = pixels(result.png)
    assert got.shape == (70, 50, 3)
    np.testing.assert_array_equal(got, expected)
    assert (result.seed, result.steps, result.guidance) == (5, 2, 4.0)
    assert got.std() > 1  # noise from random weights, not a blank image


def test_same_seed_same_image_other_seed_other_image(engine: QwenImageEngine) -> None:
    a = engine.generate(PROMPT, 40, 40, seed=11, steps=2)
    b = engine.generate(PROMPT, 40, 40, seed=11, steps=2)
    c = engine.generate(PROMPT, 40, 40, seed=12, steps=2)
    assert a.png == b.png
    assert not np.array_equal(pixels(a.png), pixels(c.png))


def test_output_is_exactly_the_requested_size(engine: QwenImageEngine) -> None:
    for width, height in [(50, 70), (33, 17)]:
        result = engine.generate(PROMPT, width, height, seed=1, steps=2)
        assert pixels(result.png).shape[:2] == (height, width)
        assert (result.width, result.height) == (width, height)
        assert result.native_width % 8 == 0 and result.native_height % 8 == 0


def test_no_seed_means_the_prompt_s_stable_seed(engine: QwenImageEngine) -> None:
    from models.seeds import stable_seed

    result = engine.generate(PROMPT, 32, 32, steps=2)
    assert result.seed == stable_seed(PROMPT)
    assert result.png == engine.generate(PROMPT, 32, 32, stable_seed(PROMPT), steps=2).png


def test_cancel_stops_within_a_step_and_skips_the_decode(
    engine: QwenImageEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[int] = []
    real_decode = engine.pipeline.vae.decode
    monkeypatch.setattr(engine.pipeline.vae, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    steps: list[tuple[int, int]] = []
    stop_after = 2

    with pytest.raises(GenerationCancelled) as info:
        engine.generate(
            PROMPT,
            32,
            32,
            seed=1,
            steps=6,
            on_step=lambda i, n: steps.append((i, n)),
            should_stop=lambda: len(steps) >= stop_after,
        )
    assert steps == [(1, 6), (2, 6)]
    assert (info.value.steps_done, info.value.total) == (2, 6)
    assert decodes == []
    assert engine.progress() is None

    # Stopped before it starts: nothing runs at all.
    with pytest.raises(GenerationCancelled) as info:
        engine.generate(
            PROMPT, 32, 32, seed=1, steps=6, on_step=lambda i, n: steps.append((i, n)), should_stop=lambda: True
        )
    assert info.value.steps_done == 0 and len(steps) == 2

    # The engine is fine afterwards.
    assert engine.generate(PROMPT, 32, 32, seed=1, steps=2).width == 32
    assert decodes == [1]


def test_generation_cancelled_pickles() -> None:
    import pickle

    again = pickle.loads(pickle.dumps(GenerationCancelled(3, 8)))
    assert isinstance(again, GenerationCancelled)
    assert (again.steps_done, again.total, str(again)) == (3, 8, "generation cancelled after 3 of 8 steps")


def test_progress_is_readable_from_another_thread(engine: QwenImageEngine) -> None:
    reached, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def on_step(done: int, total: int) -> None:
        if done == 1:
            reached.set()
            assert release.wait(30)

    def work() -> None:
        outcome["result"] = engine.generate(PROMPT, 32, 32, seed=2, steps=3, on_step=on_step, tag="req-1")

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert reached.wait(30)
        progress = engine.progress()
        assert isinstance(progress, Progress)
        assert (progress.tag, progress.step, progress.total) == ("req-1", 1, 3)
        health = engine.health()
        assert health["busy"] is True and health["progress"]["step"] == 1
    finally:
        release.set()
        worker.join(30)
    assert outcome["result"].steps == 3
    assert engine.progress() is None and engine.health()["busy"] is False


def test_warm_up_measures_the_speed_that_job_estimates_come_from(tiny_weights: Path) -> None:
    engine = QwenImageEngine(tiny_weights, QwenOptions(warmup_sizes=((96, 96), (32, 32)), warmup_steps=3), "cpu")
    assert engine.estimate_seconds(32, 32) is None  # nothing measured yet: no estimate, nothing declined
    assert engine.speed_table(((32, 32),)) == []
    assert engine.warm_up() > 0
    assert engine.generated == 3  # one run to initialise, then one timed run per size
    # Estimates grow with steps, CFG and size, and are in the range of a real run.
    small, more_steps = engine.estimate_seconds(32, 32, 4), engine.estimate_seconds(32, 32, 12)
    no_cfg, big = engine.estimate_seconds(32, 32, 12, 1.0), engine.estimate_seconds(96, 96, 12)
    assert small is not None and more_steps is not None and no_cfg is not None and big is not None
    assert small < more_steps and no_cfg < more_steps < big
    started = time.perf_counter()
    engine.generate(PROMPT, 32, 32, 1, steps=12)
    took = time.perf_counter() - started
    # Generous: other processes share this machine's cores, so one run can be much slower than the warm-up's.
    assert more_steps / 4 < took < more_steps * 4
    [row] = engine.speed_table(((32, 32),))
    assert row["size"] == "32x32" and 0 < row["s_per_step_no_cfg"] < row["s_per_step_cfg"]

    health = engine.health()
    assert health["device"] == "cpu" and health["dtype"] == "float32" and health["progress"] is None
    assert health["memory_plan"]["mode"] == "off" and health["memory_plan"]["device"] == "cpu"
    assert health["load_peak_host_rss_gib"] > 0


def test_sizes_past_the_planned_max_pixels_are_refused(tiny_weights: Path) -> None:
    engine = QwenImageEngine(tiny_weights, QwenOptions(max_pixels=64 * 64), device="cpu")
    assert engine.plan.max_pixels == 64 * 64
    with pytest.raises(ValueError, match="max_pixels 4096"):
        engine.generate(PROMPT, 72, 64, 1, steps=2)
    with pytest.raises(ValueError, match="max_pixels"):
        engine.estimate_seconds(72, 64)
    assert engine.generate(PROMPT, 64, 64, 1, steps=2).width == 64


def test_bad_arguments_are_refused_before_running(engine: QwenImageEngine) -> None:
    with pytest.raises(ValueError, match="prompt"):
        engine.generate("  ", 32, 32, 1)
    with pytest.raises(ValueError, match="size"):
        engine.generate(PROMPT, 0, 32, 1)
    with pytest.raises(ValueError, match="steps"):
        engine.generate(PROMPT, 32, 32, 1, steps=0)
    # The base scheduler's terminal shift turns a single step into NaN (a black image): refused, not rendered.
    assert engine.min_steps == 2
    with pytest.raises(ValueError, match="steps must be >= 2"):
        engine.generate(PROMPT, 32, 32, 1, steps=1)


def test_loading_and_generating_touch_no_network(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network access during a local load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    engine = QwenImageEngine(tiny_weights, QwenOptions(steps=2, true_cfg_scale=1.0), device="cpu")
    result = engine.generate(PROMPT, 32, 32, 0)
    assert (result.steps, result.guidance) == (2, 1.0)
    assert attempts == []


def test_stop_check_watches_the_event_and_the_deadline(engine: QwenImageEngine) -> None:
    event = threading.Event()
    check = stop_check(event, deadline=time.time() + 3600)
    assert check() is False
    event.set()
    assert check() is True
    assert stop_check(None, deadline=time.time() - 1)() is True
    assert stop_check()() is False
    # A deadline already past cancels before any step runs.
    with pytest.raises(GenerationCancelled) as info:
        engine.generate(PROMPT, 32, 32, 1, steps=2, should_stop=stop_check(deadline=time.time() - 1))
    assert info.value.steps_done == 0


def test_magic_suffix_and_vae_tiling_follow_the_options(
    engine: QwenImageEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from models.qwen_image.options import with_magic

    plain = engine.generate(PROMPT, 32, 32, 4, steps=2)
    suffixed = engine.generate(with_magic(PROMPT), 32, 32, 4, steps=2)
    monkeypatch.setattr(engine, "options", replace(engine.options, magic_suffix=True))
    # The memory plan owns the threshold (it may lower the configured one so decodes fit the card).
    monkeypatch.setattr(engine, "plan", replace(engine.plan, vae_tiling_min_pixels=40 * 40))
    magic = engine.generate(PROMPT, 32, 32, 4, steps=2)
    assert magic.png == suffixed.png != plain.png
    assert engine.pipeline.vae.use_tiling is False  # 32×32 is under the threshold
    engine.generate(PROMPT, 48, 48, 4, steps=2)
    assert engine.pipeline.vae.use_tiling is True
    engine.generate(PROMPT, 32, 32, 4, steps=2)
    assert engine.pipeline.vae.use_tiling is False


def test_tiny_builder_cli_usage() -> None:
    from models.qwen_image.tiny import main

    assert main([]) == 2
