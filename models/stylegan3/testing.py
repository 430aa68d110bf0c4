"""Random networks for tests and benchmarks, written as the release's network pickles (see `release_pickle`)."""

from __future__ import annotations

import os
from typing import Any

import torch

from models.stylegan3.generator import Generator, make_generator
from models.stylegan3.release_others import augment_pipe, discriminator
from models.stylegan3.release_pickle import NumpyLayout, snapshot, write
from models.stylegan3.release_tree import STYLEGAN3_SRC, release_generator

# What train.py sets for a batch of 32: 0.5 ** (batch / 20k images).
RELEASE_MAGNITUDE_EMA_BETA = 0.5 ** (32 / (20 * 1e3))


def release_snapshot(G_ema: Generator, G: Generator | None = None, module_src: str = STYLEGAN3_SRC) -> dict[str, Any]:
    """The dict a release training run pickles, around our generator's weights (a tiny D and augment pipe)."""
    tree = release_generator(G_ema, module_src)
    training_set_kwargs = {
        "class_name": "training.dataset.ImageFolderDataset",
        "path": "datasets/tiny.zip",
        "use_labels": G_ema.c_dim > 0,
        "max_size": 100,
        "xflip": False,
        "resolution": G_ema.img_resolution,
        "random_seed": 0,
    }
    return snapshot(
        tree,
        release_generator(G if G is not None else G_ema, module_src),
        discriminator(G_ema.img_resolution, G_ema.c_dim),
        augment_pipe(),
        training_set_kwargs,
    )


def write_network_pickle(
    path: str | os.PathLike[str],
    G_ema: Generator,  # the release's names
    G: Generator | None = None,
    protocol: int = 4,
    numpy_layout: NumpyLayout = "numpy1",
    module_src: str = STYLEGAN3_SRC,
) -> None:
    """A release-style snapshot of `G_ema` (and `G`, default: the same weights) at `path`."""
    write(path, release_snapshot(G_ema, G, module_src), protocol, numpy_layout)


def randomize_statistics(generator: Generator, seed: int = 0) -> Generator:
    """Give the weights a trained network's variety (non-unit magnitude EMAs, non-zero w_avg, biases, input
    affine), so that a mix-up of any two tensors changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        generator.mapping.w_avg.copy_(torch.randn(generator.w_dim, generator=gen) * 0.5)
        generator.synthesis.input.affine.weight.copy_(torch.randn(4, generator.w_dim, generator=gen) * 0.05)
        for layer in generator.layers:
            layer.magnitude_ema.fill_(float(torch.rand(1, generator=gen)) + 0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.1)
    return generator


def tiny_generator(
    cfg: str = "t", resolution: int = 16, c_dim: int = 0, seed: int = 0, channels: int = 8, **kwargs: Any
) -> Generator:
    """A few-channel network that runs in milliseconds on CPU, with randomised statistics."""
    torch.manual_seed(seed)
    options: dict[str, Any] = {
        "z_dim": 8,
        "w_dim": 8,
        "c_dim": c_dim,
        "img_resolution": resolution,
        "channel_base": channels * 16,
        "channel_max": channels,
        "mapping_kwargs": {"num_layers": 2},
        "magnitude_ema_beta": RELEASE_MAGNITUDE_EMA_BETA,
    }
    if cfg == "r":
        options["channel_base"], options["channel_max"] = channels * 16, channels  # keep it tiny, unlike the preset
    options.update(kwargs)
    return randomize_statistics(make_generator(cfg, **options).eval().requires_grad_(False), seed)


def random_generator(
    cfg: str = "t", resolution: int = 64, channels: int = 64, seed: int = 0, **kwargs: Any
) -> Generator:
    """A random-init network of the release's shape (full layer schedule, same channel_base/channel_max ratio), at
    most `channels` wide: the release's widths scaled by channels/512."""
    torch.manual_seed(seed)
    options: dict[str, Any] = {
        "z_dim": 64,
        "w_dim": 64,
        "img_resolution": resolution,
        "channel_base": channels * 64,
        "channel_max": channels,
    }
    options.update(kwargs)
    return make_generator(cfg, **options).eval().requires_grad_(False)
