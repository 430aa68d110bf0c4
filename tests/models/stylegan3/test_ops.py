"""The fast filtering / modulated convolution compute what the literal reference does."""

from __future__ import annotations

import pytest
import torch

from models.stylegan3.filters import design_lowpass_filter
from models.stylegan3.ops import (
    filtered_lrelu_fast,
    filtered_lrelu_ref,
    modulated_conv2d_fast,
    modulated_conv2d_ref,
    upfirdn2d_ref,
)


def test_reference_upsampling_with_a_box_is_nearest_neighbour() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    box = torch.full([2], 0.5)
    y = upfirdn2d_ref(x, box, up=2, padding=(1, 0, 1, 0), gain=4)
    expected = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(y, expected)


def test_reference_decimation_without_filter() -> None:
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(upfirdn2d_ref(x, None, down=2), x[:, :, ::2, ::2])


CASES = [
    # up, down, padding, radial down filter
    (2, 2, (9, 8, 9, 8), False),
    (4, 2, (-6, -9, -6, -9), False),  # the rate-doubling layer: crops, and an output_padding
    (2, 2, (-11, -12, -11, -12), False),  # critically sampled tail
    (2, 2, (11, 10, 11, 10), True),  # -R: radial downsampling filter
    (4, 2, (-2, -5, -2, -5), True),
    (2, 4, (3, 7, 5, 1), False),  # uneven padding: exercises the crop/pad fallback
    (2, 2, (14, 3, 13, 13), False),  # padding wider than the filter: zero-fill before the first output
    (1, 1, (0, 0, 0, 0), False),  # ToRGB
    (1, 2, (2, -1, 0, 3), False),
]


@pytest.mark.parametrize(("up", "down", "padding", "radial"), CASES)
def test_fast_filtered_lrelu_matches_reference(
    up: int, down: int, padding: tuple[int, int, int, int], radial: bool
) -> None:
    gen = torch.Generator().manual_seed(up * 10 + down)
    x = torch.randn(2, 5, 36, 36, generator=gen) * 3
    b = torch.randn(5, generator=gen)
    fs = 32.0 * max(up, down)
    fu = design_lowpass_filter(6 * up if up > 1 else 1, 6.0, 5.0, fs)
    fd = design_lowpass_filter(6 * down if down > 1 else 1, 6.0, 5.0, fs, radial=radial)
    for gain, slope, clamp in [(2**0.5, 0.2, 256.0), (1.0, 1.0, None), (2**0.5, 0.2, 0.5)]:
        ref = filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp)
        fast = filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp)
        assert fast.shape == ref.shape
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("demodulate", "kernel"), [(True, 3), (False, 1), (True, 1)])
def test_fast_modulated_conv_matches_reference(demodulate: bool, kernel: int) -> None:
    gen = torch.Generator().manual_seed(kernel)
    x = torch.randn(3, 6, 10, 10, generator=gen)
    w = torch.randn(4, 6, kernel, kernel, generator=gen)
    s = torch.randn(3, 6, generator=gen) + 1
    gain = torch.tensor(0.7)
    ref = modulated_conv2d_ref(x, w, s, demodulate, kernel - 1, gain)
    fast = modulated_conv2d_fast(x, w, s, demodulate, kernel - 1, gain)
    assert ref.shape == (3, 4, 10 + kernel - 1, 10 + kernel - 1)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


def test_demodulation_normalises_output_channels() -> None:
    """With unit-variance white input, a demodulated conv gives unit-variance outputs whatever the style scale."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 40, 40, generator=gen)
    w = torch.randn(8, 64, 3, 3, generator=gen)
    s = torch.stack([torch.full([64], 0.01), torch.full([64], 100.0)])
    y = modulated_conv2d_ref(x, w, s, True, 0, None)
    std = y.std(dim=[2, 3])
    torch.testing.assert_close(std, torch.ones_like(std), atol=0.1, rtol=0)
    # One sample's result does not depend on what else is in the batch.
    torch.testing.assert_close(modulated_conv2d_ref(x[:1], w, s[:1], True, 0, None), y[:1])
