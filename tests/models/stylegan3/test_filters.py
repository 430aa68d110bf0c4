"""Filter design and layer schedule, checked against independent facts (tabulated values, the notes' figures)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.stylegan3.filters import (
    bessel_j1,
    design_lowpass_filter,
    firwin_lowpass,
    jinc_lowpass,
    kaiser_attenuation,
)
from models.stylegan3.generator import make_generator
from models.stylegan3.synthesis import layer_schedule


def test_bessel_j1_matches_tabulated_values() -> None:
    xs = np.array([0.0, 1.0, 2.5, 10.0, 3.831705970207512, 30.0])
    expected = np.array([0.0, 0.44005058574493355, 0.4970941024642741, 0.04347274616886144, 0.0, -0.11875106261662294])
    np.testing.assert_allclose(bessel_j1(xs), expected, atol=1e-12)


def _response(taps: np.ndarray, freq: float, fs: float) -> float:
    n = np.arange(len(taps)) - (len(taps) - 1) / 2
    return float(abs(np.sum(taps * np.exp(-2j * math.pi * freq / fs * n))))


@pytest.mark.parametrize(
    ("numtaps", "cutoff", "width", "fs"), [(12, 2.0, 4.6, 32.0), (24, 8.0, 3.0, 64.0), (12, 16, 4, 64)]
)
def test_firwin_is_a_windowed_sinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> None:
    taps = firwin_lowpass(numtaps, cutoff, width, fs)
    assert taps.shape == (numtaps,)
    np.testing.assert_allclose(taps, taps[::-1])
    assert taps.sum() == pytest.approx(1.0)
    assert _response(taps, 0.0, fs) == pytest.approx(1.0)
    # Window-method designs cross half amplitude near the cutoff...
    assert _response(taps, cutoff, fs) == pytest.approx(0.5, abs=0.1)
    # ...and reach Kaiser's predicted attenuation (within a few dB) past the transition band.
    atten = kaiser_attenuation(numtaps, width / (fs / 2))
    stop = [_response(taps, f, fs) for f in np.linspace(cutoff + width / 2, fs / 2, 50)]
    assert 20 * math.log10(max(stop)) < -(atten - 6)


def test_jinc_filter_is_radial_lowpass() -> None:
    f = jinc_lowpass(12, cutoff=4.0, width=4.0, fs=32.0)
    assert f.shape == (12, 12)
    assert f.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(f, f.T, atol=1e-15)
    np.testing.assert_allclose(f, f[::-1, ::-1], atol=1e-15)
    # Nearly isotropic, unlike the separable design with the same cutoff: compare the response along an axis and
    # along the diagonal at equal radius.
    sep = np.outer(*(2 * [firwin_lowpass(12, 4.0, 4.0, 32.0)]))
    n = np.arange(12) - 5.5
    yy, xx = np.meshgrid(n, n, indexing="ij")

    def resp(kernel: np.ndarray, fx: float, fy: float) -> float:
        return float(abs(np.sum(kernel * np.exp(-2j * math.pi * (fx * xx + fy * yy) / 32.0))))

    def anisotropy(kernel: np.ndarray) -> float:
        # Over the transition band, where a separable design departs most from a circle.
        return sum(abs(resp(kernel, r, 0) - resp(kernel, r / math.sqrt(2), r / math.sqrt(2))) for r in (3, 4, 5))

    assert anisotropy(f) < 0.5 * anisotropy(sep)
    assert resp(f, 1, 0) > 0.95
    assert max(resp(f, r, 0) for r in (8, 10, 12, 16)) < 0.05


def test_single_tap_filter_is_none() -> None:
    assert design_lowpass_filter(1, 2.0, 1.0, 8.0) is None
    f = design_lowpass_filter(12, 2.0, 4.0, 16.0)
    assert f is not None and f.shape == (12,)
    f2 = design_lowpass_filter(12, 2.0, 4.0, 16.0, radial=True)
    assert f2 is not None and f2.shape == (12, 12)


def test_schedule_follows_the_notes() -> None:
    specs = layer_schedule(1024)
    assert len(specs) == 15
    assert specs[0].name == "L0_36_512"
    assert specs[-1].name == "L14_1024_3"
    assert [s.size for s in specs[-2:]] == [1024, 1024]
    for s in specs[:-2]:
        assert s.size == s.sampling_rate + 20
        assert math.log2(s.sampling_rate).is_integer()
    assert specs[-3].cutoff == pytest.approx(512)  # reaches Nyquist at layer N - Nc
    assert specs[0].cutoff == pytest.approx(2)


@pytest.mark.parametrize(("cfg", "params_m", "gmac"), [("t", 22.3, 285), ("r", 15.1, 124)])
def test_1024_networks_have_the_published_size_and_cost(cfg: str, params_m: float, gmac: float) -> None:
    """The notes: T-1024 ≈ 22 M parameters and ≈ 285 GMAC of modulated conv; R-1024 ≈ 15 M and ≈ 124 GMAC."""
    g = make_generator(cfg, img_resolution=1024)
    assert sum(p.numel() for p in g.parameters()) / 1e6 == pytest.approx(params_m, abs=0.1)
    macs = sum(
        (layer.in_size + layer.conv_kernel - 1) ** 2 * layer.in_channels * layer.out_channels * layer.conv_kernel**2
        for layer in g.layers
    )
    assert macs / 1e9 == pytest.approx(gmac, rel=0.01)
    assert g.num_ws == 16


@pytest.mark.parametrize("resolution", [16, 32, 64, 128, 256, 512, 1024])
def test_schedule_works_for_supported_resolutions(resolution: int) -> None:
    specs = layer_schedule(resolution)
    assert specs[-1].size == resolution
    assert all(s.sampling_rate <= resolution for s in specs)


def test_schedule_rejects_odd_resolutions() -> None:
    with pytest.raises(ValueError, match="power of two"):
        layer_schedule(48)
