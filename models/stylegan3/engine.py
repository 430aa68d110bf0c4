"""What a deployment calls: one loaded generator, batched generation with per-sample settings, PNG rendering."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from models.imaging import fit_cover, to_png
from models.stylegan3.generator import Generator, default_device
from models.stylegan3.layers import RunMode
from models.stylegan3.loader import load_network
from models.stylegan3.sampling import check_seed, input_transform, one_hot, to_uint8, z_from_seed

Precision = Literal["auto", "fp32", "fp16", "bf16"]
_HALF = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class SampleSpec:
    """One image: the release's seed semantics, truncation ψ, class (conditional nets), translate (x, y) / rotate."""

    seed: int
    psi: float = 1.0
    class_idx: int | None = None
    translate: tuple[float, float] = (0.0, 0.0)
    rotate_deg: float = 0.0


def set_cuda_fast_math(enabled: bool) -> None:
    """TF32 matmul/convolution and cuDNN autotuning: process-wide switches, so set deliberately, not at import."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cudnn.benchmark = enabled


def to_pil(image: np.ndarray) -> Image.Image:
    """HWC uint8 (1 or 3 channels) → PIL image."""
    return Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)


class StyleGAN3Engine:
    """Holds one generator on one device. Thread-safe: forwards are serialised.

    `network_path`: release `.pkl`, our folder or `.safetensors` (see `load_network`). `fast`: the fast execution path
    (with reduced precision on CUDA for the last resolutions when `precision="auto"`); False: the fp32 reference.
    `max_batch`: larger batches are split into chunks of this many (memory bound), None = all at once.
    """

    def __init__(
        self,
        network_path: str | os.PathLike[str] | None,
        device: str | torch.device | None = None,
        fast: bool = True,
        compile: bool = False,
        precision: Precision = "auto",
        max_batch: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        if generator is None:
            if network_path is None:
                raise ValueError("give a network path or a generator")
            generator = load_network(network_path, self.device)
        self.network_path = None if network_path is None else os.fspath(network_path)
        self.G = generator.to(self.device).eval().requires_grad_(False)
        if precision not in ("auto", *_HALF):
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16; got {precision!r}")
        half = (torch.float16 if self.device.type == "cuda" else None) if precision == "auto" else _HALF[precision]
        self.fast = fast
        self.G.set_mode(RunMode(fast=fast, half_dtype=half if fast else None))
        if self.device.type == "cuda":
            set_cuda_fast_math(fast)
        self.max_batch = max_batch
        self.compiled = compile
        self._forward: Any = torch.compile(self.G, dynamic=False) if compile else self.G
        self._lock = threading.Lock()

    @classmethod
    def from_generator(cls, generator: Generator, **kwargs: Any) -> StyleGAN3Engine:
        return cls(None, generator=generator, **kwargs)

    @property
    def native_size(self) -> tuple[int, int]:
        """(width, height) of what the network draws."""
        return (self.G.img_resolution, self.G.img_resolution)

    @property
    def c_dim(self) -> int:
        return self.G.c_dim

    def info(self) -> dict[str, Any]:
        mode = self.G.mode
        return {
            "network": self.network_path,
            "device": str(self.device),
            "native_size": list(self.native_size),
            "z_dim": self.G.z_dim,
            "c_dim": self.G.c_dim,
            "fast": mode.fast,
            "half_dtype": None if mode.half_dtype is None else str(mode.half_dtype).removeprefix("torch."),
            "compiled": self.compiled,
        }

    def inputs(self, items: Sequence[SampleSpec]) -> dict[str, torch.Tensor]:
        """Per-sample z, label, ψ and input transform for one forward (validated: ValueError on bad values)."""
        if not items:
            raise ValueError("empty batch")
        z = np.stack([z_from_seed(check_seed(s.seed), self.G.z_dim) for s in items])
        c = np.stack([one_hot(s.class_idx, self.G.c_dim) for s in items])
        psi = np.array([s.psi for s in items], dtype=np.float32)
        if not np.all(np.isfinite(psi)):
            raise ValueError("psi must be finite")
        for s in items:
            if not all(math.isfinite(v) for v in (*s.translate, s.rotate_deg)):
                raise ValueError("translate/rotate must be finite")
        transforms = np.stack([input_transform(s.translate, s.rotate_deg) for s in items])

        def dev(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(self.device, torch.float32)

        return {"z": dev(z), "c": dev(c), "truncation_psi": dev(psi), "transforms": dev(transforms)}

    def generate_tensor(self, items: Sequence[SampleSpec]) -> torch.Tensor:
        """Float NCHW images (≈[-1, 1]) on the engine's device; one forward per `max_batch` chunk."""
        if not items:
            raise ValueError("empty batch")
        chunk = self.max_batch or len(items)
        outs = []
        for start in range(0, len(items), chunk):
            batch = self.inputs(items[start : start + chunk])
            with self._lock, torch.inference_mode():
                outs.append(self._forward(**batch))
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def generate_batch(self, items: Sequence[SampleSpec]) -> list[np.ndarray]:
        """uint8 HWC images, one per item, in order."""
        return list(to_uint8(self.generate_tensor(items)))

    def render_png(self, sample: SampleSpec, width: int, height: int) -> bytes:
        """One image resized (Lanczos, cover-crop) to exactly width×height, PNG-encoded."""
        return to_png(fit_cover(to_pil(self.generate_batch([sample])[0]), width, height))

    def warm_up(self, batch_sizes: Sequence[int] = (1,)) -> float:
        """Run each batch size once (cuDNN autotuning, torch.compile); returns the seconds it took."""
        start = time.perf_counter()
        for n in batch_sizes:
            self.generate_tensor([SampleSpec(seed=i, class_idx=0 if self.c_dim else None) for i in range(n)])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def health(self) -> dict[str, Any]:
        """A one-image forward; `ok` only when the output has the native shape and is finite."""
        start = time.perf_counter()
        try:
            img = self.generate_tensor([SampleSpec(seed=0, class_idx=0 if self.c_dim else None)])
            finite = bool(torch.isfinite(img).all().item())
            shape_ok = tuple(img.shape[1:]) == (self.G.img_channels, self.G.img_resolution, self.G.img_resolution)
            ok, error = finite and shape_ok, None if finite and shape_ok else "non-finite or misshapen output"
        except Exception as exc:  # health must report, not raise
            ok, error = False, f"{type(exc).__name__}: {exc}"
        return {"ok": ok, "error": error, "elapsed_ms": (time.perf_counter() - start) * 1000, **self.info()}
