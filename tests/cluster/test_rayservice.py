"""cluster/rayservice.yaml against KubeRay's RayService CRD (vendored), as the API server would check it on apply."""

from __future__ import annotations

import copy
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import kube_schema

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "cluster/crds/ray.io_rayservices.yaml"
MANIFEST = ROOT / "cluster/rayservice.yaml"
# The README's switch for the shared folder, run as written.
RWX_SED = r"s/^( *)#rwx /\1/"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    # libyaml when there (1 MB of YAML: 1 s instead of 5), else the pure-Python loader; both are safe loaders.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return next(doc for doc in yaml.load_all(CRD_FILE.read_text(), Loader=loader) if doc)


@pytest.fixture
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def _with_shared_volume() -> dict[str, Any]:
    switched = subprocess.run(["sed", "-E", RWX_SED, str(MANIFEST)], capture_output=True, text=True, check=True)
    return yaml.safe_load(switched.stdout)


def _pod_specs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    pods.update({g["groupName"]: g["template"]["spec"] for g in cluster["workerGroupSpecs"]})
    return pods


def test_the_vendored_crd_is_upstreams_file_unchanged() -> None:
    header, _, body = CRD_FILE.read_text().partition("\n---\n")
    assert "KubeRay v1.7.0" in header and "github.com/ray-project/kuberay/blob/v1.7.0/" in header
    assert hashlib.sha256(("---\n" + body).encode()).hexdigest() in header


def test_the_rayservice_is_valid_against_the_crd(crd: dict[str, Any], manifest: dict[str, Any]) -> None:
    assert kube_schema.errors(crd, manifest) == []


def test_with_the_shared_volume_switched_on_it_is_still_valid_and_every_pod_mounts_it(crd: dict[str, Any]) -> None:
    switched = _with_shared_volume()
    assert kube_schema.errors(crd, switched) == []
    for group, pod in _pod_specs(switched).items():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert volumes["images"]["persistentVolumeClaim"]["claimName"] == "cascade-generated-images", group
        for container in pod["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            assert mounts["images"] == "/data/generated_images", group
            assert set(mounts) <= set(volumes), f"{group}: a mount names a volume the pod lacks"


def test_by_default_no_pod_needs_a_shared_volume(manifest: dict[str, Any]) -> None:
    for group, pod in _pod_specs(manifest).items():
        assert "images" not in {v["name"] for v in pod.get("volumes", [])}, group
        for container in pod["containers"]:
            assert "images" not in {m["name"] for m in container.get("volumeMounts", [])}, group


def test_every_ray_container_takes_the_optional_cascade_secrets(manifest: dict[str, Any]) -> None:
    for group, pod in _pod_specs(manifest).items():
        for container in pod["containers"]:
            refs = [e["secretRef"] for e in container.get("envFrom", []) if "secretRef" in e]
            assert refs == [{"name": "cascade-secrets", "optional": True}], group
            # Settings come from the Secret only: no literal value that could be a credential in git.
            assert not [e for e in container.get("env", []) if "value" in e], group


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            obj = obj[int(part)] if part.isdigit() else obj[part]
        if value is _DELETE:
            del obj[last]
        else:
            obj[last] = value

    return mutate


_DELETE = object()
_CPU = "spec.rayClusterConfig.workerGroupSpecs.0"
_HEAD_CONTAINER = "spec.rayClusterConfig.headGroupSpec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set(f"{_CPU}.maxReplicas", "4"), "workerGroupSpecs[0].maxReplicas: '4' is not of type 'integer'"),
        (_set(f"{_CPU}.minReplicas", 2**31), "workerGroupSpecs[0].minReplicas: 2147483648 is not a 'int32'"),
        (_set(f"{_CPU}.groupName", _DELETE), "workerGroupSpecs[0]: 'groupName' is a required property"),
        (_set(f"{_CPU}.rayStartParam", {}), "'rayStartParam' was unexpected"),
        (_set(f"{_CPU}.rayStartParams", {"num-cpus": 8}), "rayStartParams.num-cpus: 8 is not of type 'string'"),
        (_set(f"{_HEAD_CONTAINER}.resources.limits.memory", "8GB"), "resources.limits.memory: '8GB' does not match"),
        (_set(f"{_HEAD_CONTAINER}.ports.1.containerPort", 6379), "ports: duplicate entry for key"),
        (_set("spec.serveConfigV2", {"applications": []}), "spec.serveConfigV2: {'applications': []} is not of type"),
        (_set("spec.rayClusterConfig.headGroupSpec", _DELETE), "rayClusterConfig: 'headGroupSpec' is a required"),
        (_set("metadata.name", "Cascade_1"), "metadata.name: 'Cascade_1' does not match"),
        (_set("kind", "RayCluster"), "kind: 'RayCluster' is not one of ['RayService']"),
    ],
)
def test_a_broken_manifest_is_refused_with_the_field_named(
    crd: dict[str, Any], manifest: dict[str, Any], mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    broken = copy.deepcopy(manifest)
    mutate(broken)
    found = kube_schema.errors(crd, broken)
    assert any(expected in e for e in found), found


def test_an_integer_or_string_quantity_is_accepted_either_way(crd: dict[str, Any], manifest: dict[str, Any]) -> None:
    limits = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]
    limits["limits"]["cpu"] = 2
    limits["requests"]["cpu"] = "2000m"
    assert kube_schema.errors(crd, manifest) == []


def test_structural_schema_rules_beyond_json_schema() -> None:
    node = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "maybe": {"type": "string", "nullable": True},
            "port": {"x-kubernetes-int-or-string": True},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        },
    }
    validator = kube_schema.KubeValidator(kube_schema.to_json_schema(node))
    assert not list(validator.iter_errors({"free": {"any": 1}, "maybe": None, "port": "http", "tags": ["a", "b"]}))
    assert not list(validator.iter_errors({"port": 8080}))
    messages = [e.message for e in validator.iter_errors({"extra": 1, "port": 1.5, "tags": ["a", "a"]})]
    assert len(messages) == 3 and any("duplicate item 'a'" in m for m in messages)
    with pytest.raises(ValueError, match=r"\.port: schema keyword\(s\) \['x-kubernetes-embedded-resource'\]"):
        kube_schema.to_json_schema({"properties": {"port": {"x-kubernetes-embedded-resource": True}}})
