"""cluster/ray-cluster.yaml through the checks `ray up` runs before it touches a cloud, and its start commands run."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml

# What `ray up` runs first (ray.autoscaler._private.commands._bootstrap_config): defaults filled in, then the config
# validated against ray/autoscaler/ray-schema.json plus its own cross-field checks. Private, so pinned by the ray pin.
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "cluster/ray-cluster.yaml"
SCHEMA = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
RWX_SED = r"s/^( *)#rwx /\1/"
# Where cluster/Dockerfile puts the repository in the image.
IMAGE_ROOT = "/home/ray/cascade"


@pytest.fixture
def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def _ray_up_checks(config: dict[str, Any]) -> None:
    jsonschema.validate(config, json.loads(SCHEMA.read_text()))
    validate_config(prepare_config(copy.deepcopy(config)))


def test_the_launcher_config_passes_ray_ups_checks(config: dict[str, Any]) -> None:
    _ray_up_checks(config)
    assert "-v /mnt/shared/generated_images:/data/generated_images" not in config["docker"]["run_options"]


def test_with_the_shared_folder_switched_on_it_still_passes_and_mounts_it() -> None:
    switched = subprocess.run(["sed", "-E", RWX_SED, str(CONFIG)], capture_output=True, text=True, check=True)
    config = yaml.safe_load(switched.stdout)
    _ray_up_checks(config)
    assert "-v /mnt/shared/generated_images:/data/generated_images" in config["docker"]["run_options"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["available_node_types"]["gpu_worker"].update(max_workers="2"),
        lambda c: c.update(head_start_ray_command=c.pop("head_start_ray_commands")),
        lambda c: c["docker"].update(imagee=c["docker"].pop("image")),
        lambda c: c["available_node_types"]["cpu_worker"].pop("node_config"),
    ],
    ids=["max_workers as a string", "a misspelt key", "a misspelt docker key", "a node type without node_config"],
)
def test_a_broken_launcher_config_is_refused(config: dict[str, Any], mutate: Callable[[dict[str, Any]], Any]) -> None:
    mutate(config)
    with pytest.raises(jsonschema.ValidationError):
        _ray_up_checks(config)


def test_the_secrets_folder_is_synced_and_its_env_file_is_never_committed(config: dict[str, Any]) -> None:
    (local,) = config["file_mounts"].values()
    assert (ROOT / local / "cascade.env.example").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{local}/cascade.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, f"{local}/cascade.env must be git-ignored"


@pytest.mark.parametrize("node", ["head_start_ray_commands", "worker_start_ray_commands"])
def test_ray_start_gets_the_env_file_literally(config: dict[str, Any], tmp_path: Path, node: str) -> None:
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    (remote,) = config["file_mounts"]
    secrets = home / remote.removeprefix("~/")
    secrets.mkdir(parents=True)
    (secrets / "cascade.env").write_text(
        "# settings\n\nCASCADE_STORAGE_URL=s3://bucket/prefix\n"
        "CASCADE_DATABASE_URL=postgresql://u:p%40ss@db:5432/c?sslmode=require&x=$HOME\n"
        'bad-key=the-secret-value\nFAL_KEY="quoted" stays\r\n'
    )
    # A stand-in `ray` on PATH: records its arguments and the environment it was started with.
    bin_dir.mkdir()
    (bin_dir / "ray").write_text(
        '#!/usr/bin/env python3\nimport json, os, sys\nif sys.argv[1:2] == ["start"]:\n'
        f'    open({str(tmp_path / "ray.json")!r}, "w").write(json.dumps([sys.argv[1:], dict(os.environ)]))\n'
    )
    (bin_dir / "ray").chmod(0o755)
    env = {"HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}", "RAY_HEAD_IP": "10.0.0.1"}
    for command in config[node]:
        command = command.replace(f"{IMAGE_ROOT}/", f"{ROOT}/")
        done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "the-secret-value" not in done.stderr
    argv, seen = json.loads((tmp_path / "ray.json").read_text())
    assert seen["CASCADE_STORAGE_URL"] == "s3://bucket/prefix"
    assert seen["CASCADE_DATABASE_URL"] == "postgresql://u:p%40ss@db:5432/c?sslmode=require&x=$HOME"
    assert seen["FAL_KEY"] == '"quoted" stays'
    assert argv[:2] == (["start", "--head"] if node.startswith("head") else ["start", "--address=10.0.0.1:6379"])


def test_without_an_env_file_ray_still_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "cluster/with_env.sh"), str(tmp_path / "absent.env"), "echo", "started"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (0, "started\n")
