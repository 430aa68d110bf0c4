"""The release's per-image conventions: seeds → z, class → one-hot label, translate/rotate → input transform, uint8."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch

MAX_SEED = 2**32 - 1  # numpy's legacy RandomState accepts 0..2**32-1


def parse_seeds(text: str) -> list[int]:
    """`"0,1,5-8"` → [0, 1, 5, 6, 7, 8] (ranges inclusive, order kept)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            lo, hi = int(match[1]), int(match[2])
            if hi < lo:
                raise ValueError(f"bad seed range {part!r}")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ValueError(f"bad seed {part!r} (expected e.g. 0,1,5-8)")
    if not seeds:
        raise ValueError("no seeds given")
    for seed in seeds:
        check_seed(seed)
    return seeds


def parse_vec2(text: str) -> tuple[float, float]:
    """`"0.1,-0.2"` → (0.1, -0.2)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected two comma-separated numbers, got {text!r}")
    return float(parts[0]), float(parts[1])


def check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    return seed


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The release's latent for a seed: numpy's legacy generator, float64 [z_dim]."""
    return np.random.RandomState(check_seed(seed)).randn(1, z_dim)[0]


def one_hot(class_idx: int | None, c_dim: int) -> np.ndarray:
    label = np.zeros([c_dim], dtype=np.float32)
    if c_dim == 0:
        return label
    if class_idx is None:
        raise ValueError(f"this network is conditional: a class in 0..{c_dim - 1} is required")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"class must be in 0..{c_dim - 1}, got {class_idx}")
    label[class_idx] = 1
    return label


def make_transform(translate: Sequence[float] = (0.0, 0.0), rotate_deg: float = 0.0) -> np.ndarray:
    """The user-facing matrix m (rotation by `rotate_deg`, translation in image-width units)."""
    a = rotate_deg / 360 * 2 * math.pi
    s, c = math.sin(a), math.cos(a)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=np.float64)


def input_transform(translate: Sequence[float] = (0.0, 0.0), rotate_deg: float = 0.0) -> np.ndarray:
    """What the network's input layer takes: the inverse of `make_transform`."""
    return np.linalg.inv(make_transform(translate, rotate_deg))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW float (≈[-1, 1]) → NHWC uint8, the release's rounding (`clamp(x·127.5 + 128)`, then truncation)."""
    out = (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()
