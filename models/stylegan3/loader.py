"""Build our Generator from a release network pickle (safely) or from our own format, picking by path.

A pickle is read as data (`unpickler`), its `G_ema` recognised as a StyleGAN3 generator by its module tree
(`recognise`), its init kwargs checked (`options`) and its size estimate compared with the tensors the file holds
before anything is built, and then every tensor copied by name and shape. Whatever is wrong with a file ends in a
`NetworkError` (`errors`); a missing file stays an `OSError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.stylegan3.errors import NetworkError, NetworkFormatError, UnsafePickleError
from models.stylegan3.generator import Generator, default_device
from models.stylegan3.options import check_options, estimated_parameters, to_plain
from models.stylegan3.recognise import check_generator
from models.stylegan3.unpickler import PersistentStub, read_network_pickle

__all__ = [
    "NetworkError",
    "NetworkFormatError",
    "UnsafePickleError",
    "copy_tensors",
    "generator_from_stub",
    "load_network",
    "load_nvidia_pickle",
    "read_network_pickle",
    "to_plain",
]
_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
# Filters, biases and small buffers come on top of the estimate's weights.
_SLACK = 1 << 16


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def _name(prefix: str, name: Any) -> str:
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise NetworkFormatError(f"{prefix or 'the network'} has a member named {str(name)[:40]!r}, not a name")
    return f"{prefix}{name}"


def stub_tensors(stub: PersistentStub | Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """All parameters and buffers of a reconstructed module tree, by dotted name (None buffers skipped)."""
    state = stub.state if isinstance(stub, PersistentStub) else stub
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        values = state.get(group, {})  # never `or {}`: truth-testing a value from the file can raise
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise NetworkFormatError(f"{prefix}{group} is not a mapping")
        for name, value in values.items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise NetworkFormatError(f"{_name(prefix, name)} is not a tensor")
            tensors[_name(prefix, name)] = value
    modules = state.get("_modules", {})
    if modules is None:
        modules = {}
    if not isinstance(modules, Mapping):
        raise NetworkFormatError(f"{prefix}_modules is not a mapping")
    for name, child in modules.items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub):
            raise NetworkFormatError(f"{_name(prefix, name)} is not a module")
        tensors.update(stub_tensors(child, f"{_name(prefix, name)}."))
    return tensors


def copy_tensors(generator: Generator, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict copy by name: every expected tensor present with the right shape, nothing left over."""
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{source}: tensor names do not match the generator"]
        for label, names in (("missing", missing), ("unexpected", unexpected)):
            if names:
                parts.append(f"{label}: {', '.join(names[:10])}" + (" ..." if len(names) > 10 else ""))
        raise NetworkFormatError("; ".join(parts))
    bad = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if tensors[k].shape != v.shape
    ]
    if bad:
        raise NetworkFormatError(f"{source}: shape mismatch: {'; '.join(bad[:5])}")
    params_and_buffers = dict(generator.named_parameters()) | dict(generator.named_buffers())
    with torch.no_grad():
        for name, dest in params_and_buffers.items():
            dest.copy_(tensors[name].to(dest.dtype))


def generator_kwargs(stub: PersistentStub, source: str = "network") -> dict[str, Any]:
    args = stub.init_args
    if len(args) > len(_POSITIONAL):
        raise NetworkFormatError(f"{source}: too many positional generator arguments")
    kwargs = dict(zip(_POSITIONAL[: len(args)], args, strict=True)) | stub.init_kwargs
    kwargs.pop("class_name", None)
    return check_options(kwargs, source)


def build_generator(options: dict[str, Any], tensors: Mapping[str, torch.Tensor], source: str) -> Generator:
    """A generator from checked options, only when its size matches what the file holds; then the tensors."""
    held = sum(t.numel() for t in tensors.values())
    try:
        wanted = estimated_parameters(options)
    except NetworkError:
        raise
    except (TypeError, ValueError, ArithmeticError) as exc:  # checked options can still describe no network
        raise NetworkFormatError(f"{source}: options describe no network: {exc}") from exc
    if wanted > held + _SLACK:
        raise NetworkFormatError(f"{source}: options describe {wanted} weights, the file holds {held}")
    try:
        generator = Generator(**options)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise NetworkFormatError(f"{source}: cannot build the generator from its options: {exc}") from exc
    copy_tensors(generator, tensors, source)
    return generator


def generator_from_stub(stub: Any, source: str = "network") -> Generator:
    check_generator(stub, source)
    return build_generator(generator_kwargs(stub, source), stub_tensors(stub), source)


def _pickled_network(path: str | os.PathLike[str], key: str) -> tuple[Any, str]:
    data = read_network_pickle(path)
    if isinstance(data, Mapping):
        if key not in data:
            keys = ", ".join(str(k)[:40] for k in list(data)[:10])
            raise NetworkFormatError(f"{path}: no {key!r} in the pickle (keys: {keys})")
        return data[key], f"{path}: {key}"
    return data, str(path)


def load_nvidia_pickle(path: str | os.PathLike[str], key: str = "G_ema") -> Generator:
    """`G_ema` (by default) of a release network pickle, as our Generator, without running code from the file."""
    stub, source = _pickled_network(path, key)
    return generator_from_stub(stub, source)


def inspect_network(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What `load_network` would check, short of building the generator: its options (a NetworkError or OSError
    for a file it would refuse). Cheap enough for an app builder to call before deploying a replica for it."""
    from models.stylegan3.ours import read_options  # local: ours imports this module

    p = Path(path)
    if p.is_dir() or p.suffix == ".safetensors":
        return read_options(p)
    if p.suffix not in (".pkl", ".pickle"):
        raise NetworkFormatError(f"{path}: expected a .pkl network pickle, a .safetensors file or a folder")
    stub, source = _pickled_network(p, "G_ema")
    check_generator(stub, source)
    options = generator_kwargs(stub, source)
    held = sum(t.numel() for t in stub_tensors(stub).values())
    try:
        wanted = estimated_parameters(options)
    except NetworkError:
        raise
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise NetworkFormatError(f"{source}: options describe no network: {exc}") from exc
    if wanted > held + _SLACK:
        raise NetworkFormatError(f"{source}: options describe {wanted} weights, the file holds {held}")
    return options


def load_network(path: str | os.PathLike[str], device: str | torch.device | None = None) -> Generator:
    """Release pickle (`.pkl`/`.pickle`) or our format (a folder, or a `.safetensors` file) → eval-mode Generator."""
    from models.stylegan3.ours import load_ours  # local: ours imports this module

    p = Path(path)
    if p.is_dir() or p.suffix == ".safetensors":
        generator = load_ours(p)
    elif p.suffix in (".pkl", ".pickle"):
        generator = load_nvidia_pickle(p)
    else:
        raise NetworkFormatError(f"{path}: expected a .pkl network pickle, a .safetensors file or a folder")
    generator = generator.to(torch.device(device) if device is not None else default_device())
    return generator.eval().requires_grad_(False)
