"""Random networks for tests and benchmarks, and a writer of the release's network-pickle layout.

The writer reproduces the pickle structure the release emits, without any of its code: stand-in objects whose
`__reduce__` names `torch_utils.persistence._reconstruct_persistent_obj` with the release's `meta` dict, and a dict
subclass pickled as `dnnlib.util.EasyDict`. Pickle checks that a global it writes is importable under its name, so
those two modules exist in `sys.modules` only while writing (and the writer refuses to shadow real ones).
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.stylegan3.generator import Generator, make_generator

CLASS_PREFIX = "training.networks_stylegan3."
STAND_IN_SOURCE = "# Stand-in for the release's training/networks_stylegan3.py. A safe loader never executes this.\n"


def _reconstruct_persistent_obj(meta: Any) -> Any:  # pragma: no cover - only its name is ever pickled
    raise RuntimeError("stand-in: a network pickle written by models.stylegan3.testing is read by our unpickler")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
_reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"


class EasyDict(dict):  # type: ignore[type-arg]
    pass


EasyDict.__module__ = "dnnlib.util"
EasyDict.__qualname__ = "EasyDict"


@dataclass
class PersistentObject:
    """Pickles exactly as the release's persistent classes do: `_reconstruct_persistent_obj(meta)`."""

    class_name: str
    state: dict[str, Any]
    module_src: str = STAND_IN_SOURCE

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        meta = {
            "type": "class",
            "version": 6,
            "module_src": self.module_src,
            "class_name": self.class_name,
            "state": self.state,
        }
        return (_reconstruct_persistent_obj, (meta,))


@contextlib.contextmanager
def stand_in_modules() -> Iterator[None]:
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    present = [n for n in names if n in sys.modules]
    if present:
        raise RuntimeError(f"refusing to shadow importable modules: {', '.join(present)}")
    mods = {n: types.ModuleType(n) for n in names}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj  # type: ignore[attr-defined]
    mods["torch_utils"].persistence = mods["torch_utils.persistence"]  # type: ignore[attr-defined]
    mods["dnnlib.util"].EasyDict = EasyDict  # type: ignore[attr-defined]
    mods["dnnlib"].util = mods["dnnlib.util"]  # type: ignore[attr-defined]
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n in names:
            sys.modules.pop(n, None)


def _plain_attributes(module: nn.Module) -> dict[str, Any]:
    """Scalar attributes as the release stores them: schedule values are numpy (sizes as [x, y] arrays)."""
    out: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key in ("training", "init_kwargs"):
            continue
        if key in ("in_size", "out_size", "size"):
            out[key] = np.array([value, value], dtype=np.int64)
        elif key in ("padding", "naive_padding"):
            out[key] = [np.int64(v) for v in value]
        elif isinstance(value, bool | str) or value is None:
            out[key] = value
        elif isinstance(value, int):
            out[key] = value
        elif isinstance(value, float):
            out[key] = np.float64(value)
    return out


def to_persistent(module: nn.Module, module_src: str = STAND_IN_SOURCE, init_kwargs: Any = None) -> PersistentObject:
    """Our module tree → the release's pickled `__dict__` layout, children persistent too."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": OrderedDict(
            (n, None if p is None else nn.Parameter(p.detach().clone(), requires_grad=False))
            for n, p in module._parameters.items()
        ),
        "_buffers": OrderedDict((n, None if b is None else b.detach().clone()) for n, b in module._buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(
            (n, None if c is None else to_persistent(c, module_src)) for n, c in module._modules.items()
        ),
        "_init_args": (),
        "_init_kwargs": init_kwargs if init_kwargs is not None else {},
        **_plain_attributes(module),
    }
    return PersistentObject(CLASS_PREFIX + type(module).__name__, state, module_src)


def release_init_kwargs(generator: Generator) -> dict[str, Any]:
    """The generator's options as the release's training script passes them (mapping_kwargs an EasyDict)."""
    kwargs = copy.deepcopy(generator.init_kwargs)
    kwargs["mapping_kwargs"] = EasyDict(kwargs.get("mapping_kwargs") or {})
    return kwargs


def write_network_pickle(
    path: str | os.PathLike[str],
    G_ema: Generator,  # the release's names
    G: Generator | None = None,
    module_src: str = STAND_IN_SOURCE,
    protocol: int = 4,
) -> None:
    """A release-style snapshot: dict(G, D, G_ema, training_set_kwargs, augment_pipe)."""
    discriminator = PersistentObject(
        "training.networks_stylegan2.Discriminator",
        {
            "_parameters": OrderedDict(w=nn.Parameter(torch.randn(4, 4), requires_grad=False)),
            "_buffers": OrderedDict(),
            "_modules": OrderedDict(),
            "_init_args": (),
            "_init_kwargs": {"c_dim": G_ema.c_dim, "img_resolution": G_ema.img_resolution, "img_channels": 3},
        },
        module_src,
    )
    data = {
        "G": to_persistent(G if G is not None else G_ema, module_src, release_init_kwargs(G_ema)),
        "D": discriminator,
        "G_ema": to_persistent(G_ema, module_src, release_init_kwargs(G_ema)),
        "training_set_kwargs": EasyDict(
            class_name="training.dataset.ImageFolderDataset",
            path="datasets/tiny.zip",
            use_labels=G_ema.c_dim > 0,
            max_size=100,
            xflip=False,
            resolution=G_ema.img_resolution,
            random_seed=0,
        ),
        "augment_pipe": None,
    }
    with stand_in_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


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
