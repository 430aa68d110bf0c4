"""A generator's options read from a file (a pickle's init kwargs, our JSON config): plain values, known names,
ranges that keep building the network bounded, and a size estimate checked against the tensors the file holds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from models.stylegan3.errors import NetworkFormatError

_INTS = {
    "z_dim": (1, 4096),
    "c_dim": (0, 10_000),
    "w_dim": (1, 4096),
    "img_channels": (1, 4),
    "channel_base": (1, 1 << 22),
    "channel_max": (1, 4096),
    "num_layers": (1, 64),
    "num_critical": (0, 63),
    "margin_size": (0, 256),
    "num_fp16_res": (0, 16),
    "conv_kernel": (1, 7),
    "filter_size": (1, 16),
    "lrelu_upsampling": (1, 4),
}
_FLOATS = {
    "first_cutoff": (1e-3, 1e4),
    "first_stopband": (1e-3, 1e4),
    "last_stopband_rel": (1e-3, 16.0),
    "output_scale": (-1e3, 1e3),
    "magnitude_ema_beta": (0.0, 1.0),
    "conv_clamp": (0.0, 1e9),
}
_MAPPING_INTS = {"num_layers": (1, 16)}
_MAPPING_FLOATS = {"lr_multiplier": (1e-6, 1e3), "w_avg_beta": (0.0, 1.0)}
_MAX_ARRAY = 16
_MAX_TEXT = 1024
_MAX_DEPTH = 8
_MAX_TAPS = 128


def to_plain(value: Any, where: str = "options", depth: int = 0) -> Any:
    """EasyDicts, tuples and numpy scalars/small arrays from a file → JSON-friendly Python values."""
    if depth > _MAX_DEPTH:
        raise NetworkFormatError(f"{where}: nested too deep")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > _MAX_ARRAY:
            raise NetworkFormatError(f"{where}: a list of {len(value)} values where an option is expected")
        return [to_plain(v, where, depth + 1) for v in value]
    if isinstance(value, np.ndarray):
        if value.size > _MAX_ARRAY:  # checked before tolist(): 10^7 elements would cost ~0.7 GB of Python objects
            raise NetworkFormatError(f"{where}: an array of {value.size} values where an option is expected")
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        raise NetworkFormatError(f"{where}: a text of {len(value)} characters")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise NetworkFormatError(f"{where}: unsupported value of type {type(value).__name__}")


def _number(where: str, value: Any, low: float, high: float, integer: bool) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not (low <= value <= high) or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise NetworkFormatError(f"option {where} must be {kind} in {low:g}..{high:g}, got {value!r:.40}")


def check_options(options: Mapping[str, Any], source: str = "network") -> dict[str, Any]:
    """Plain options a `Generator` accepts, each in range; NetworkFormatError naming the first that is not."""
    out = to_plain(options, f"{source}: options")
    from models.stylegan3.generator import generator_option_names  # lazy: generator imports torch

    known, mapping_known = generator_option_names()
    unknown = sorted(set(out) - known)
    if unknown:
        raise NetworkFormatError(f"{source}: unsupported generator option(s): {', '.join(unknown)}")
    for key, value in out.items():
        if key in _INTS:
            _number(key, value, *_INTS[key], integer=True)
        elif key in _FLOATS and not (key == "conv_clamp" and value is None):
            _number(key, value, *_FLOATS[key], integer=False)
    resolution = out.get("img_resolution", 1024)
    if not (isinstance(resolution, int) and 16 <= resolution <= 4096 and resolution & (resolution - 1) == 0):
        raise NetworkFormatError(f"option img_resolution must be a power of two in 16..4096, got {resolution!r:.40}")
    if "use_radial_filters" in out and not isinstance(out["use_radial_filters"], bool):
        raise NetworkFormatError("option use_radial_filters must be true or false")
    mapping = out.get("mapping_kwargs") or {}
    if not isinstance(mapping, dict):
        raise NetworkFormatError("option mapping_kwargs must be a mapping")
    unknown = sorted(set(mapping) - mapping_known)
    if unknown:
        raise NetworkFormatError(f"{source}: unsupported mapping option(s): {', '.join(unknown)}")
    for key, value in mapping.items():
        limits = _MAPPING_INTS.get(key) or _MAPPING_FLOATS[key]
        _number(f"mapping_kwargs.{key}", value, *limits, integer=key in _MAPPING_INTS)
    if out.get("num_critical", 2) >= out.get("num_layers", 14):
        raise NetworkFormatError("option num_critical must be smaller than num_layers")
    return out


def estimated_parameters(options: Mapping[str, Any]) -> int:
    """Weights a generator with these (checked) options allocates, give or take its small filters and biases."""
    from models.stylegan3.synthesis import layer_schedule

    keys = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband")
    keys += ("last_stopband_rel", "margin_size")
    specs = layer_schedule(
        options.get("img_resolution", 1024),
        options.get("img_channels", 3),
        **{k: options[k] for k in keys if k in options},
    )
    w_dim, kernel = options.get("w_dim", 512), options.get("conv_kernel", 3)
    up_rate, taps = options.get("lrelu_upsampling", 2), options.get("filter_size", 6)
    total = specs[0].channels ** 2 + 4 * w_dim
    for prev, spec in zip([specs[0], *specs], specs, strict=False):
        k = 1 if spec is specs[-1] else kernel
        total += spec.channels * prev.channels * k * k + prev.channels * w_dim
        # Filters have filter_size × (rate ratio) taps (squared when radial): bounded here, before designing them.
        ratio = max(prev.sampling_rate, spec.sampling_rate) * up_rate / min(prev.sampling_rate, spec.sampling_rate)
        if taps * ratio > _MAX_TAPS:
            raise NetworkFormatError(f"options give layer {spec.name} filters of {taps * ratio:g} taps")
    mapping_layers = (options.get("mapping_kwargs") or {}).get("num_layers", 2)
    z_dim, c_dim = options.get("z_dim", 512), options.get("c_dim", 0)
    total += c_dim * w_dim + (z_dim + (w_dim if c_dim else 0)) * w_dim + (mapping_layers - 1) * w_dim * w_dim
    return total
