"""The two heavy operations of a synthesis layer, each as an fp32 reference and a fast variant.

* Filtered leaky ReLU: add bias → upsample ×`up` (zero insertion + low-pass FIR, gain up²) → leaky ReLU with gain and
  clamp → low-pass FIR → keep every `down`-th sample. `padding = (x0, x1, y0, y1)` is applied to the zero-inserted
  signal before the first FIR; negative values crop. Filters are 1-D (separable, applied to both axes) or 2-D.
* Modulated convolution: per-sample styles scale the weights' input channels, optional demodulation normalises
  each output channel, an input gain folds in the layer's magnitude EMA.

The reference variants are written to mirror the definitions literally (they materialise the zero-inserted signal and
filter at the full temporary rate); the fast variants compute the same numbers with polyphase transposed
convolutions, strided convolutions and batched (non-grouped) convolutions. No custom CUDA code anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

Padding = tuple[int, int, int, int]


# --------------------------------------------------------------------------------------------------- reference (fp32)


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample. NCHW in and out."""
    n, c, h, w = x.shape
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [px0, px1, py0, py1])  # negative entries crop
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    f = f.flip(list(range(f.ndim)))  # conv2d correlates; flipping makes it a convolution
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def _lrelu_clamp(x: torch.Tensor, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def filtered_lrelu_ref(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor,
    up: int,
    down: int,
    padding: Padding,
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d_ref(x, fu, up=up, padding=padding, gain=up**2)
    x = _lrelu_clamp(x, gain, slope, clamp)
    return upfirdn2d_ref(x, fd, down=down)


def modulated_conv2d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    padding: int,
    input_gain: torch.Tensor | None,
) -> torch.Tensor:
    """One grouped convolution with a per-sample modulated weight [N·O, I, k, k]."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight.float()
    s = styles.float()
    if demodulate:
        # Pre-normalising keeps the products in range for reduced precision; demodulation cancels the scale anyway.
        # Per-sample style normalisation (instead of over the whole batch) keeps each sample independent of its batch.
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean(dim=1, keepdim=True).rsqrt()
    w = w.unsqueeze(0) * s.reshape(n, 1, in_ch, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.float()
    y = F.conv2d(
        x.reshape(1, n * in_ch, *x.shape[2:]),
        w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype),
        padding=padding,
        groups=n,
    )
    return y.reshape(n, out_ch, *y.shape[2:])


# ------------------------------------------------------------------------------------------------------------ fast


def _axis_kernel(f: torch.Tensor, channels: int, axis: int, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Depthwise [C, 1, L, 1] (axis 2) or [C, 1, 1, L] (axis 3) kernel holding the flipped taps."""
    taps = (f.flip(0) * scale).to(dtype)
    shape = (1, 1, -1, 1) if axis == 2 else (1, 1, 1, -1)
    return taps.reshape(shape).expand(channels, -1, -1, -1).contiguous()


def _pad_axis(x: torch.Tensor, lo: int, hi: int, axis: int) -> torch.Tensor:
    if lo == 0 and hi == 0:
        return x
    return F.pad(x, [lo, hi, 0, 0] if axis == 3 else [0, 0, lo, hi])


def _up_axis(x: torch.Tensor, f: torch.Tensor, up: int, p0: int, p1: int, axis: int, scale: float) -> torch.Tensor:
    """Zero-insert ×up, pad (p0, p1), convolve with `f`·scale along one axis — as one polyphase transposed convolution.

    With y = conv_transpose(x, flip(f)·scale, stride=up), the wanted output is v[j] = y[j + L − 1 − p0], so the crop
    folds into conv_transpose's `padding`/`output_padding` whenever they are expressible, else we crop/pad y.
    """
    channels, n, taps = x.shape[1], x.shape[axis], f.numel()
    kernel = _axis_kernel(f, channels, axis, scale, x.dtype)
    out_len = n * up + p0 + p1 - taps + 1
    off = taps - 1 - p0
    out_pad = out_len - ((n - 1) * up + taps - 2 * off)
    stride = (up, 1) if axis == 2 else (1, up)
    if off >= 0 and 0 <= out_pad < up:
        pad = (off, 0) if axis == 2 else (0, off)
        opad = (out_pad, 0) if axis == 2 else (0, out_pad)
        return F.conv_transpose2d(x, kernel, stride=stride, padding=pad, output_padding=opad, groups=channels)
    y = F.conv_transpose2d(x, kernel, stride=stride, groups=channels)
    full = y.shape[axis]
    return _pad_axis(y, -off, off + out_len - full, axis)


def _fir_axis(x: torch.Tensor, f: torch.Tensor, down: int, axis: int) -> torch.Tensor:
    """Valid convolution with `f` along one axis, keeping every `down`-th output (stride, no wasted outputs)."""
    kernel = _axis_kernel(f, x.shape[1], axis, 1.0, x.dtype)
    stride = (down, 1) if axis == 2 else (1, down)
    return F.conv2d(x, kernel, stride=stride, groups=x.shape[1])


def _act_inplace(x: torch.Tensor, slope: float, clamp: float | None) -> torch.Tensor:
    if slope != 1:
        x = F.leaky_relu_(x, slope)
    return x.clamp_(-clamp, clamp) if clamp is not None else x


def filtered_lrelu_fast(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: Padding,
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Same result as `filtered_lrelu_ref` without materialising the zero-inserted or full-rate filtered signals.

    `b=None` means the caller already added the bias (the fast modulated convolution fuses it). The activation gain
    is folded into the upsampling taps, which is exact because leaky ReLU is positively homogeneous
    (g·lrelu(x) = lrelu(g·x) for g > 0): one fewer pass over the largest tensor of the layer.
    """
    if (fu is not None and fu.ndim != 1) or gain <= 0:
        bias = b if b is not None else torch.zeros(x.shape[1], device=x.device)
        return filtered_lrelu_ref(x, fu, fd, bias, up, down, padding, gain, slope, clamp)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    px0, px1, py0, py1 = padding
    if fu is None:
        if up != 1:
            raise ValueError("upsampling needs an up filter")
        x = F.pad(x, [px0, px1, py0, py1])
        x = _lrelu_clamp(x, gain, slope, clamp)  # out of place: F.pad may hand back its input
    else:
        # Height first then width: the first pass runs on the smaller (not yet widened) tensor.
        axis_scale = up * math.sqrt(gain)
        x = _up_axis(x, fu, up, py0, py1, axis=2, scale=axis_scale)
        x = _up_axis(x, fu, up, px0, px1, axis=3, scale=axis_scale)
        x = _act_inplace(x, slope, clamp)
    if fd is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    if fd.ndim == 2:
        kernel = fd.flip([0, 1]).to(x.dtype)[None, None].expand(x.shape[1], -1, -1, -1).contiguous()
        return F.conv2d(x, kernel, stride=down, groups=x.shape[1])
    x = _fir_axis(x, fd, down, axis=2)
    return _fir_axis(x, fd, down, axis=3)


def modulated_conv2d_fast(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    padding: int,
    input_gain: torch.Tensor | None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated convolution as ordinary (non-grouped) convolutions, optionally adding `bias` on the way out.

    One sample: the style and demodulation scales are folded into a [O, I, k, k] weight (one conv, bias fused).
    Several: conv(x, w·s·g)·d == conv(x·s·g, w)·d because the style scales input channels only and d output channels
    only, so the activations are modulated instead and the whole batch goes through one batched convolution. The
    fan-in factor is moved from the weights to the output scale so the convolution's intermediate values stay near
    the activations' magnitude (matters in fp16/bf16).
    """
    n = x.shape[0]
    _, in_ch, kh, kw = weight.shape
    w = weight.float()
    s = styles.float()
    fan_in = in_ch * kh * kw
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean(dim=1, keepdim=True).rsqrt()
        # Σ_{i,k}(w[o,i,k]·s[n,i])² = Σ_i s[n,i]² · Σ_k w[o,i,k]²
        dcoefs = (s.square() @ w.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
        out_scale: torch.Tensor | None = dcoefs * math.sqrt(fan_in)
        s = s / math.sqrt(fan_in)
    else:
        out_scale = None
    if input_gain is not None:
        s = s * input_gain.float()
    b = None if bias is None else bias.to(x.dtype)
    if n == 1:
        w = w * s.reshape(1, in_ch, 1, 1)
        if out_scale is not None:
            w = w * out_scale.reshape(-1, 1, 1, 1)
        return F.conv2d(x, w.to(x.dtype), bias=b, padding=padding)
    x = x * s.to(x.dtype).reshape(*s.shape, 1, 1)
    y = F.conv2d(x, w.to(x.dtype), padding=padding)
    if out_scale is None:
        return y if b is None else y + b.reshape(1, -1, 1, 1)
    scale = out_scale.to(y.dtype).reshape(*out_scale.shape, 1, 1)
    return y * scale if b is None else torch.addcmul(b.reshape(1, -1, 1, 1), y, scale)
