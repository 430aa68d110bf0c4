"""Options from a file: plain values, known names, bounded ranges, and a size estimate that matches the network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.stylegan3.errors import NetworkFormatError
from models.stylegan3.generator import make_generator
from models.stylegan3.options import check_options, estimated_parameters, to_plain
from models.stylegan3.ours import load_ours, save_ours
from models.stylegan3.testing import tiny_generator


def test_release_values_become_plain() -> None:
    value = {"size": np.broadcast_to(np.asarray(36), [2]), "rate": np.float64(16.0), "fp16": np.bool_(True)}
    assert to_plain(value) == {"size": [36, 36], "rate": 16.0, "fp16": True}


def test_large_arrays_and_deep_values_are_refused_before_conversion() -> None:
    with pytest.raises(NetworkFormatError, match=r"options\.x: an array of 1000000 values"):
        to_plain({"x": np.zeros(10**6)})
    deep: object = 1
    for _ in range(20):
        deep = [deep]
    with pytest.raises(NetworkFormatError, match="nested too deep"):
        to_plain({"x": deep})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"z_dim": 10**9}, r"option z_dim must be an integer in 1\.\.4096"),
        ({"img_resolution": 100}, "power of two"),
        ({"channel_max": True}, "option channel_max must be an integer"),
        ({"magnitude_ema_beta": float("nan")}, "option magnitude_ema_beta must be a number"),
        (
            {"num_layers": 2, "num_critical": 1, "first_stopband": 0.01, "first_cutoff": 0.005},
            r"layer L1_16_8 filters of 6144 taps",
        ),
        ({"mapping_kwargs": {"num_layers": 10**6}}, r"mapping_kwargs\.num_layers"),
        ({"mapping_kwargs": {"rand_embedding": False}}, "unsupported mapping option"),
        ({"num_critical": 14}, "num_critical must be smaller"),
    ],
)
def test_options_out_of_range_are_named(change: dict[str, object], match: str) -> None:
    options = tiny_generator().init_kwargs | change
    with pytest.raises(NetworkFormatError, match=match):
        estimated_parameters(check_options(options))


@pytest.mark.parametrize(("cfg", "c_dim"), [("t", 0), ("r", 5)])
def test_the_estimate_counts_the_weights(cfg: str, c_dim: int) -> None:
    g = make_generator(cfg, img_resolution=64, channel_base=2048, channel_max=64, c_dim=c_dim, z_dim=32, w_dim=32)
    held = sum(v.numel() for v in g.state_dict().values())
    estimate = estimated_parameters(check_options(g.init_kwargs))
    assert 0.9 * held <= estimate <= held  # weights only: biases and filters (squared in -R) are the small rest


def test_our_format_checks_its_config_too(tmp_path: Path) -> None:
    folder = save_ours(tiny_generator(), tmp_path / "net")
    config = json.loads((folder / "config.json").read_text())
    config["init_kwargs"] |= {"channel_base": 1 << 22, "channel_max": 4096, "img_resolution": 4096}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(NetworkFormatError, match=r"options describe \d+ weights, the file holds"):
        load_ours(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(NetworkFormatError, match="unreadable config"):
        load_ours(folder)
