"""EQ-T: translating the input grid by a sub-pixel amount translates the image — only with alias-free filtering.

Units: the input transform is in image widths, so moving the input grid by k/R shifts the R-pixel image by exactly k
pixels; at the input layer's own rate (16 samples per width for R=64) the same move is k/4 of a sample, i.e. a
sub-pixel shift of the Fourier-feature grid. With T = translate(k/R) the network draws out(x) = ref(x + k/R), so
out[..., y, x] should equal ref[..., y + ky, x + kx]. PSNR uses the reference crop's own range as the peak (random
networks do not fill [-1, 1]); the margins, where zero padding of the full-resolution layers shows, are cropped.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.stylegan3.generator import Generator
from models.stylegan3.layers import RunMode
from models.stylegan3.testing import random_generator

RES = 64
SHIFTS = [(3, -5), (-2, 1), (1, 6)]  # output pixels; 3/4, 5/4, 1/2, 1/4, 6/4 of an input sample
MARGIN = 8


def _crop(x: torch.Tensor, dy: int = 0, dx: int = 0) -> torch.Tensor:
    return x[..., MARGIN + dy : RES - MARGIN + dy, MARGIN + dx : RES - MARGIN + dx]


def eq_t(g: Generator, ws: torch.Tensor, mode: RunMode) -> tuple[float, float]:
    """(EQ-T PSNR, PSNR of the same pairs without shifting back) over SHIFTS, in dB."""
    g.set_mode(mode)
    with torch.no_grad():
        ref = g.synthesis(ws)
        err, naive_err, peak = [], [], (_crop(ref).max() - _crop(ref).min()).item()
        for kx, ky in SHIFTS:
            t = torch.eye(3)
            t[0, 2], t[1, 2] = kx / RES, ky / RES
            out = g.synthesis(ws, transforms=t[None])
            err.append((_crop(out) - _crop(ref, ky, kx)).square().mean().item())
            naive_err.append((_crop(out) - _crop(ref)).square().mean().item())
    mse, unshifted = sum(err) / len(err), sum(naive_err) / len(naive_err)
    return 10 * math.log10(peak**2 / mse), 10 * math.log10(peak**2 / unshifted)


@pytest.fixture(scope="module")
def net() -> tuple[Generator, torch.Tensor]:
    # Constant width (channel_base = channels·R) so that the high-resolution layers carry real detail.
    g = random_generator("t", resolution=RES, channels=32, seed=0, channel_base=32 * RES)
    z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ws = g.mapping(z, None)
    return g, ws


def test_shift_is_sub_pixel_at_the_input(net: tuple[Generator, torch.Tensor]) -> None:
    g, _ = net
    rate = g.synthesis.input.sampling_rate
    assert rate == 16
    assert any((k * rate / RES) % 1 for shift in SHIFTS for k in shift)


def test_eq_t_alias_free_vs_naive(net: tuple[Generator, torch.Tensor], capsys: pytest.CaptureFixture[str]) -> None:
    g, ws = net
    alias_free, alias_free_unshifted = eq_t(g, ws, RunMode(fast=False))
    naive, _ = eq_t(g, ws, RunMode(fast=False, alias_free=False))
    alias_free_fast, _ = eq_t(g, ws, RunMode(fast=True))
    with capsys.disabled():
        print(
            f"\nEQ-T (T config, {RES}px random net, PSNR in dB): alias-free {alias_free:.1f} (fast path "
            f"{alias_free_fast:.1f}), naive up/down {naive:.1f}; same pairs unshifted: {alias_free_unshifted:.1f}"
        )
    assert alias_free > 50, "alias-free layers should be translation-equivariant"
    assert alias_free - naive >= 5, "switching the filters off should cost equivariance"
    # The metric tracks the shift (not merely a smooth image): without shifting back, the match is far worse.
    assert alias_free - alias_free_unshifted > 20
    assert alias_free_fast == pytest.approx(alias_free, abs=1.0)
