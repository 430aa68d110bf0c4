from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.qwen_image import QwenImageEngine, QwenOptions, WeightsError, check_weights

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def copy(tiny_weights: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_weights, tmp_path / "copy"))


def test_the_tiny_pipeline_passes(tiny_weights: Path) -> None:
    assert check_weights(tiny_weights) is None


def test_missing_folder_is_reported_and_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    reason = check_weights(missing)
    assert reason is not None and "does not exist" in reason and str(missing) in reason
    for unset in (None, "", "  "):
        assert "no Qwen-Image weights path configured" in (check_weights(unset) or "")
    with pytest.raises(WeightsError, match="does not exist"):
        QwenImageEngine(missing, device="cpu")


def test_folder_without_model_index(tmp_path: Path) -> None:
    (tmp_path / "transformer").mkdir()
    assert "no model_index.json" in (check_weights(tmp_path) or "")
    with pytest.raises(WeightsError, match=r"model_index\.json"):
        QwenImageEngine(tmp_path, device="cpu")


def test_missing_component_folder(copy: Path) -> None:
    shutil.rmtree(copy / "vae")
    assert "missing component folder" in (check_weights(copy) or "")
    with pytest.raises(WeightsError, match="vae"):
        QwenImageEngine(copy, device="cpu")


def test_other_pipeline_class(copy: Path) -> None:
    index = json.loads((copy / "model_index.json").read_text())
    (copy / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    assert "FluxPipeline" in (check_weights(copy) or "")


def test_truncated_weights(copy: Path) -> None:
    file = copy / "vae" / "diffusion_pytorch_model.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    assert "truncated" in (check_weights(copy) or "")


def test_git_lfs_pointer_instead_of_weights(copy: Path) -> None:
    (copy / "transformer" / "diffusion_pytorch_model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
    )
    assert "Git LFS pointer" in (check_weights(copy) or "")


def test_missing_shard_listed_in_the_index(copy: Path) -> None:
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}
    (copy / "text_encoder" / "model.safetensors.index.json").write_text(json.dumps(index))
    assert "missing 1 of 1 shards" in (check_weights(copy) or "")


def test_broken_file_that_passes_the_check_fails_the_load_clearly(copy: Path) -> None:
    (copy / "transformer" / "config.json").write_text("{not json")
    assert check_weights(copy) is None  # the cheap check does not parse component configs...
    with pytest.raises(WeightsError, match="could not load Qwen-Image"):  # ...the loader says what went wrong
        QwenImageEngine(copy, device="cpu")


def test_lightning_needs_an_existing_lora(tiny_weights: Path, tmp_path: Path) -> None:
    import importlib.util

    options = QwenOptions(lightning_lora=tmp_path / "missing.safetensors")
    expected = "peft" if importlib.util.find_spec("peft") is None else "does not exist"
    with pytest.raises(WeightsError, match=expected):
        QwenImageEngine(tiny_weights, options, device="cpu")


def test_checking_and_importing_load_no_torch(tiny_weights: Path) -> None:
    code = (
        "import sys; from models.qwen_image import check_weights; "
        f"assert check_weights({str(tiny_weights)!r}) is None; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
