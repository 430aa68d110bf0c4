"""The engine the deployment calls: uint8 output, PNG rendering to any size, health, warm-up."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.imaging import fit_cover
from models.stylegan3.engine import SampleSpec, StyleGAN3Engine, to_pil
from models.stylegan3.sampling import to_uint8
from models.stylegan3.testing import tiny_generator


@pytest.fixture(scope="module")
def engine(tiny_pkl: Path) -> StyleGAN3Engine:
    return StyleGAN3Engine(tiny_pkl, device="cpu")


def test_sample_spec_is_frozen() -> None:
    spec = SampleSpec(seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 2  # type: ignore[misc]


def test_generate_batch_gives_uint8_hwc(engine: StyleGAN3Engine) -> None:
    images = engine.generate_batch([SampleSpec(seed=s, psi=0.7) for s in range(3)])
    assert len(images) == 3
    for img in images:
        assert img.dtype == np.uint8 and img.shape == (16, 16, 3)
    assert engine.native_size == (16, 16)


def test_uint8_conversion_follows_the_release() -> None:
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0]).reshape(1, 1, 1, 6)
    np.testing.assert_array_equal(to_uint8(x)[0, 0, :, 0], [0, 0, 128, 191, 255, 255])


@pytest.mark.parametrize("size", [(64, 64), (40, 24), (7, 50)])
def test_render_png_exact_size(engine: StyleGAN3Engine, size: tuple[int, int]) -> None:
    png = engine.render_png(SampleSpec(seed=3), *size)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == size


def test_fit_cover_crops_centrally() -> None:
    # Left half black, right half white: a tall crop keeps the centre, so both colours remain.
    img = np.zeros([16, 16, 3], dtype=np.uint8)
    img[:, 8:] = 255
    out = np.asarray(fit_cover(to_pil(img), 4, 16))
    assert out.shape == (16, 4, 3)
    assert out[:, 0].mean() < 60 and out[:, -1].mean() > 200


def test_health_and_warm_up(engine: StyleGAN3Engine) -> None:
    assert engine.warm_up((1, 2)) > 0
    health = engine.health()
    assert health["ok"] is True and health["error"] is None
    assert health["device"] == "cpu" and health["native_size"] == [16, 16]


def test_health_reports_a_broken_network() -> None:
    g = tiny_generator(seed=8)
    with torch.no_grad():
        g.synthesis.input.weight.fill_(float("nan"))
    health = StyleGAN3Engine.from_generator(g, device="cpu").health()
    assert health["ok"] is False and "non-finite" in health["error"]


def test_bad_specs_are_rejected(engine: StyleGAN3Engine) -> None:
    for bad in (
        SampleSpec(seed=-1),
        SampleSpec(seed=2**32),
        SampleSpec(seed=0, psi=float("nan")),
        SampleSpec(seed=0, translate=(float("inf"), 0.0)),
    ):
        with pytest.raises(ValueError):
            engine.generate_batch([bad])
    with pytest.raises(ValueError, match="empty"):
        engine.generate_batch([])
