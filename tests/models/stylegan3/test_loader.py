"""Release-layout pickles load into our generator and draw the same pixels; other architectures are refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.stylegan3.errors import NetworkFormatError, UnsafePickleError
from models.stylegan3.generator import Generator
from models.stylegan3.layers import RunMode
from models.stylegan3.loader import generator_from_stub, load_network, load_nvidia_pickle, read_network_pickle
from models.stylegan3.ours import load_ours, save_ours
from models.stylegan3.release_others import stylegan2_generator, stylegan_xl_generator
from models.stylegan3.release_pickle import snapshot, write
from models.stylegan3.release_tree import release_generator
from models.stylegan3.testing import tiny_generator, write_network_pickle

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


def test_conditional_numpy2_protocol3_pickle(tiny_cond_pkl: Path, tiny_cond_g: Generator) -> None:
    loaded = load_network(tiny_cond_pkl, device="cpu")
    assert loaded.c_dim == 4
    assert torch.equal(_render(loaded, 4), _render(tiny_cond_g, 4))


@pytest.mark.parametrize(
    ("cfg", "c_dim", "protocol", "numpy_layout"),
    [("t", 0, 2, "numpy1"), ("r", 0, 4, "numpy2"), ("r", 3, 5, "numpy1"), ("t", 2, 4, "numpy2")],
)
def test_every_layout_reproduces_the_pixels(
    tmp_path: Path, cfg: str, c_dim: int, protocol: int, numpy_layout: str
) -> None:
    g = tiny_generator(cfg, c_dim=c_dim, seed=5)
    path = tmp_path / "net.pkl"
    write_network_pickle(path, g, protocol=protocol, numpy_layout=numpy_layout)  # type: ignore[arg-type]
    raw = path.read_bytes()
    assert (b"numpy.core.multiarray" in raw) == (numpy_layout == "numpy1")
    assert (b"numpy._core.multiarray" in raw) == (numpy_layout == "numpy2")
    loaded = load_network(path, device="cpu")
    assert torch.equal(_render(loaded, 3), _render(g, 3))
    # ... and again through our own format: both load paths draw the same pixels.
    again = load_ours(save_ours(loaded, tmp_path / "ours"))
    assert torch.equal(_render(again, 3), _render(g, 3))


def test_bare_class_names_as_the_release_writes_them(tiny_pkl: Path) -> None:
    """The test that would have caught the qualified-name gate: the release records `orig_class.__name__`."""
    raw = tiny_pkl.read_bytes()
    for name in (b"Generator", b"MappingNetwork", b"SynthesisNetwork", b"SynthesisInput", b"SynthesisLayer"):
        assert b"\x8c" + bytes([len(name)]) + name in raw  # SHORT_BINUNICODE: the bare name as a string value
    assert b"training.networks_stylegan3" not in raw and b"training.networks_stylegan2" not in raw
    assert b"torch_utils.persistence" in raw and b"_reconstruct_persistent_obj" in raw
    assert isinstance(load_nvidia_pickle(tiny_pkl), Generator)


def test_pickle_layout_has_the_release_structure(tiny_pkl: Path) -> None:
    data = read_network_pickle(tiny_pkl)
    assert list(data) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    g = data["G_ema"]
    assert g.class_name == "Generator" and g.version == 6
    assert g.init_kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert type(g.init_kwargs["mapping_kwargs"]).__name__ == "EasyDict"
    assert list(g.init_kwargs)[:3] == ["z_dim", "w_dim", "mapping_kwargs"]
    assert list(g.init_kwargs)[-3:] == ["c_dim", "img_resolution", "img_channels"]
    synthesis = g.state["_modules"]["synthesis"]
    assert synthesis.class_name == "SynthesisNetwork"
    names = list(synthesis.state["_modules"])
    assert names[0] == "input" and names[-1] == "L14_16_3" and synthesis.state["layer_names"] == names[1:]
    layer = synthesis.state["_modules"]["L0_36_8"].state
    assert type(layer["in_cutoff"]).__name__ == "float64" and type(layer["use_fp16"]).__name__ == "bool"
    assert layer["in_size"].tolist() == [36, 36] and str(layer["in_size"].dtype) == "int64"
    torgb = synthesis.state["_modules"]["L14_16_3"].state
    assert torgb["_buffers"]["up_filter"] is None  # single-tap filters are stored as None, as in the release
    assert g.state["_modules"]["mapping"].state["embed"] is None  # unconditional: a plain attribute, not a module
    assert data["D"].class_name == "Discriminator" and data["augment_pipe"].class_name == "AugmentPipe"
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


def test_members_must_be_named(tiny_pkl: Path) -> None:
    stub = read_network_pickle(tiny_pkl)["G_ema"]
    stub.state["_modules"]["mapping"].state["_parameters"][3] = torch.zeros(1)
    with pytest.raises(NetworkFormatError, match=r"mapping\. has a member named '3', not a name"):
        generator_from_stub(stub)


def _snapshot_file(path: Path, g_ema: object) -> Path:
    write(path, snapshot(g_ema))  # type: ignore[arg-type]
    return path


def test_stylegan2_generator_is_refused_by_name(tmp_path: Path) -> None:
    path = _snapshot_file(tmp_path / "sg2.pkl", stylegan2_generator())
    with pytest.raises(NetworkFormatError, match=r"G_ema is a StyleGAN2 generator \(synthesis blocks b4…b16 of class"):
        load_network(path, device="cpu")


def test_stylegan_xl_generators_are_refused_by_name(tmp_path: Path, tiny_g: Generator) -> None:
    superres = _snapshot_file(tmp_path / "xl-superres.pkl", stylegan_xl_generator(release_generator(tiny_g), True))
    with pytest.raises(NetworkFormatError, match=r"StyleGAN-XL super-resolution generator \(SuperresGenerator\)"):
        load_network(superres, device="cpu")
    stem = _snapshot_file(tmp_path / "xl.pkl", stylegan_xl_generator(release_generator(tiny_g)))
    with pytest.raises(UnsafePickleError, match=r"refused global torch\.nn\.modules\.sparse\.Embedding.*StyleGAN-XL"):
        load_network(stem, device="cpu")


def test_other_keys_and_suffixes_are_refused(tmp_path: Path, tiny_pkl: Path) -> None:
    with pytest.raises(NetworkFormatError, match=r"tiny\.pkl: D is a Discriminator, not a generator"):
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


def test_options_larger_than_the_tensors_are_refused_before_building(tiny_pkl: Path) -> None:
    stub = read_network_pickle(tiny_pkl)["G_ema"]
    stub.state["_init_kwargs"] |= {"img_resolution": 4096, "channel_max": 4096, "channel_base": 1 << 22}
    with pytest.raises(NetworkFormatError, match=r"options describe \d+ weights, the file holds \d+"):
        generator_from_stub(stub)
