"""Low-pass FIR filter design: Kaiser-windowed sinc (separable) and Kaiser-windowed jinc (radial).

Written with numpy only (scipy is not a dependency). The separable design reproduces the classic window-method
`firwin(numtaps, cutoff, width=..., fs=...)`: ideal sinc at the cutoff, Kaiser window whose beta comes from Kaiser's
empirical attenuation formula for the requested transition width, then unit DC gain.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stopband attenuation (dB) a Kaiser design of `numtaps` reaches; `width` is relative to Nyquist (0..1)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's empirical beta for a given attenuation in dB."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def _kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2)))
    return np.kaiser(numtaps, beta)


def firwin_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Symmetric low-pass FIR (float64), unit DC gain; `cutoff`, `width`, `fs` share one unit (e.g. cycles/image)."""
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    nyquist = fs / 2
    if not 0 < cutoff < nyquist:
        raise ValueError(f"cutoff {cutoff} must lie strictly between 0 and Nyquist ({nyquist})")
    m = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    rel = cutoff / nyquist
    taps = rel * np.sinc(rel * m) * _kaiser_window(numtaps, width, fs)
    return taps / taps.sum()


def bessel_j1(x: np.ndarray | float) -> np.ndarray:
    """Bessel function of the first kind, order 1, from its integral form.

    J1(x) = 1/(2π) ∫₀^{2π} cos(τ − x sin τ) dτ. The integrand is smooth and 2π-periodic, so the plain trapezoid rule
    converges geometrically once the number of nodes exceeds |x| by a few dozen: exact to float64 precision here.
    """
    x = np.asarray(x, dtype=np.float64)
    nodes = int(max(64, math.ceil(float(np.max(np.abs(x), initial=0.0))) + 64))
    tau = np.arange(nodes, dtype=np.float64) * (2 * math.pi / nodes)
    return np.cos(tau - x[..., None] * np.sin(tau)).mean(axis=-1)


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Radially symmetric 2-D low-pass [numtaps, numtaps]: jinc at `cutoff` times an outer-product Kaiser window."""
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    coords = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(coords, coords))
    safe_r = np.where(r > 0, r, 1.0)
    # The ideal circular low-pass impulse response J1(2πcr)/(πr); its limit at r=0 is `cutoff`.
    f = np.where(r > 0, bessel_j1(2 * cutoff * math.pi * safe_r) / (math.pi * safe_r), cutoff)
    window = _kaiser_window(numtaps, width, fs)
    f = f * np.outer(window, window)
    return f / f.sum()


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """The filter a layer stores: None for a single tap (identity), else float32 1-D taps or a 2-D radial kernel."""
    if numtaps < 1:
        raise ValueError("numtaps must be >= 1")
    if numtaps == 1:
        return None
    taps = jinc_lowpass(numtaps, cutoff, width, fs) if radial else firwin_lowpass(numtaps, cutoff, width, fs)
    return torch.as_tensor(taps, dtype=torch.float32)
