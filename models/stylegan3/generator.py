"""The StyleGAN3 generator (mapping + synthesis) and the T/R configuration presets."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from models.stylegan3.layers import RunMode, SynthesisLayer
from models.stylegan3.mapping import MappingNetwork, Psi
from models.stylegan3.synthesis import SynthesisNetwork

# What -R changes relative to -T (the defaults).
CONFIG_PRESETS: dict[str, dict[str, Any]] = {
    "t": {},
    "r": {"conv_kernel": 1, "use_radial_filters": True, "channel_base": 65536, "channel_max": 1024},
}


def _accepted(fn: Any) -> set[str]:
    return {p for p in inspect.signature(fn).parameters if p not in ("self", "layer_kwargs")}


_SYNTHESIS_KWARGS = _accepted(SynthesisNetwork.__init__) - {"w_dim", "img_resolution", "img_channels"}
_LAYER_KWARGS = {
    "conv_kernel",
    "filter_size",
    "lrelu_upsampling",
    "use_radial_filters",
    "conv_clamp",
    "magnitude_ema_beta",
}
_MAPPING_KWARGS = _accepted(MappingNetwork.__init__) - {"z_dim", "c_dim", "w_dim", "num_ws"}


def generator_option_names() -> tuple[set[str], set[str]]:
    """Options `Generator` accepts (top level, and inside mapping_kwargs)."""
    base = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}
    return base | _SYNTHESIS_KWARGS | _LAYER_KWARGS, set(_MAPPING_KWARGS)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Generator(nn.Module):
    """`forward(z, c) → images [N, img_channels, R, R]`, roughly in [-1, 1].

    Module, parameter and buffer names follow the release's pickles so tensors copy across by name.
    """

    def __init__(
        self,
        z_dim: int = 512,
        c_dim: int = 0,
        w_dim: int = 512,
        img_resolution: int = 1024,
        img_channels: int = 3,
        mapping_kwargs: Mapping[str, Any] | None = None,
        **synthesis_kwargs: Any,
    ) -> None:
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        unknown = (set(synthesis_kwargs) - _SYNTHESIS_KWARGS - _LAYER_KWARGS) | (set(mapping_kwargs) - _MAPPING_KWARGS)
        if unknown:
            raise TypeError(f"unsupported generator option(s): {', '.join(sorted(unknown))}")
        # Kept verbatim so the network can be rebuilt (our safetensors format stores these).
        self.init_kwargs: dict[str, Any] = {
            "z_dim": z_dim,
            "c_dim": c_dim,
            "w_dim": w_dim,
            "img_resolution": img_resolution,
            "img_channels": img_channels,
            "mapping_kwargs": copy.deepcopy(mapping_kwargs),
            **copy.deepcopy(synthesis_kwargs),
        }
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)

    @property
    def mode(self) -> RunMode:
        return self.synthesis.mode

    def set_mode(self, mode: RunMode) -> Generator:
        self.synthesis.mode = mode
        return self

    @property
    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self.synthesis, name) for name in self.synthesis.layer_names]

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: Psi = 1.0,
        truncation_cutoff: int | None = None,
        transforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`transforms`: optional per-sample [N, 3, 3] input transforms (default: the `transform` buffer for all)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, transforms=transforms)


def make_generator(cfg: str = "t", **kwargs: Any) -> Generator:
    """A freshly initialised generator of config `cfg` ('t' or 'r'); `kwargs` override the preset."""
    try:
        preset = CONFIG_PRESETS[cfg.lower()]
    except KeyError:
        raise ValueError(f"unknown config {cfg!r}; expected one of {sorted(CONFIG_PRESETS)}") from None
    return Generator(**{**preset, **kwargs})
