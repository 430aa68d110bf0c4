"""The memory plan as a pure function: a table of real cards in, a placement (or a refusal saying what works) out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from models.qwen_image.memory import (
    GIB,
    PUBLISHED_LARGEST_LEAF_PARAMS,
    PUBLISHED_PARAMS,
    ComponentSizes,
    PlanInputs,
    PlanRefused,
    choose_plan,
    gpu_need,
)

MIB = 1024**2
# What a CUDA context and the driver take before the replica loads anything.
CONTEXT = int(0.6 * GIB)
REAL = ComponentSizes.published()


def card(total_mib: int) -> int:
    """Free bytes on a card whose total is `total_mib` as nvidia-smi reports it."""
    return total_mib * MIB - CONTEXT


# (card, nvidia-smi total MiB, host RAM available GiB, expected placement). Hosts are what such cards usually sit in.
CARDS = [
    ("L4 / A10G 24 GB", 23_034, 60, "group"),
    ("RTX 4090 24 GB", 24_564, 60, "group"),
    ("A100 40 GB", 40_960, 110, "group"),  # the transformer alone (38 GiB) plus its working memory does not fit
    ("L40S 48 GB", 46_068, 110, "text_encoder"),
    ("RTX A6000 48 GB", 49_140, 110, "text_encoder"),
    ("A100 80 GB", 81_920, 200, "off"),
    ("H100 80 GB", 81_559, 200, "off"),
    ("H200 141 GB", 143_771, 200, "off"),
]


def plan_for(total_mib: int, host_gib: float, requested: str = "auto", **kwargs: object):  # type: ignore[no-untyped-def]
    inputs = PlanInputs(
        requested=requested,  # type: ignore[arg-type]
        gpu_free=card(total_mib),
        host_available=int(host_gib * GIB),
        sizes=REAL,
        max_pixels=4_200_000,
    )
    return choose_plan(replace(inputs, **kwargs))


@pytest.mark.parametrize(("name", "total_mib", "host_gib", "mode"), CARDS, ids=[c[0] for c in CARDS])
def test_every_card_in_the_table_gets_a_plan_that_fits_it(name: str, total_mib: int, host_gib: int, mode: str) -> None:
    plan = plan_for(total_mib, host_gib)
    assert plan.mode == mode, plan.summary()
    assert plan.gpu_need is not None and plan.gpu_need <= card(total_mib)
    assert plan.host_need <= host_gib * GIB
    # Offloading plans come with the advice that makes them usable: few steps, each streaming the weights.
    assert (plan.advice is not None) == (mode == "group")
    as_dict = plan.as_dict()
    assert as_dict["mode"] == mode and as_dict["gpu_free_gib"] == round(card(total_mib) / GIB, 1)


def test_the_faster_placement_wins_whenever_it_fits() -> None:
    # Every plan auto picks needs less than the one before it in speed order, and the slower ones always fit too.
    for _, total_mib, host_gib, mode in CARDS:
        plan = plan_for(total_mib, host_gib)
        order = ["off", "text_encoder", "group"]
        for faster in order[: order.index(mode)]:
            with pytest.raises(PlanRefused):
                plan_for(total_mib, host_gib, faster)
        for slower in order[order.index(mode) :]:
            assert plan_for(total_mib, host_gib, slower).mode == slower
        assert plan.needs["off"] > plan.needs["text_encoder"] > plan.needs["group"]


def test_weights_alone_are_what_the_model_card_says() -> None:
    assert REAL.transformer / GIB == pytest.approx(38.05, abs=0.01)  # 20.4 B params in bf16
    assert REAL.text_encoder / GIB == pytest.approx(15.45, abs=0.01)  # 8.3 B
    assert REAL.vae / GIB == pytest.approx(0.24, abs=0.01)  # 0.13 B
    assert REAL.largest_leaf / GIB == pytest.approx(1.02, abs=0.01)


def test_published_sizes_match_models_built_from_the_published_configs() -> None:
    from models.qwen_image.published import build_on_meta

    built = build_on_meta()
    for name, module in built.items():
        assert sum(p.numel() for p in module.parameters()) == PUBLISHED_PARAMS[name], name
    assert max(p.numel() for p in built["text_encoder"].parameters()) == PUBLISHED_LARGEST_LEAF_PARAMS


def test_a_card_too_small_for_anything_is_refused_with_what_would_work() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_for(4_096, 60)  # a 4 GB card
    message = str(refused.value)
    assert "cannot start on cuda with cpu_offload auto" in message
    assert "group needs ~5.1 GiB on the GPU even with every VAE decode tiled" in message
    assert "It needs a GPU with ~5.1 GiB free and ~57.7 GiB of host RAM (group offload)" in message


def test_too_little_host_ram_to_offload_is_refused_not_swapped() -> None:
    # A 24 GB cloud card on a 32 GB host: the weights cannot be kept in host RAM for streaming.
    with pytest.raises(PlanRefused) as refused:
        plan_for(23_034, 28)
    assert "group keeps ~57.7 GiB in host RAM, 28.0 GiB available" in str(refused.value)
    # On an 80 GB card the same host is fine: nothing is offloaded, loading goes straight to the GPU.
    assert plan_for(81_920, 28).mode == "off"


def test_a_forced_mode_that_cannot_fit_names_the_one_that_would() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_for(24_564, 60, "off")
    message = str(refused.value)
    assert "with cpu_offload off: off needs ~58.4 GiB" in message
    assert "cpu_offload group would fit (needs ~5.1 GiB)" in message
    # Model offload moves the whole 38 GiB transformer in: it cannot work on a 40 GB A100 (the old README advice).
    with pytest.raises(PlanRefused, match="model needs"):
        plan_for(40_960, 110, "model")
    assert plan_for(49_140, 110, "model").mode == "model"


def test_decodes_that_would_not_fit_are_tiled_from_a_lower_size() -> None:
    # On a 48 GB card with the transformer resident, an untiled 2048² decode (~21 GiB) cannot fit: the plan tiles
    # from a smaller size instead of letting the decode run out of memory.
    plan = plan_for(49_140, 110)
    assert plan.mode == "text_encoder"
    assert plan.vae_tiling_min_pixels is not None and plan.vae_tiling_min_pixels < 1536 * 1536
    assert gpu_need("text_encoder", replace_inputs(49_140), plan.vae_tiling_min_pixels) <= card(49_140)
    assert gpu_need("text_encoder", replace_inputs(49_140), plan.vae_tiling_min_pixels + 64 * 64) > card(49_140)
    # With room to spare the configured threshold stands.
    assert plan_for(143_771, 200).vae_tiling_min_pixels == 1536 * 1536


def replace_inputs(total_mib: int) -> PlanInputs:
    return PlanInputs("auto", card(total_mib), 110 * GIB, REAL, 4_200_000)


def test_smaller_images_need_less_working_memory() -> None:
    small = plan_for(46_068, 110, max_pixels=1328 * 1328)
    large = plan_for(46_068, 110)
    assert small.gpu_need is not None and large.gpu_need is not None
    assert small.needs["group"] < large.needs["group"]


def test_on_the_cpu_there_is_nothing_to_offload() -> None:
    tiny = ComponentSizes(transformer=4096, text_encoder=8192, vae=2048, largest_leaf=1024)
    plan = choose_plan(PlanInputs("auto", None, 8 * GIB, tiny, 64 * 64, device="cpu"))
    assert (plan.mode, plan.gpu_need, plan.device) == ("off", None, "cpu")
    # A forced mode still installs its hooks (the tests exercise them on the CPU).
    assert choose_plan(PlanInputs("group", None, 8 * GIB, tiny, 64 * 64, device="cpu")).mode == "group"
    # The real model in float32 on a 24 GiB host: refused, not swapped to death.
    with pytest.raises(PlanRefused, match="use a GPU"):
        choose_plan(PlanInputs("auto", None, 24 * GIB, ComponentSizes.published(4), 4_200_000, device="cpu"))
