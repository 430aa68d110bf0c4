"""cluster/Dockerfile in step with pyproject.toml and the cluster configs (no Docker engine here to build it)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (the image runs 3.11)")

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = PurePosixPath("/home/ray/cascade")


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "cluster/Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _copied() -> dict[PurePosixPath, str]:
    """Path in the image -> source in the repository, for every COPY."""
    out: dict[PurePosixPath, str] = {}
    for op, args in _instructions():
        if op != "COPY":
            continue
        *sources, dest = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            target = WORKDIR / dest
            out[target / PurePosixPath(source).name if dest.endswith("/") else target] = source
    return out


def test_the_image_has_the_pinned_ray_and_a_python_the_project_supports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (ray_pin,) = [d for d in project["dependencies"] if d.startswith("ray[")]
    base = next(args for op, args in _instructions() if op == "FROM")
    match = re.fullmatch(r"rayproject/ray:(?P<ray>[\d.]+)-py(?P<major>3)(?P<minor>\d+)-gpu", base)
    assert match, base
    assert ray_pin.endswith(f"=={match['ray']}"), (ray_pin, base)
    service = yaml.safe_load((ROOT / "cluster/rayservice.yaml").read_text())
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == match["ray"]
    assert f"{match['major']}.{match['minor']}" in SpecifierSet(project["requires-python"])


def test_the_image_installs_the_project_with_every_runtime_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runs = " ".join(args for op, args in _instructions() if op == "RUN")
    match = re.search(r"pip install .*-e \"\.\[(?P<extras>[^\]]*)\]\"", runs)
    assert match, runs
    # dev and mutation are a developer's tools, not the service's.
    wanted = set(project["project"]["optional-dependencies"]) - {"dev", "mutation"}
    assert set(match["extras"].split(",")) == wanted


def test_every_package_and_file_the_cluster_needs_is_copied_in() -> None:
    copied = _copied()
    assert all((ROOT / source).exists() for source in copied.values()), copied
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in packages["include"]:
        assert WORKDIR / pattern.rstrip("*") in copied, pattern
    launcher = (ROOT / "cluster/ray-cluster.yaml").read_text()
    for used in set(re.findall(rf"{WORKDIR}/[\w./-]+", launcher)):
        assert PurePosixPath(used) in copied, f"{used} is not in the image"
    assert WORKDIR / "serve_config.gpu.yaml" in copied and WORKDIR / "pyproject.toml" in copied
