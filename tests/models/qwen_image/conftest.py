from __future__ import annotations

import os

# huggingface_hub reads this once, at import: set it before anything imports diffusers or transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from models.qwen_image import QwenImageEngine


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.qwen_image.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("qwen-tiny") / "pipeline", seed=0)


@pytest.fixture(scope="session")
def engine(tiny_weights: Path) -> QwenImageEngine:
    from models.qwen_image import QwenImageEngine, QwenOptions

    return QwenImageEngine(tiny_weights, QwenOptions(warmup_sizes=((32, 32), (48, 48)), warmup_steps=2), device="cpu")
