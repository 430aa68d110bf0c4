"""The builder and the shipped configs: what gets deployed where, and configs that cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cascade.config import ClusterInfo
from deployments.app import PROJECT_ROOT, AppArgs, plan, warn_unshared_limits

KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "FAL_KEY", "FAL_API_KEY")


def _args(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["applications"][0]["args"]


@pytest.fixture(autouse=True)
def _no_keys_or_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*KEYS, "STYLEGAN3_NETWORK", "QWEN_IMAGE_PATH"):
        monkeypatch.delenv(name, raising=False)


def test_the_embedded_default_runs_on_a_cpu_laptop_with_no_weights_and_no_keys() -> None:
    args = AppArgs.model_validate(_args(PROJECT_ROOT / "serve_config.yaml"))
    assert args.order == ["stylegan3", "qwen_image", "pillow", "remote", "svg"]
    deployed, left_out = plan(args, ClusterInfo(gpus=0, cpus=2))
    assert list(deployed) == ["pillow"]
    assert left_out["stylegan3"] == left_out["qwen_image"] == "needs 1 GPU, the cluster has 0"
    assert left_out["remote"].startswith("no provider key set")


def test_with_a_gpu_the_missing_weights_are_the_reason(tmp_path: Path) -> None:
    args = AppArgs.model_validate(_args(PROJECT_ROOT / "serve_config.yaml"))
    _, left_out = plan(args, ClusterInfo(gpus=1, cpus=8))
    assert "no network configured" in left_out["stylegan3"]
    assert "weights" in left_out["qwen_image"]


def test_a_key_in_the_environment_turns_remote_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-test-key-123")
    deployed, _ = plan(AppArgs(), ClusterInfo(gpus=0, cpus=2))
    assert "remote" in deployed


def test_the_gpu_variant_and_the_rayservice_carry_the_same_application() -> None:
    gpu = _args(PROJECT_ROOT / "serve_config.gpu.yaml")
    service = yaml.safe_load((PROJECT_ROOT / "cluster/rayservice.yaml").read_text())
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert embedded["applications"][0]["args"] == gpu, "run: python cluster/sync_rayservice.py"
    args = AppArgs.model_validate(gpu)
    deployed, left_out = plan(args, ClusterInfo(gpus=0, cpus=8))
    # enabled: true, because GPU nodes may be scaled to zero when the app is built.
    assert {"stylegan3", "qwen_image", "remote", "pillow"} == set(deployed) and not left_out
    groups = {g["groupName"]: g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"order": ["pillow", "dalle"]},
        {"order": ["pillow", "pillow"]},
        {"backends": {"pillow": {"timeout_s": 0}}},
        {"backends": {"pillow": {"enabled": "sometimes"}}},
        {"backends": {"pillow": {"colour": "blue"}}},
        {"limits": {"max_side": 0}},
        {"storage": {"url": "gs://bucket/images"}},
        {"storage": {"url": "s3://"}},
        {"storage": {"database_url": "mysql://u:p@h/db"}},
        {"storage": {"timeout_s": 60, "sweep_grace_s": 120}},
        {"gateway": {"max_replicas_per_node": 0}},
        {"access": {"auth": "maybe"}},
        {"access": {"limits": {"backend_caps": {"qwen_image": 0}}}},
    ],
)
def test_bad_config_is_refused_at_load(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AppArgs.model_validate(bad)


def test_storage_comes_from_config_else_the_replica_environment_else_the_embedded_folder(tmp_path: Path) -> None:
    from cascade.images.service import resolve_urls

    args = AppArgs.model_validate(
        {"storage": {"url": "s3://images/prod", "database_url": "postgresql://u:p@db.example/x?sslmode=require"}}
    )
    env = {"CASCADE_STORAGE_URL": "s3://env/images", "CASCADE_DATABASE_URL": "postgresql://env/db"}
    folder = tmp_path / "generated_images"
    assert resolve_urls(args.storage, folder, env) == ("s3://images/prod", args.storage.database_url)
    assert resolve_urls(AppArgs().storage, folder, env) == ("s3://env/images", "postgresql://env/db")
    assert resolve_urls(AppArgs().storage, folder, {}) == (str(folder), f"sqlite:///{folder}/cascade.sqlite3")


def _serve_config(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_the_embedded_default_may_run_without_keys_because_it_binds_loopback_and_the_gpu_config_requires_keys() -> None:
    embedded = _serve_config(PROJECT_ROOT / "serve_config.yaml")
    args = AppArgs.model_validate(embedded["applications"][0]["args"])
    assert args.access.auth == "off"
    args.access.check_host(embedded["http_options"]["host"])
    assert warn_unshared_limits(args, {}) is None  # no limits configured: nothing to multiply
    gpu = _serve_config(PROJECT_ROOT / "serve_config.gpu.yaml")
    gpu_args = AppArgs.model_validate(gpu["applications"][0]["args"])
    assert gpu["http_options"]["host"] == "0.0.0.0" and gpu_args.access.auth == "required"
    gpu_args.access.check_host("0.0.0.0")
    with pytest.raises(ValueError, match="not loopback"):
        args.access.check_host(gpu["http_options"]["host"])


def test_the_builder_warns_when_several_gateway_replicas_would_each_keep_their_own_limits() -> None:
    gpu = AppArgs.model_validate(_args(PROJECT_ROOT / "serve_config.gpu.yaml"))
    warning = warn_unshared_limits(gpu, {})
    assert warning is not None and "4 replicas" in warning and "CASCADE_REDIS_URL" in warning
    assert warn_unshared_limits(gpu, {"CASCADE_REDIS_URL": "redis://redis:6379/0"}) is None
    one = AppArgs.model_validate({"access": {"auth": "required"}, "gateway": {"num_replicas": 1}})
    assert warn_unshared_limits(one, {}) is None
