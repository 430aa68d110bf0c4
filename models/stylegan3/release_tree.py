"""Module trees shaped like the release's networks, holding our generator's weights (for `release_pickle`).

What each class sets, in order, and of which type, is read from NVlabs/stylegan3 (facts only):
- `training/networks_stylegan3.py`: `FullyConnectedLayer` (in_features, out_features, activation, weight, bias,
  weight_gain = lr_multiplier / np.sqrt(in_features) → numpy float64, bias_gain = lr_multiplier),
  `MappingNetwork` (z_dim, c_dim, w_dim, num_ws, num_layers, w_avg_beta, embed — a plain None attribute when
  unconditional —, fc0.., w_avg), `SynthesisInput` (w_dim, channels, size = np.broadcast_to(np.asarray(size), [2]),
  sampling_rate and bandwidth as numpy float64, weight, affine, transform, freqs, phases), `SynthesisLayer` (w_dim,
  is_torgb, is_critically_sampled, use_fp16 — a numpy bool —, channels, size arrays, sampling rates as ints
  (`int(sampling_rates[i])` is what the network passes), tmp_sampling_rate, cutoffs and half widths as numpy float64,
  conv_kernel, conv_clamp, magnitude_ema_beta, affine, weight, bias, magnitude_ema, up_factor, up_taps, up_filter
  (None for one tap), down_factor, down_taps, down_radial, down_filter, padding as a list of ints),
  `SynthesisNetwork` (w_dim, num_ws, img_resolution, img_channels, num_layers, num_critical, margin_size,
  output_scale, num_fp16_res, input, layer_names, L{i}_{size}_{channels}...), `Generator` (z_dim, c_dim, w_dim,
  img_resolution, img_channels, synthesis, num_ws, mapping). Each module's `_init_args`/`_init_kwargs` are the
  arguments its parent passes (keyword arguments, except the fully connected layers' two sizes).
- `train.py`: the generator's kwargs are z_dim, w_dim, mapping_kwargs (an EasyDict), channel_base, channel_max,
  magnitude_ema_beta (+ conv_kernel, use_radial_filters for -R), then c_dim, img_resolution, img_channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from models.stylegan3.generator import Generator
from models.stylegan3.mapping import FullyConnectedLayer
from models.stylegan3.release_pickle import EasyDict, persistent_class
from models.stylegan3.synthesis import layer_schedule

STYLEGAN3_SRC = "# Stand-in for the release's training/networks_stylegan3.py. A safe loader never executes it.\n"
_GENERATOR_KWARGS_FIRST = ("z_dim", "w_dim", "mapping_kwargs")
_GENERATOR_KWARGS_LAST = ("c_dim", "img_resolution", "img_channels")


class Buffer:
    """A value to register as a buffer (a tensor or None), as `register_buffer` does in the release."""

    def __init__(self, tensor: torch.Tensor | None) -> None:
        self.tensor = tensor


def module(
    name: str,
    attrs: list[tuple[str, Any]],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    src: str = STYLEGAN3_SRC,
) -> nn.Module:
    """An instance of the release-named class with `attrs` set in order (modules, parameters, buffers, plain)."""
    m = persistent_class(name, src)()
    for key, value in attrs:
        if isinstance(value, Buffer):
            m.register_buffer(key, None if value.tensor is None else value.tensor.detach().clone())
        elif isinstance(value, nn.Parameter | torch.Tensor) and not isinstance(value, nn.Module):
            setattr(m, key, nn.Parameter(value.detach().clone(), requires_grad=False))
        else:
            setattr(m, key, value)  # a module → _modules; anything else (None included) → a plain attribute
    m._init_args, m._init_kwargs = tuple(args), dict(kwargs or {})
    return m


Make = Callable[..., nn.Module]


def _fc(mod: Make, layer: FullyConnectedLayer, kwargs: dict[str, Any]) -> nn.Module:
    lr = layer.bias_gain
    attrs = [
        ("in_features", layer.in_features),
        ("out_features", layer.out_features),
        ("activation", layer.activation),
        ("weight", layer.weight),
        ("bias", layer.bias),
        ("weight_gain", lr / np.sqrt(layer.in_features)),
        ("bias_gain", lr),
    ]
    return mod("FullyConnectedLayer", attrs, (layer.in_features, layer.out_features), kwargs)


def _size(value: int) -> np.ndarray[Any, Any]:
    return np.broadcast_to(np.asarray(value), [2])


def release_generator(G: Generator, src: str = STYLEGAN3_SRC) -> nn.Module:
    """Our generator as the release's module tree (same tensors, the release's attributes and init kwargs), its
    classes recording `src` as their module's source."""

    def mod(name: str, attrs: list[tuple[str, Any]], args: tuple[Any, ...] = (), kwargs: Any = None) -> nn.Module:
        return module(name, attrs, args, kwargs, src)

    opts = G.init_kwargs
    synthesis_kwargs = {k: v for k, v in opts.items() if k not in (*_GENERATOR_KWARGS_FIRST, *_GENERATOR_KWARGS_LAST)}
    mapping_kwargs = EasyDict(opts.get("mapping_kwargs") or {})
    layer_kwargs = {k: v for k, v in synthesis_kwargs.items() if k not in _SYNTHESIS_OWN}
    syn, mapping = G.synthesis, G.mapping
    margin = synthesis_kwargs.get("margin_size", 10)
    specs = layer_schedule(
        G.img_resolution, G.img_channels, **{k: v for k, v in synthesis_kwargs.items() if k in _SCHEDULE}
    )
    first = specs[0]
    inp = syn.input
    input_kwargs = {
        "w_dim": G.w_dim,
        "channels": first.channels,
        "size": first.size,
        "sampling_rate": np.float64(first.sampling_rate),
        "bandwidth": np.float64(first.cutoff),
    }
    input_attrs = [
        ("w_dim", G.w_dim),
        ("channels", first.channels),
        ("size", _size(first.size)),
        ("sampling_rate", input_kwargs["sampling_rate"]),
        ("bandwidth", input_kwargs["bandwidth"]),
        ("weight", inp.weight),
        ("affine", _fc(mod, inp.affine, {"weight_init": 0, "bias_init": [1, 0, 0, 0]})),
        ("transform", Buffer(inp.transform)),
        ("freqs", Buffer(inp.freqs)),
        ("phases", Buffer(inp.phases)),
    ]
    syn_attrs: list[tuple[str, Any]] = [
        ("w_dim", G.w_dim),
        ("num_ws", syn.num_ws),
        ("img_resolution", G.img_resolution),
        ("img_channels", G.img_channels),
        ("num_layers", syn.num_layers),
        ("num_critical", syn.num_critical),
        ("margin_size", margin),
        ("output_scale", syn.output_scale),
        ("num_fp16_res", syn.num_fp16_res),
        ("input", mod("SynthesisInput", input_attrs, kwargs=input_kwargs)),
        ("layer_names", list(syn.layer_names)),
    ]
    for spec, name in zip(specs, syn.layer_names, strict=True):
        prev = specs[max(spec.index - 1, 0)]
        syn_attrs.append((name, _layer(mod, getattr(syn, name), spec, prev, G, layer_kwargs)))
    synthesis = mod(
        "SynthesisNetwork",
        syn_attrs,
        kwargs={"w_dim": G.w_dim, "img_resolution": G.img_resolution, "img_channels": G.img_channels}
        | synthesis_kwargs,
    )
    map_attrs: list[tuple[str, Any]] = [
        ("z_dim", G.z_dim),
        ("c_dim", G.c_dim),
        ("w_dim", G.w_dim),
        ("num_ws", G.num_ws),
        ("num_layers", mapping.num_layers),
        ("w_avg_beta", mapping.w_avg_beta),
        ("embed", _fc(mod, mapping.embed, {}) if mapping.embed is not None else None),
    ]
    lr = {"lr_multiplier": mapping.fc0.bias_gain}
    map_attrs += [
        (f"fc{i}", _fc(mod, getattr(mapping, f"fc{i}"), {"activation": "lrelu"} | lr))
        for i in range(mapping.num_layers)
    ]
    map_attrs.append(("w_avg", Buffer(mapping.w_avg)))
    map_kwargs = {"z_dim": G.z_dim, "c_dim": G.c_dim, "w_dim": G.w_dim, "num_ws": G.num_ws} | dict(mapping_kwargs)
    gen_attrs = [
        ("z_dim", G.z_dim),
        ("c_dim", G.c_dim),
        ("w_dim", G.w_dim),
        ("img_resolution", G.img_resolution),
        ("img_channels", G.img_channels),
        ("synthesis", synthesis),
        ("num_ws", G.num_ws),
        ("mapping", mod("MappingNetwork", map_attrs, kwargs=map_kwargs)),
    ]
    gen_kwargs = {"z_dim": G.z_dim, "w_dim": G.w_dim, "mapping_kwargs": mapping_kwargs}
    gen_kwargs |= synthesis_kwargs | {
        "c_dim": G.c_dim,
        "img_resolution": G.img_resolution,
        "img_channels": G.img_channels,
    }
    return mod("Generator", gen_attrs, kwargs=gen_kwargs)


_SCHEDULE = (
    "channel_base",
    "channel_max",
    "num_layers",
    "num_critical",
    "first_cutoff",
    "first_stopband",
    "last_stopband_rel",
    "margin_size",
)
_SYNTHESIS_OWN = (*_SCHEDULE, "output_scale", "num_fp16_res")


def _layer(mod: Make, layer: nn.Module, spec: Any, prev: Any, G: Generator, layer_kwargs: dict[str, Any]) -> nn.Module:
    syn = G.synthesis
    is_torgb = spec.index == syn.num_layers
    lrelu_upsampling = layer_kwargs.get("lrelu_upsampling", 2)
    filter_size = layer_kwargs.get("filter_size", 6)
    in_rate, out_rate = int(prev.sampling_rate), int(spec.sampling_rate)
    tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
    up, down = layer.up_factor, layer.down_factor
    kwargs: dict[str, Any] = {
        "w_dim": G.w_dim,
        "is_torgb": is_torgb,
        "is_critically_sampled": spec.index >= syn.num_layers - syn.num_critical,
        "use_fp16": np.float64(spec.sampling_rate) * (2**syn.num_fp16_res) > G.img_resolution,
        "in_channels": prev.channels,
        "out_channels": spec.channels,
        "in_size": prev.size,
        "out_size": spec.size,
        "in_sampling_rate": in_rate,
        "out_sampling_rate": out_rate,
        "in_cutoff": np.float64(prev.cutoff),
        "out_cutoff": np.float64(spec.cutoff),
        "in_half_width": np.float64(prev.half_width),
        "out_half_width": np.float64(spec.half_width),
    } | layer_kwargs
    attrs = [(k, kwargs[k]) for k in ("w_dim", "is_torgb", "is_critically_sampled", "use_fp16")]
    attrs += [
        ("in_channels", prev.channels),
        ("out_channels", spec.channels),
        ("in_size", _size(prev.size)),
        ("out_size", _size(spec.size)),
        ("in_sampling_rate", in_rate),
        ("out_sampling_rate", out_rate),
        ("tmp_sampling_rate", tmp_rate),
        *[(k, kwargs[k]) for k in ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width")],
        ("conv_kernel", layer.conv_kernel),
        ("conv_clamp", layer.conv_clamp),
        ("magnitude_ema_beta", layer.magnitude_ema_beta),
        ("affine", _fc(mod, layer.affine, {"bias_init": 1})),
        ("weight", layer.weight),
        ("bias", layer.bias),
        ("magnitude_ema", Buffer(layer.magnitude_ema)),
        ("up_factor", up),
        ("up_taps", filter_size * up if up > 1 and not is_torgb else 1),
        ("up_filter", Buffer(layer.up_filter)),
        ("down_factor", down),
        ("down_taps", filter_size * down if down > 1 and not is_torgb else 1),
        ("down_radial", bool(layer_kwargs.get("use_radial_filters", False)) and not kwargs["is_critically_sampled"]),
        ("down_filter", Buffer(layer.down_filter)),
        ("padding", [int(p) for p in layer.padding]),
    ]
    return mod("SynthesisLayer", attrs, kwargs=kwargs)
