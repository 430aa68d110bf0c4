"""Our own network format: safetensors weights + a JSON config (the generator's options).

A folder holds `model.safetensors` and `config.json`; the config is also written into the safetensors header's
metadata, so a lone `.safetensors` file is self-contained. Loading runs no code: JSON and raw tensors only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from models.stylegan3.errors import NetworkFormatError
from models.stylegan3.generator import Generator
from models.stylegan3.loader import build_generator
from models.stylegan3.options import check_options, to_plain

FORMAT = "cascade-stylegan3"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def generator_config(generator: Generator) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "init_kwargs": to_plain(generator.init_kwargs)}


def save_ours(generator: Generator, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir/model.safetensors` and `out_dir/config.json`; returns the folder."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = generator_config(generator)
    text = json.dumps(config, indent=2, sort_keys=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in generator.state_dict().items()}
    # Temp names + rename: a reader never sees a half-written pair.
    tmp_weights, tmp_config = folder / f".{WEIGHTS}.tmp", folder / f".{CONFIG}.tmp"
    save_file(tensors, str(tmp_weights), metadata={"config": text})
    tmp_config.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_weights, folder / WEIGHTS)
    os.replace(tmp_config, folder / CONFIG)
    return folder


def _read_config(weights: Path, folder_config: Path | None) -> dict[str, Any]:
    try:
        if folder_config is not None and folder_config.is_file():
            config = json.loads(folder_config.read_text(encoding="utf-8"))
        else:
            with safe_open(str(weights), framework="pt") as f:
                meta = f.metadata() or {}
            if "config" not in meta:
                raise NetworkFormatError(f"{weights}: no config (neither {CONFIG} beside it nor in its metadata)")
            config = json.loads(meta["config"])
    except (ValueError, RecursionError, SafetensorError) as exc:  # JSONDecodeError is a ValueError
        raise NetworkFormatError(f"{weights}: unreadable config ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise NetworkFormatError(f"{weights}: not a {FORMAT} network")
    if config.get("version") != VERSION:
        raise NetworkFormatError(f"{weights}: unsupported {FORMAT} version {config.get('version')}")
    return config


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path, Path | None]:
    p = Path(path)
    weights, folder_config = (p / WEIGHTS, p / CONFIG) if p.is_dir() else (p, None)
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found")
    return p, weights, folder_config


def read_options(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked generator options of a folder or `.safetensors` file written by `save_ours`."""
    p, weights, folder_config = _paths(path)
    options = _read_config(weights, folder_config).get("init_kwargs")
    if not isinstance(options, dict):
        raise NetworkFormatError(f"{p}: config without init_kwargs")
    return check_options(options, str(p))


def load_ours(path: str | os.PathLike[str]) -> Generator:
    """A folder written by `save_ours`, or a single `.safetensors` file carrying its config in the metadata."""
    p, weights, _ = _paths(path)
    options = read_options(p)
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except SafetensorError as exc:
        raise NetworkFormatError(f"{weights}: unreadable weights ({exc})") from None
    return build_generator(options, tensors, str(p))
