"""Is a folder a usable Qwen-Image pipeline? Answered from files alone, without importing torch.

The app builder asks this before deploying the backend, so a missing download or a half-finished copy leaves the
backend out with a readable reason instead of crashing a GPU replica minutes into its start.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

PIPELINE_CLASS = "QwenImagePipeline"
# Component → the config file that must be in its folder.
COMPONENT_CONFIGS = {
    "transformer": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "scheduler": "scheduler_config.json",
    "tokenizer": None,
}
WEIGHTED = ("transformer", "vae", "text_encoder")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_LFS_POINTER = b"version https://git-lfs"


def check_weights(path: str | os.PathLike[str] | None) -> str | None:
    """None when `path` looks like a complete Qwen-Image pipeline folder, else the reason it is not."""
    if path is None or str(path).strip() == "":
        return "no Qwen-Image weights path configured (set QWEN_IMAGE_PATH or the backend's weights option)"
    root = Path(path).expanduser()
    if not root.exists():
        return f"weights folder {root} does not exist"
    if not root.is_dir():
        return f"weights path {root} is not a folder"
    index_file = root / "model_index.json"
    if not index_file.is_file():
        return f"no model_index.json in {root}: not a diffusers pipeline folder"
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable {index_file}: {exc}"
    if not isinstance(index, dict):
        return f"{index_file} is not a JSON object"
    cls = index.get("_class_name")
    if cls != PIPELINE_CLASS:
        return f"{root} holds a {cls or 'unnamed'} pipeline, not a {PIPELINE_CLASS}"
    for component, config in COMPONENT_CONFIGS.items():
        reason = _check_component(root, index, component, config)
        if reason:
            return reason
    return None


def _check_component(root: Path, index: dict[str, object], component: str, config: str | None) -> str | None:
    if component not in index:
        return f"model_index.json in {root} does not list the {component}"
    folder = root / component
    if not folder.is_dir():
        return f"missing component folder {folder}"
    if config is not None and not (folder / config).is_file():
        return f"missing {folder / config}"
    if component == "tokenizer":
        has_fast = (folder / "tokenizer.json").is_file()
        has_bpe = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
        if not (has_fast or has_bpe):
            return f"no tokenizer files in {folder} (tokenizer.json, or vocab.json and merges.txt)"
    if component in WEIGHTED:
        return _check_weight_files(folder)
    return None


def _check_weight_files(folder: Path) -> str | None:
    shards: set[str] = set()
    for index_file in folder.glob("*.index.json"):
        try:
            weight_map = json.loads(index_file.read_text(encoding="utf-8")).get("weight_map", {})
            shards.update(str(name) for name in weight_map.values())
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            return f"unreadable shard index {index_file}: {exc}"
    missing = sorted(name for name in shards if not (folder / name).is_file())
    if missing:
        return f"{folder} is incomplete: missing {len(missing)} of {len(shards)} shards ({', '.join(missing[:3])})"
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    if not files:
        return f"no weight files (*.safetensors or *.bin) in {folder}"
    for file in files:
        reason = _check_weight_file(file)
        if reason:
            return reason
    return None


def parameter_counts(path: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Per weighted component: (parameters, largest single tensor), read from its safetensors headers alone.

    The memory plan sizes the components from these, so a checkpoint of another size (a tiny test one, a pruned
    one) is planned for what it is. Components stored as .bin are missing from the answer (their size needs unpickling).
    """
    counts: dict[str, tuple[int, int]] = {}
    for component in WEIGHTED:
        total, largest, seen = 0, 0, False
        for file in sorted((Path(path).expanduser() / component).glob("*.safetensors")):
            header = _read_header(file)
            if header is None:
                continue
            seen = True
            for key, value in header.items():
                if key == "__metadata__" or not isinstance(value, dict):
                    continue
                numel = math.prod(int(d) for d in value.get("shape", ()))
                total += numel
                largest = max(largest, numel)
        if seen:
            counts[component] = (total, largest)
    return counts


def _read_header(file: Path) -> dict[str, object] | None:
    try:
        with file.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            (header_len,) = struct.unpack("<Q", head)
            if header_len > file.stat().st_size - 8:
                return None
            header = json.loads(fh.read(header_len))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _check_weight_file(file: Path) -> str | None:
    """Catch the usual broken downloads cheaply: Git LFS pointers and truncated safetensors (header only is read)."""
    try:
        size = file.stat().st_size
        with file.open("rb") as fh:
            head = fh.read(8)
            if head.startswith(_LFS_POINTER[:8]) and fh.read(len(_LFS_POINTER) - 8) == _LFS_POINTER[8:]:
                return f"{file} is a Git LFS pointer, not weights (run git lfs pull)"
            if not file.name.endswith(".safetensors"):
                return None
            if len(head) < 8:
                return f"{file} is empty or truncated"
            (header_len,) = struct.unpack("<Q", head)
            if header_len > size - 8:
                return f"{file} is truncated or not a safetensors file"
            header = json.loads(fh.read(header_len))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable weights {file}: {exc}"
    if not isinstance(header, dict):
        return f"{file} has a malformed safetensors header"
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (KeyError, TypeError, IndexError, ValueError):
        return f"{file} has a malformed safetensors header"
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        return f"{file} is truncated: {size} bytes, expected {expected}"
    return None
