"""The layer schedule (cutoffs, stopbands, sampling rates, sizes, channels) and the synthesis network w → image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.stylegan3.layers import RunMode, SynthesisInput, SynthesisLayer


@dataclass(frozen=True)
class LayerSpec:
    index: int
    cutoff: float
    stopband: float
    sampling_rate: float
    half_width: float
    size: int
    channels: int

    @property
    def name(self) -> str:
        return f"L{self.index}_{self.size}_{self.channels}"


def layer_schedule(
    img_resolution: int,
    img_channels: int = 3,
    channel_base: int = 32768,
    channel_max: int = 512,
    num_layers: int = 14,
    num_critical: int = 2,
    first_cutoff: float = 2,
    first_stopband: float = 2**2.1,
    last_stopband_rel: float = 2**0.3,
    margin_size: int = 10,
) -> list[LayerSpec]:
    """Specs of layers 0..num_layers (the last is ToRGB). Cutoff and stopband grow geometrically to the image's
    Nyquist frequency over the first num_layers − num_critical layers, then stay (critically sampled tail)."""
    if img_resolution < 16 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 16, got {img_resolution}")
    if not 0 <= num_critical < num_layers:
        raise ValueError("need 0 <= num_critical < num_layers")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return [
        LayerSpec(
            index=i,
            cutoff=float(cutoffs[i]),
            stopband=float(stopbands[i]),
            sampling_rate=float(sampling_rates[i]),
            half_width=float(half_widths[i]),
            size=int(sizes[i]),
            channels=int(channels[i]),
        )
        for i in range(num_layers + 1)
    ]


class SynthesisNetwork(nn.Module):
    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2,
        first_stopband: float = 2**2.1,
        last_stopband_rel: float = 2**0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        num_fp16_res: int = 4,
        **layer_kwargs: object,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers, self.num_critical = num_layers, num_critical
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        self.mode = RunMode()
        specs = layer_schedule(
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            num_layers,
            num_critical,
            first_cutoff,
            first_stopband,
            last_stopband_rel,
            margin_size,
        )
        self.specs = specs
        first = specs[0]
        self.input = SynthesisInput(w_dim, first.channels, first.size, first.sampling_rate, first.cutoff)
        self.layer_names: list[str] = []
        for spec in specs:
            prev = specs[max(spec.index - 1, 0)]
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=spec.index == num_layers,
                is_critically_sampled=spec.index >= num_layers - num_critical,
                use_fp16=spec.sampling_rate * 2**num_fp16_res > img_resolution,
                in_channels=prev.channels,
                out_channels=spec.channels,
                in_size=prev.size,
                out_size=spec.size,
                in_sampling_rate=prev.sampling_rate,
                out_sampling_rate=spec.sampling_rate,
                in_cutoff=prev.cutoff,
                out_cutoff=spec.cutoff,
                in_half_width=prev.half_width,
                out_half_width=spec.half_width,
                **layer_kwargs,  # type: ignore[arg-type]
            )
            self.add_module(spec.name, layer)
            self.layer_names.append(spec.name)

    def forward(self, ws: torch.Tensor, transforms: torch.Tensor | None = None) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        per_layer = ws.float().unbind(dim=1)
        x = self.input(per_layer[0], transforms)
        for name, w in zip(self.layer_names, per_layer[1:], strict=True):
            x = getattr(self, name)(x, w, self.mode)
        x = x.float()
        return x * self.output_scale if self.output_scale != 1 else x
