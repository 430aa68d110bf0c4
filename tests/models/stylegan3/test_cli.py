"""Command lines: gen_images (the release's options) and the seed's JSON script protocol."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models.seeds import stable_seed
from models.stylegan3.engine import SampleSpec, StyleGAN3Engine

ROOT = Path(__file__).resolve().parents[3]


def _run(args: list[str], stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    if "STYLEGAN3_NETWORK" not in env:  # the caller's environment must not supply a network by accident
        full_env.pop("STYLEGAN3_NETWORK", None)
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=full_env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_gen_images_writes_release_named_pngs(tmp_path: Path, tiny_pkl: Path) -> None:
    out = tmp_path / "out"
    proc = _run(
        [
            "models.stylegan3.gen_images",
            "--network",
            str(tiny_pkl),
            "--seeds",
            "0-1",
            "--trunc",
            "0.7",
            "--translate",
            "0.1,0",
            "--rotate",
            "5",
            "--device",
            "cpu",
            "--outdir",
            str(out),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png"]
    engine = StyleGAN3Engine(tiny_pkl, device="cpu")
    expected = engine.generate_batch([SampleSpec(s, 0.7, None, (0.1, 0.0), 5.0) for s in (0, 1)])
    for seed, want in zip((0, 1), expected, strict=True):
        img = np.asarray(Image.open(out / f"seed{seed:04d}.png"))
        assert img.shape == (16, 16, 3)
        np.testing.assert_array_equal(img, want)


def test_gen_images_needs_a_class_for_conditional_networks(tmp_path: Path, tiny_cond_pkl: Path) -> None:
    base = ["models.stylegan3.gen_images", "--network", str(tiny_cond_pkl), "--seeds", "3", "--outdir", str(tmp_path)]
    proc = _run(base)
    assert proc.returncode == 2 and "--class is required" in proc.stderr
    assert _run([*base, "--class", "1"]).returncode == 0
    assert (tmp_path / "seed0003.png").is_file()


def _decode(response: dict[str, Any]) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert response["dataUri"].startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(response["dataUri"][len(prefix) :])))


def test_script_protocol_returns_the_requested_size(tiny_pkl: Path) -> None:
    request = {"prompt": "a lighthouse at dusk", "size": "40x24", "network": str(tiny_pkl), "trunc": 0.7}
    proc = _run(["models.stylegan3"], json.dumps(request), STYLEGAN3_DEVICE="cpu")
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    assert _decode(response).size == (40, 24)
    assert response["seed"] == stable_seed("a lighthouse at dusk")
    assert response["native_size"] == [16, 16]

    # Network from the environment, explicit seed; the same request gives the same image.
    request = {"prompt": "x", "size": "17x33", "seed": 12}
    first = _run(["models.stylegan3"], json.dumps(request), STYLEGAN3_NETWORK=str(tiny_pkl), STYLEGAN3_DEVICE="cpu")
    again = _run(["models.stylegan3"], json.dumps(request), STYLEGAN3_NETWORK=str(tiny_pkl), STYLEGAN3_DEVICE="cpu")
    assert first.returncode == 0, first.stderr
    img = _decode(json.loads(first.stdout))
    assert img.size == (17, 33) and json.loads(first.stdout)["seed"] == 12
    assert json.loads(first.stdout)["dataUri"] == json.loads(again.stdout)["dataUri"]


def test_script_protocol_reports_bad_requests(tiny_pkl: Path) -> None:
    proc = _run(["models.stylegan3"], json.dumps({"prompt": "x", "size": "big", "network": str(tiny_pkl)}))
    assert proc.returncode == 2
    assert "size" in json.loads(proc.stdout)["error"]
    proc = _run(["models.stylegan3"], json.dumps({"prompt": "x", "size": "64x64"}))
    assert proc.returncode == 2
    assert "STYLEGAN3_NETWORK" in json.loads(proc.stdout)["error"]


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, what its one-line error must say)."""
    from models.stylegan3.release_others import stylegan2_generator
    from models.stylegan3.release_pickle import snapshot, write
    from tests.models.stylegan3.hostile import dict_key_of_nested_tuples

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    nested = tmp_path / "nested.pkl"
    nested.write_bytes(dict_key_of_nested_tuples())
    sg2 = tmp_path / "sg2.pkl"
    write(sg2, snapshot(stylegan2_generator()))
    return {
        "code": (evil, "refused global os.system"),
        "nested": (nested, "nesting deeper than 64"),
        "stylegan2": (sg2, "G_ema is a StyleGAN2 generator"),
        "missing": (tmp_path / "nope.pkl", "No such file or directory"),
    }


@pytest.mark.parametrize(
    ("command", "bad"),
    [("gen_images", "code"), ("gen_images", "missing"), ("export", "stylegan2"), ("script", "nested")],
)
def test_bad_network_files_exit_2_with_one_line(tmp_path: Path, command: str, bad: str) -> None:
    path, message = _bad_files(tmp_path)[bad]
    if command == "script":
        proc = _run(["models.stylegan3"], json.dumps({"prompt": "x", "size": "64x64", "network": str(path)}))
        assert proc.returncode == 2 and message in json.loads(proc.stdout)["error"], proc.stdout
        assert "Traceback" not in proc.stderr
        return
    args = {
        "gen_images": ["--seeds", "0", "--outdir", str(tmp_path / "out")],
        "export": ["--out", str(tmp_path / "exported")],
    }[command]
    proc = _run([f"models.stylegan3.{command}", "--network", str(path), *args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines
