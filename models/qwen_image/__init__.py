"""Qwen-Image (diffusers `QwenImagePipeline`) as a plain Python engine. Importing this package loads no torch."""

from __future__ import annotations

from models.qwen_image.engine import QwenImageEngine
from models.qwen_image.errors import EngineUnhealthy, GenerationCancelled, WeightsError
from models.qwen_image.options import QwenOptions
from models.qwen_image.results import Progress, QwenImage, stop_check
from models.qwen_image.sizes import RECOMMENDED_SIZES, native_size
from models.qwen_image.weights import check_weights

__all__ = [
    "RECOMMENDED_SIZES",
    "EngineUnhealthy",
    "GenerationCancelled",
    "Progress",
    "QwenImage",
    "QwenImageEngine",
    "QwenOptions",
    "WeightsError",
    "check_weights",
    "native_size",
    "stop_check",
]
