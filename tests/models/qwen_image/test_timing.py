"""The speed model: job estimates from measured runs, upper bounds with one size, a fit with two."""

from __future__ import annotations

import pytest

from models.qwen_image.timing import RunTiming, SpeedModel, forward_cost, from_stamps, timeout_advice

HIDDEN = 3072


def run(tokens: int, step_s: float, overhead_s: float | None = 2.0, forwards: int = 2) -> RunTiming:
    return RunTiming(tokens=tokens, pixels=tokens * 256, forwards=forwards, step_s=step_s, overhead_s=overhead_s)


def test_nothing_measured_means_no_estimate() -> None:
    model = SpeedModel(HIDDEN)
    assert model.estimate(4096, 4096 * 256, 50, 2) is None
    model.record(run(1024, 1.0, overhead_s=None))  # a cold run: its step time counts, its overhead does not
    assert model.seconds_per_step(1024, 2) == pytest.approx(1.0)
    assert model.estimate(1024, 1024 * 256, 50, 2) is None


def test_one_measured_size_bounds_other_sizes_from_above() -> None:
    model = SpeedModel(HIDDEN)
    model.record(run(1024, 1.0))
    assert model.estimate(1024, 1024 * 256, 10, 2) == pytest.approx(10 * 1.0 + 2.0)
    assert model.seconds_per_step(1024, 1) == pytest.approx(0.5)  # CFG off: half the forwards
    # Larger: scaled by the forward's cost (an upper bound, since some of the time does not grow with the image).
    ratio = forward_cost(6889, HIDDEN) / forward_cost(1024, HIDDEN)
    assert model.seconds_per_step(6889, 2) == pytest.approx(ratio)
    # Smaller: the measured time itself (again an upper bound).
    assert model.seconds_per_step(256, 2) == pytest.approx(1.0)


def test_two_sizes_separate_the_fixed_cost_from_the_per_token_cost() -> None:
    # Offloading: each forward streams the weights (a fixed 1.6 s) plus compute that grows with the image.
    def truth(tokens: int) -> float:
        return 1.6 + 1e-9 * forward_cost(tokens, HIDDEN)

    model = SpeedModel(HIDDEN)
    for tokens in (1024, 6889):
        model.record(run(tokens, 2 * truth(tokens)))
    for tokens in (256, 4096, 6032, 16384):
        assert model.seconds_per_step(tokens, 2) == pytest.approx(2 * truth(tokens), rel=0.01)


def test_a_bigger_job_is_never_estimated_below_a_measured_smaller_one() -> None:
    model = SpeedModel(HIDDEN)
    model.record(run(1024, 2.0))
    model.record(run(6889, 1.5))  # noise: the larger run happened to be faster
    assert model.seconds_per_step(16384, 2) >= 2.0  # type: ignore[operator]


def test_new_runs_move_the_estimate_halfway() -> None:
    model = SpeedModel(HIDDEN)
    model.record(run(1024, 1.0))
    model.record(run(1024, 3.0))
    assert model.seconds_per_step(1024, 2) == pytest.approx(2.0)
    assert model.runs == 2


def test_stamps_give_the_median_step_and_the_rest_as_overhead() -> None:
    # Started at 0, text encoding 1 s, steps of 0.5 s (one slow outlier), decode 2 s.
    timing = from_stamps(0.0, [1.5, 2.0, 2.5, 4.0, 4.5], 6.5, tokens=16, pixels=1024, forwards=2, cold=False)
    assert timing is not None
    assert timing.step_s == pytest.approx(0.5)
    assert timing.overhead_s == pytest.approx(1.0 + 2.0)
    assert from_stamps(0.0, [1.0, 2.0], 3.0, tokens=1, pixels=1, forwards=1, cold=True).overhead_s is None  # type: ignore[union-attr]
    assert from_stamps(0.0, [1.0], 2.0, tokens=1, pixels=1, forwards=1, cold=False) is None


def test_timeout_advice_names_lightning_or_the_timeout_that_would_work() -> None:
    assert timeout_advice(100, 15, 120, default_steps=50, lightning=False) is None
    advice = timeout_advice(340, 28, 120, default_steps=50, lightning=False)
    assert advice == (
        "a default job (50 steps) takes ~340 s here, over timeout_s 120: use the 8-step Lightning LoRA "
        "(lightning_lora; ~28 s per job) or raise timeout_s to 408"
    )
    assert timeout_advice(1.3, 0.5, 0.2, default_steps=50, lightning=False) == (
        "a default job (50 steps) takes ~1.3 s here, over timeout_s 0.2: raise timeout_s to 2"
    )
    assert timeout_advice(140, 140, 120, default_steps=8, lightning=True) == (
        "a default job (8 steps) takes ~140 s here, over timeout_s 120: raise timeout_s to 168"
    )
