"""The rest of a release snapshot (discriminator, augmentation pipe) and other architectures' generators, as module
trees shaped like theirs (for `release_pickle`; random weights, few channels).

Facts (read only) from NVlabs/stylegan3 `training/networks_stylegan2.py` (Discriminator with blocks b{res} of
DiscriminatorBlock — fromrgb/conv0/conv1/skip Conv2dLayer — and the epilogue b4 with mbstd/conv/fc/out; the StyleGAN2
Generator whose SynthesisNetwork holds SynthesisBlock b4..b{R} with const/conv0/conv1/torgb), `training/augment.py`
(AugmentPipe: buffer p, float probabilities, Hz_geom / Hz_fbank buffers), `torch_utils/ops/bias_act.py` (def_gain:
np.sqrt(2) for lrelu, 1 for linear), and autonomousvision/stylegan-xl `training/networks_stylegan3_resetting.py`
(its MappingNetwork holds a pretrained `torch.nn.Embedding` as `embed` plus `embed_proj`; high resolutions are a
`SuperresGenerator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from models.stylegan3.release_pickle import EasyDict
from models.stylegan3.release_tree import Buffer, module

STYLEGAN2_SRC = "# Stand-in for the release's training/networks_stylegan2.py. A safe loader never executes it.\n"
AUGMENT_SRC = "# Stand-in for the release's training/augment.py. A safe loader never executes it.\n"
_LRELU_GAIN = np.sqrt(2)


def _resample_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f.ger(f)
    return f / f.sum()


def _conv(cin: int, cout: int, kernel: int, bias: bool = True, activation: str = "lrelu", **kw: Any) -> nn.Module:
    attrs = [
        ("in_channels", cin),
        ("out_channels", cout),
        ("activation", activation),
        ("up", kw.get("up", 1)),
        ("down", kw.get("down", 1)),
        ("conv_clamp", kw.get("conv_clamp")),
        ("resample_filter", Buffer(_resample_filter())),
        ("padding", kernel // 2),
        ("weight_gain", 1 / np.sqrt(cin * kernel**2)),
        ("act_gain", _LRELU_GAIN if activation == "lrelu" else 1),
        ("weight", torch.randn(cout, cin, kernel, kernel)),
        ("bias", torch.zeros(cout) if bias else None),
    ]
    kwargs = {"kernel_size": kernel, "activation": activation} | kw | ({} if bias else {"bias": False})
    return module("Conv2dLayer", attrs, (cin, cout), kwargs, STYLEGAN2_SRC)


def _fc(cin: int, cout: int, activation: str = "linear") -> nn.Module:
    attrs = [
        ("in_features", cin),
        ("out_features", cout),
        ("activation", activation),
        ("weight", torch.randn(cout, cin)),
        ("bias", torch.zeros(cout)),
        ("weight_gain", 1 / np.sqrt(cin)),
        ("bias_gain", 1),
    ]
    return module("FullyConnectedLayer", attrs, (cin, cout), {"activation": activation}, STYLEGAN2_SRC)


def discriminator(img_resolution: int, c_dim: int = 0, channels: int = 8, img_channels: int = 3) -> nn.Module:
    log2 = int(np.log2(img_resolution))
    resolutions = [2**i for i in range(log2, 2, -1)]
    attrs: list[tuple[str, Any]] = [
        ("c_dim", c_dim),
        ("img_resolution", img_resolution),
        ("img_resolution_log2", log2),
        ("img_channels", img_channels),
        ("block_resolutions", resolutions),
    ]
    layer_idx = 0
    for res in resolutions:
        first = res == img_resolution
        common = {"conv_clamp": 256, "channels_last": False}
        block: list[tuple[str, Any]] = [
            ("in_channels", 0 if first else channels),
            ("resolution", res),
            ("img_channels", img_channels),
            ("first_layer_idx", layer_idx),
            ("architecture", "resnet"),
            ("use_fp16", res >= 8),
            ("channels_last", False),
            ("resample_filter", Buffer(_resample_filter())),
            ("num_layers", 3 if first else 2),
        ]
        if first:
            block.append(("fromrgb", _conv(img_channels, channels, 1, **common)))
        block += [
            ("conv0", _conv(channels, channels, 3, **common)),
            ("conv1", _conv(channels, channels, 3, down=2, **common)),
            ("skip", _conv(channels, channels, 1, bias=False, activation="linear", down=2)),
        ]
        kwargs = {"resolution": res, "first_layer_idx": layer_idx, "use_fp16": res >= 8, "freeze_layers": 0}
        kwargs |= {"img_channels": img_channels, "architecture": "resnet", "conv_clamp": 256}
        args = (0 if first else channels, channels, channels)
        attrs.append((f"b{res}", module("DiscriminatorBlock", block, args, kwargs, STYLEGAN2_SRC)))
        layer_idx += 3 if first else 2
    mbstd = module(
        "MinibatchStdLayer",
        [("group_size", 4), ("num_channels", 1)],
        (),
        {"group_size": 4, "num_channels": 1},
        STYLEGAN2_SRC,
    )
    epilogue = [
        ("in_channels", channels),
        ("cmap_dim", 0),
        ("resolution", 4),
        ("img_channels", img_channels),
        ("architecture", "resnet"),
        ("mbstd", mbstd),
        ("conv", _conv(channels + 1, channels, 3, conv_clamp=256)),
        ("fc", _fc(channels * 16, channels, "lrelu")),
        ("out", _fc(channels, 1)),
    ]
    attrs.append(
        ("b4", module("DiscriminatorEpilogue", epilogue, (channels,), {"cmap_dim": 0, "resolution": 4}, STYLEGAN2_SRC))
    )
    kwargs = {
        "block_kwargs": EasyDict(freeze_layers=0),
        "mapping_kwargs": EasyDict(),
        "epilogue_kwargs": EasyDict(mbstd_group_size=4),
        "channel_base": channels * 32,
        "channel_max": channels,
        "c_dim": c_dim,
        "img_resolution": img_resolution,
        "img_channels": img_channels,
    }
    return module("Discriminator", attrs, (), kwargs, STYLEGAN2_SRC)


_AUGMENT_FLOATS = (
    "xflip rotate90 xint xint_max scale rotate aniso xfrac scale_std rotate_max aniso_std xfrac_std brightness "
    "contrast lumaflip hue saturation brightness_std contrast_std hue_max saturation_std imgfilter"
).split()


def augment_pipe() -> nn.Module:
    attrs: list[tuple[str, Any]] = [("p", Buffer(torch.tensor(0.125)))]
    attrs += [(name, 1.0) for name in _AUGMENT_FLOATS]
    attrs += [("imgfilter_bands", [1.0, 1.0, 1.0, 1.0]), ("imgfilter_std", 1.0)]
    attrs += [(name, 0.0) for name in ("noise", "cutout", "noise_std")] + [("cutout_size", 0.5)]
    attrs += [("Hz_geom", Buffer(torch.randn(12))), ("Hz_fbank", Buffer(torch.randn(4, 17)))]
    kwargs = dict.fromkeys(
        "xflip rotate90 xint scale rotate aniso xfrac brightness contrast lumaflip hue saturation".split(), 1
    )
    return module("AugmentPipe", attrs, (), kwargs, AUGMENT_SRC)


def stylegan2_generator(img_resolution: int = 16, channels: int = 8, w_dim: int = 8) -> nn.Module:
    """A StyleGAN2 generator's tree: synthesis blocks b4..b{R}, a constant input, no Fourier features."""
    blocks: list[tuple[str, Any]] = [("w_dim", w_dim), ("img_resolution", img_resolution)]
    res = 4
    while res <= img_resolution:
        layers: list[tuple[str, Any]] = [("in_channels", 0 if res == 4 else channels), ("resolution", res)]
        if res == 4:
            layers.append(("const", torch.randn(channels, 4, 4)))
        layers += [
            ("conv1", module("SynthesisLayer", [("weight", torch.randn(channels, channels, 3, 3))], src=STYLEGAN2_SRC)),
            ("torgb", module("ToRGBLayer", [("weight", torch.randn(3, channels, 1, 1))], src=STYLEGAN2_SRC)),
        ]
        blocks.append((f"b{res}", module("SynthesisBlock", layers, src=STYLEGAN2_SRC)))
        res *= 2
    synthesis = module("SynthesisNetwork", blocks, kwargs={"w_dim": w_dim}, src=STYLEGAN2_SRC)
    mapping = module(
        "MappingNetwork",
        [("fc0", _fc(w_dim, w_dim, "lrelu")), ("w_avg", Buffer(torch.zeros(w_dim)))],
        src=STYLEGAN2_SRC,
    )
    attrs = [("z_dim", w_dim), ("c_dim", 0), ("w_dim", w_dim), ("synthesis", synthesis), ("mapping", mapping)]
    kwargs = {"z_dim": w_dim, "w_dim": w_dim, "mapping_kwargs": EasyDict(num_layers=8), "channel_base": 32768}
    kwargs |= {
        "channel_max": channels,
        "fused_modconv_default": "inference_only",
        "c_dim": 0,
        "img_resolution": img_resolution,
        "img_channels": 3,
    }
    return module("Generator", attrs, (), kwargs, STYLEGAN2_SRC)


def stylegan_xl_generator(base: nn.Module, superres: bool = False) -> nn.Module:
    """A StyleGAN-XL generator around a release-shaped StyleGAN3 tree: a torch.nn.Embedding class embedding and
    `embed_proj` in the mapping, or (superres) the `SuperresGenerator` class its high resolutions use."""
    if superres:
        attrs = [(k, v) for k, v in vars(base).items() if not k.startswith("_") and k != "training"]
        attrs += [(k, v) for k, v in base._modules.items()]
        return module("SuperresGenerator", attrs, (), {"path_stem": "stem.pkl", "head_layers": 4, "up_factor": 2})
    mapping = base.mapping
    mapping.embed = nn.Embedding(10, 8)
    mapping.embed_proj = _fc(8, 8, "lrelu")
    return base
