"""Build our Generator from a release network pickle (safely) or from our own format, picking by path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.stylegan3.generator import Generator, default_device
from models.stylegan3.unpickler import PersistentStub, safe_load

GENERATOR_CLASS = "training.networks_stylegan3.Generator"
_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


class NetworkFormatError(ValueError):
    """The file is readable but is not a network we can serve (wrong class, missing/extra/misshapen tensors...)."""


def to_plain(value: Any) -> Any:
    """EasyDicts, tuples and numpy scalars/arrays from a pickle → JSON-friendly Python values."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise NetworkFormatError(f"unsupported value in network options: {type(value).__name__}")


def stub_tensors(stub: PersistentStub | Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """All parameters and buffers of a reconstructed module tree, by dotted name (None buffers skipped)."""
    state = stub.state if isinstance(stub, PersistentStub) else stub
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise NetworkFormatError(f"{prefix}{name} is not a tensor")
            tensors[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub | Mapping):
            raise NetworkFormatError(f"{prefix}{name} is not a module")
        tensors.update(stub_tensors(child, f"{prefix}{name}."))
    return tensors


def copy_tensors(generator: Generator, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict copy by name: every expected tensor present with the right shape, nothing left over."""
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise NetworkFormatError(
            f"{source}: tensor names do not match the generator"
            + (f"; missing: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else "") if missing else "")
            + (
                f"; unexpected: {', '.join(unexpected[:10])}" + (" ..." if len(unexpected) > 10 else "")
                if unexpected
                else ""
            )
        )
    bad = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if tensors[k].shape != v.shape
    ]
    if bad:
        raise NetworkFormatError(f"{source}: shape mismatch: {'; '.join(bad[:5])}")
    params_and_buffers = dict(generator.named_parameters()) | dict(generator.named_buffers())
    with torch.no_grad():
        for name, dest in params_and_buffers.items():
            dest.copy_(tensors[name].to(dest.dtype))


def generator_kwargs(stub: PersistentStub) -> dict[str, Any]:
    args = stub.init_args
    if len(args) > len(_POSITIONAL):
        raise NetworkFormatError("too many positional generator arguments")
    kwargs = dict(zip(_POSITIONAL[: len(args)], args, strict=True)) | stub.init_kwargs
    kwargs.pop("class_name", None)
    return to_plain(kwargs)


def generator_from_stub(stub: PersistentStub, source: str = "network") -> Generator:
    if stub.class_name != GENERATOR_CLASS:
        raise NetworkFormatError(f"{source}: {stub.class_name} is not a StyleGAN3 generator ({GENERATOR_CLASS})")
    kwargs = generator_kwargs(stub)
    try:
        generator = Generator(**kwargs)
    except (TypeError, ValueError) as exc:
        raise NetworkFormatError(f"{source}: cannot build the generator from its options: {exc}") from exc
    copy_tensors(generator, stub_tensors(stub), source)
    return generator


def read_network_pickle(path: str | os.PathLike[str]) -> Any:
    with open(path, "rb") as f:
        return safe_load(f)


def load_nvidia_pickle(path: str | os.PathLike[str], key: str = "G_ema") -> Generator:
    """`G_ema` (by default) of a release network pickle, as our Generator, without running code from the file."""
    data = read_network_pickle(path)
    if isinstance(data, Mapping):
        if key not in data:
            raise NetworkFormatError(f"{path}: no {key!r} in the pickle (keys: {', '.join(map(str, data))})")
        stub = data[key]
    else:
        stub = data
    if not isinstance(stub, PersistentStub):
        raise NetworkFormatError(f"{path}: {key} is not a network object")
    return generator_from_stub(stub, source=str(path))


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
