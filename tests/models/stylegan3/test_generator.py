"""Generator semantics: the release's seeds, truncation, labels, transforms, batching, and fast ≈ reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.stylegan3.engine import SampleSpec, StyleGAN3Engine
from models.stylegan3.generator import Generator
from models.stylegan3.layers import RunMode
from models.stylegan3.sampling import input_transform, make_transform, parse_seeds, z_from_seed
from models.stylegan3.testing import tiny_generator


def _engine(g: Generator, fast: bool) -> StyleGAN3Engine:
    return StyleGAN3Engine.from_generator(g, device="cpu", fast=fast)


@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 - 1])
def test_seed_gives_the_release_latent(seed: int, tiny_g: Generator) -> None:
    expected = np.random.RandomState(seed).randn(1, tiny_g.z_dim)
    np.testing.assert_array_equal(z_from_seed(seed, tiny_g.z_dim), expected[0])
    z = _engine(tiny_g, fast=False).inputs([SampleSpec(seed=seed)])["z"]
    torch.testing.assert_close(z, torch.from_numpy(expected).float(), rtol=0, atol=0)


def test_seed_parsing() -> None:
    assert parse_seeds("0,1,5-8") == [0, 1, 5, 6, 7, 8]
    assert parse_seeds("3") == [3]
    for bad in ("", "a", "5-2", "-1", str(2**32)):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_psi_zero_draws_the_average_image_for_every_seed(tiny_g: Generator) -> None:
    engine = _engine(tiny_g, fast=False)
    images = engine.generate_tensor([SampleSpec(seed=s, psi=0.0) for s in range(4)])
    for img in images[1:]:
        torch.testing.assert_close(img, images[0], rtol=0, atol=1e-6)
    with torch.no_grad():
        w_avg_image = tiny_g.synthesis(tiny_g.mapping.w_avg.reshape(1, 1, -1).repeat(1, tiny_g.num_ws, 1))
    torch.testing.assert_close(images[:1], w_avg_image, rtol=0, atol=1e-5)
    # ...while psi=1 gives different images per seed.
    varied = engine.generate_tensor([SampleSpec(seed=s) for s in range(2)])
    assert (varied[0] - varied[1]).abs().max() > 1e-3


def test_class_label_changes_the_output(tiny_cond_g: Generator) -> None:
    engine = _engine(tiny_cond_g, fast=False)
    images = engine.generate_tensor([SampleSpec(seed=5, class_idx=k) for k in range(4)])
    for k in range(1, 4):
        assert (images[k] - images[0]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="conditional"):
        engine.generate_batch([SampleSpec(seed=5)])
    with pytest.raises(ValueError, match="class must be in"):
        engine.generate_batch([SampleSpec(seed=5, class_idx=4)])


MIXED = [
    SampleSpec(seed=0, psi=1.0, class_idx=0),
    SampleSpec(seed=1, psi=0.5, class_idx=3, translate=(0.1, -0.05)),
    SampleSpec(seed=2, psi=0.7, class_idx=1, rotate_deg=30.0),
    SampleSpec(seed=3, psi=-0.3, class_idx=2, translate=(-0.2, 0.0), rotate_deg=-90.0),
]


@pytest.mark.parametrize("fast", [False, True])
def test_batch_equals_single_calls(tiny_cond_g: Generator, fast: bool) -> None:
    engine = _engine(tiny_cond_g, fast=fast)
    batch = engine.generate_tensor(MIXED)
    singles = torch.cat([engine.generate_tensor([spec]) for spec in MIXED])
    torch.testing.assert_close(batch, singles, rtol=1e-5, atol=1e-6)
    chunked = StyleGAN3Engine.from_generator(tiny_cond_g, device="cpu", fast=fast, max_batch=3).generate_tensor(MIXED)
    torch.testing.assert_close(chunked, batch, rtol=1e-5, atol=1e-6)


def test_per_sample_transform_equals_the_buffer(tiny_g: Generator) -> None:
    g = tiny_generator(seed=1)  # a private copy: the buffer is modified below
    z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
    m = torch.from_numpy(input_transform((0.1, 0.2), 15.0)).float()
    with torch.no_grad():
        per_sample = g(z, transforms=torch.stack([m, torch.eye(3)]))
        g.synthesis.input.transform.copy_(m)
        via_buffer = g(z)
    torch.testing.assert_close(per_sample[:1], via_buffer[:1])
    assert (per_sample[1] - via_buffer[1]).abs().max() > 1e-3


def test_transform_is_the_inverse_of_the_user_matrix() -> None:
    m = make_transform((0.25, -0.5), 30.0)
    np.testing.assert_allclose(
        m[:2, :2], [[np.cos(np.pi / 6), np.sin(np.pi / 6)], [-np.sin(np.pi / 6), np.cos(np.pi / 6)]]
    )
    np.testing.assert_allclose(input_transform((0.25, -0.5), 30.0) @ m, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_fast_path_matches_reference(cfg: str) -> None:
    g = tiny_generator(cfg=cfg, resolution=32, c_dim=2, seed=4)
    z = torch.randn(3, g.z_dim, generator=torch.Generator().manual_seed(1))
    c = torch.eye(2)[[0, 1, 1]]
    transforms = torch.from_numpy(np.stack([input_transform((0.03 * i, 0.0), 10.0 * i) for i in range(3)])).float()
    with torch.no_grad():
        ref = g.set_mode(RunMode(fast=False))(z, c, 0.7, transforms=transforms)
        fast = g.set_mode(RunMode(fast=True))(z, c, 0.7, transforms=transforms)
    assert ref.shape == (3, 3, 32, 32)
    assert ref.abs().max() > 1e-2  # not a degenerate comparison
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch", [1, 2])  # the fast modulated conv has a one-sample and a batched form
def test_reduced_precision_path_stays_close(dtype: torch.dtype, batch: int) -> None:
    """The fp16/bf16 path (CUDA-only in service) exercised on CPU: same picture within half-precision rounding."""
    g = tiny_generator(resolution=32, seed=5)
    z = torch.randn(batch, g.z_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = g.set_mode(RunMode())(z)
        half = g.set_mode(RunMode(fast=True, half_dtype=dtype, half_on_cpu=True))(z)
    assert half.dtype == torch.float32
    assert any(layer.use_fp16 for layer in g.layers)
    snr = 10 * torch.log10(ref.var() / (half - ref).square().mean())
    assert 25 < snr < 80  # close, but really computed in reduced precision (not silently fp32)
    # On CPU without the testing flag, reduced precision is not used at all.
    same = g.set_mode(RunMode(fast=True, half_dtype=torch.bfloat16))(z)
    torch.testing.assert_close(same, g.set_mode(RunMode(fast=True))(z))


def test_truncation_cutoff_only_touches_early_layers(tiny_g: Generator) -> None:
    z = torch.randn(1, tiny_g.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ws_full = tiny_g.mapping(z, None, truncation_psi=0.5)
        ws_cut = tiny_g.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
        ws_none = tiny_g.mapping(z, None)
    torch.testing.assert_close(ws_cut[:, :4], ws_full[:, :4])
    torch.testing.assert_close(ws_cut[:, 4:], ws_none[:, 4:])
