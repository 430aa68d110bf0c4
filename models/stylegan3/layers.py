"""Synthesis building blocks: the Fourier-feature input and the modulated-conv + filtered-lrelu layer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.stylegan3.filters import design_lowpass_filter
from models.stylegan3.mapping import FullyConnectedLayer
from models.stylegan3.ops import (
    Padding,
    filtered_lrelu_fast,
    filtered_lrelu_ref,
    modulated_conv2d_fast,
    modulated_conv2d_ref,
)


@dataclass(frozen=True)
class RunMode:
    """How to execute (never what to compute: every mode computes the same network up to rounding).

    fast: polyphase/strided filtering and batched modulated convolution instead of the literal reference ops.
    alias_free: False swaps the designed filters for nearest-neighbour upsampling and plain decimation; only for
        measuring what the filters buy (equivariance), never for serving.
    half_dtype: reduced precision for the layers marked `use_fp16` (the last `num_fp16_res` resolutions); honoured only
        in fast mode and only on CUDA unless `half_on_cpu` (a testing aid).
    """

    fast: bool = False
    alias_free: bool = True
    half_dtype: torch.dtype | None = None
    half_on_cpu: bool = False


def layer_padding(
    in_size: int, out_size: int, kernel: int, up: int, down: int, up_taps: int, down_taps: int
) -> Padding:
    """Padding of the zero-inserted signal that turns `in_size` samples into `out_size` after both filters."""
    total = (out_size - 1) * down + 1  # wanted length before decimation
    total -= (in_size + kernel - 1) * up  # length after the (full) convolution and zero insertion
    total += up_taps + down_taps - 2  # what the two valid FIR passes remove
    lo = (total + up) // 2  # centres the samples (symmetric interpretation of sample positions)
    hi = total - lo
    return (lo, hi, lo, hi)


class SynthesisInput(nn.Module):
    """Fourier features on a `size`² grid at `sampling_rate`, placed by (w's rotation/translation) ∘ (user's)."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        # Spread directions uniformly and radii so that most energy stays inside the band.
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # Starts as the identity transform: rotation (1, 0), translation (0, 0).
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def grid(self, device: torch.device) -> torch.Tensor:
        """Sample positions [size, size, 2] as (x, y), in units where the full image is 1 wide, centred on 0."""
        coords = (
            torch.arange(self.size, dtype=torch.float32, device=device) + 0.5 - self.size / 2
        ) / self.sampling_rate
        gy, gx = torch.meshgrid(coords, coords, indexing="ij")
        return torch.stack([gx, gy], dim=-1)

    def forward(self, w: torch.Tensor, transforms: torch.Tensor | None = None) -> torch.Tensor:
        n = w.shape[0]
        user = self.transform.unsqueeze(0) if transforms is None else transforms.to(w.device, torch.float32)
        if user.ndim != 3 or user.shape[1:] != (3, 3) or user.shape[0] not in (1, n):
            raise ValueError(f"transforms must be [1 or N, 3, 3]; got {tuple(user.shape)}")
        t = self.affine(w)  # [N, 4]: rotation (cos, sin) and translation learned from w
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).repeat(n, 1, 1)
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).repeat(n, 1, 1)
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ user  # maps output coordinates to feature coordinates

        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that a transform (rotation) pushes past the band edge, to stay alias-free.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        grid = self.grid(w.device).reshape(1, -1, 2)  # [1, S², 2]
        x = grid @ freqs.transpose(1, 2) + phases.unsqueeze(1)  # [N, S², C]
        x = torch.sin(x * (2 * math.pi)) * amplitudes.unsqueeze(1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.transpose(1, 2).reshape(n, self.channels, self.size, self.size)


class SynthesisLayer(nn.Module):
    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        use_fp16: bool,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        in_sampling_rate: float,
        out_sampling_rate: float,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
    ) -> None:
        super().__init__()
        self.is_torgb, self.is_critically_sampled, self.use_fp16 = is_torgb, is_critically_sampled, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.in_sampling_rate, self.out_sampling_rate = float(in_sampling_rate), float(out_sampling_rate)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta  # training-time statistic; kept for the config round trip only

        tmp_rate = max(self.in_sampling_rate, self.out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(tmp_rate / self.in_sampling_rate))
        self.down_factor = int(np.rint(tmp_rate / self.out_sampling_rate))
        if self.in_sampling_rate * self.up_factor != tmp_rate or self.out_sampling_rate * self.down_factor != tmp_rate:
            raise ValueError("sampling rates must divide the temporary rate")
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate))
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_rate, radial=down_radial),
        )
        self.padding = layer_padding(
            self.in_size, self.out_size, self.conv_kernel, self.up_factor, self.down_factor, up_taps, down_taps
        )
        # Naive variant (alias_free=False): nearest-neighbour up (a box of `up` taps) and bare decimation, with the
        # padding that gives the same output size.
        naive_up_taps = self.up_factor if self.up_factor > 1 else 1
        self.naive_padding = layer_padding(
            self.in_size, self.out_size, self.conv_kernel, self.up_factor, self.down_factor, naive_up_taps, 1
        )

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}@{self.in_size}, out={self.out_channels}@{self.out_size}, up={self.up_factor}, "
            f"down={self.down_factor}, torgb={self.is_torgb}, fp16={self.use_fp16}"
        )

    def compute_dtype(self, x: torch.Tensor, mode: RunMode) -> torch.dtype:
        on_device = x.device.type == "cuda" or mode.half_on_cpu
        if self.use_fp16 and mode.fast and mode.half_dtype is not None and on_device:
            return mode.half_dtype
        return torch.float32

    def forward(self, x: torch.Tensor, w: torch.Tensor, mode: RunMode) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        input_gain = self.magnitude_ema.rsqrt()
        x = x.to(self.compute_dtype(x, mode))
        demodulate, conv_padding = not self.is_torgb, self.conv_kernel - 1

        if mode.alias_free:
            fu, fd, padding = self.up_filter, self.down_filter, self.padding
        else:
            up = self.up_factor
            fu = torch.full([up], 1.0 / up, device=x.device) if up > 1 else None
            fd, padding = None, self.naive_padding
        gain, slope = (1.0, 1.0) if self.is_torgb else (math.sqrt(2), 0.2)
        up, down, clamp = self.up_factor, self.down_factor, self.conv_clamp

        if mode.fast:
            # The bias rides along with the convolution (fused), so the activation gets none.
            x = modulated_conv2d_fast(x, self.weight, styles, demodulate, conv_padding, input_gain, self.bias)
            return filtered_lrelu_fast(x, fu, fd, None, up, down, padding, gain, slope, clamp)
        x = modulated_conv2d_ref(x, self.weight, styles, demodulate, conv_padding, input_gain)
        return filtered_lrelu_ref(x, fu, fd, self.bias, up, down, padding, gain, slope, clamp)
