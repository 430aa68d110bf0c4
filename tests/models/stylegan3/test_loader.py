"""Release-layout pickles load into our generator; our safetensors format and the export command round-trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.stylegan3.generator import Generator
from models.stylegan3.layers import RunMode
from models.stylegan3.loader import (
    NetworkFormatError,
    generator_from_stub,
    load_network,
    load_nvidia_pickle,
    read_network_pickle,
)
from models.stylegan3.ours import load_ours, save_ours

ROOT = Path(__file__).resolve().parents[3]


def _inputs(g: Generator, n: int = 3) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(n, g.z_dim, generator=gen)
    c = torch.eye(g.c_dim)[torch.arange(n) % g.c_dim] if g.c_dim else None
    return z, c


def _render(g: Generator, n: int = 3) -> torch.Tensor:
    z, c = _inputs(g, n)
    g.set_mode(RunMode())  # session fixtures are shared with tests that switch modes
    with torch.no_grad():
        return g(z, c, truncation_psi=0.8)


def test_pickle_loads_g_ema_with_identical_outputs(tiny_pkl: Path, tiny_g: Generator) -> None:
    loaded = load_nvidia_pickle(tiny_pkl)
    assert loaded.init_kwargs == tiny_g.init_kwargs
    assert torch.equal(_render(loaded), _render(tiny_g))
    decoy = load_nvidia_pickle(tiny_pkl, key="G")
    assert not torch.allclose(_render(decoy), _render(loaded))


def test_conditional_protocol3_pickle(tiny_cond_pkl: Path, tiny_cond_g: Generator) -> None:
    loaded = load_network(tiny_cond_pkl, device="cpu")
    assert loaded.c_dim == 4
    assert torch.equal(_render(loaded, 4), _render(tiny_cond_g, 4))


def test_pickle_layout_has_the_release_structure(tiny_pkl: Path) -> None:
    data = read_network_pickle(tiny_pkl)
    assert set(data) == {"G", "D", "G_ema", "training_set_kwargs", "augment_pipe"}
    g = data["G_ema"]
    assert g.class_name == "training.networks_stylegan3.Generator"
    assert g.init_kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert type(g.init_kwargs["mapping_kwargs"]).__name__ == "EasyDict"
    synthesis = g.state["_modules"]["synthesis"]
    assert synthesis.class_name == "training.networks_stylegan3.SynthesisNetwork"
    names = set(synthesis.state["_modules"])
    assert "input" in names and "L14_16_3" in names
    torgb = synthesis.state["_modules"]["L14_16_3"].state
    assert torgb["_buffers"]["up_filter"] is None  # single-tap filters are stored as None, as in the release
    # Nothing was imported under the release's module names while reading.
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules


def test_ours_round_trip_is_exact(tmp_path: Path, tiny_pkl: Path) -> None:
    from_pickle = load_nvidia_pickle(tiny_pkl)
    folder = save_ours(from_pickle, tmp_path / "net")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    for path in (folder, folder / "model.safetensors"):  # a lone .safetensors file carries its config too
        again = load_ours(path)
        assert torch.equal(_render(again), _render(from_pickle))


def test_export_command_round_trip(tmp_path: Path, tiny_cond_pkl: Path, tiny_cond_g: Generator) -> None:
    out = tmp_path / "exported"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "models.stylegan3.export", "--network", str(tiny_cond_pkl), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = load_network(out, device="cpu")
    assert torch.equal(_render(loaded, 4), _render(tiny_cond_g, 4))


def test_strict_names(tiny_pkl: Path) -> None:
    stub = read_network_pickle(tiny_pkl)["G_ema"]
    mapping = stub.state["_modules"]["mapping"]
    fc0 = mapping.state["_modules"]["fc0"]
    weight = fc0.state["_parameters"].pop("weight")
    with pytest.raises(NetworkFormatError, match=r"missing: mapping\.fc0\.weight"):
        generator_from_stub(stub)
    fc0.state["_parameters"]["weight"] = weight
    fc0.state["_parameters"]["extra"] = torch.zeros(1)
    with pytest.raises(NetworkFormatError, match=r"unexpected: mapping\.fc0\.extra"):
        generator_from_stub(stub)
    del fc0.state["_parameters"]["extra"]
    fc0.state["_parameters"]["weight"] = weight[:, :-1]
    with pytest.raises(NetworkFormatError, match=r"shape mismatch: mapping\.fc0\.weight"):
        generator_from_stub(stub)


def test_refuses_other_networks_and_suffixes(tmp_path: Path, tiny_pkl: Path) -> None:
    with pytest.raises(NetworkFormatError, match="not a StyleGAN3 generator"):
        load_nvidia_pickle(tiny_pkl, key="D")
    with pytest.raises(NetworkFormatError, match="no 'G_missing'"):
        load_nvidia_pickle(tiny_pkl, key="G_missing")
    odd = tmp_path / "net.bin"
    odd.write_bytes(b"")
    with pytest.raises(NetworkFormatError, match=r"expected a \.pkl"):
        load_network(odd)


def test_unknown_generator_option_is_reported(tiny_pkl: Path) -> None:
    stub = read_network_pickle(tiny_pkl)["G_ema"]
    stub.state["_init_kwargs"]["fancy_new_option"] = 1
    with pytest.raises(NetworkFormatError, match="fancy_new_option"):
        generator_from_stub(stub)
