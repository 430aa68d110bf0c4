"""StyleGAN3 served through the gateway from a tiny network pickle in NVIDIA's layout, on a fake GPU: only for
prompts of its domain, and a bad network file is reported, never served."""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from ray import serve

from cascade.config import ClusterInfo
from deployments.app import AppArgs, build_app
from deployments.stylegan3 import StyleGAN3Args
from tests.fakes.backends import wait_running


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> str:
    from models.stylegan3.testing import tiny_generator, write_network_pickle

    # Named like the release's files, so `domain: auto` gives it the faces preset.
    path = tmp_path_factory.mktemp("sg3") / "tiny-stylegan3-t-ffhq-16x16.pkl"
    write_network_pickle(path, tiny_generator("t", resolution=16, c_dim=0, seed=1))
    return str(path)


@pytest.fixture(scope="module")
def served(serve_url: str, network: str, tmp_path_factory: pytest.TempPathFactory):
    args = AppArgs.model_validate(
        {
            "order": ["stylegan3", "svg"],
            "storage_dir": str(tmp_path_factory.mktemp("images")),
            "backends": {
                "stylegan3": {
                    "network": network,
                    "timeout_s": 30,
                    "max_batch_size": 8,
                    "batch_wait_timeout_s": 0.3,
                    "deployment": {
                        "num_replicas": 1,
                        "max_ongoing_requests": 16,
                        "ray_actor_options": {"num_gpus": 1, "num_cpus": 0.5},
                    },
                }
            },
        }
    )
    serve.run(build_app(args), name="sg3", route_prefix="/sg3", blocking=False)
    wait_running("sg3", timeout_s=120)
    yield f"{serve_url}/sg3"
    serve.delete("sg3")


def _pixels(data_uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def test_a_release_pickle_is_served_at_the_requested_size(served: str, network: str) -> None:
    from models.stylegan3.engine import SampleSpec, StyleGAN3Engine

    r = httpx.post(f"{served}/api/generate/image", json={"prompt": "a face", "size": "80x72", "seed": 5}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["backend"] == "stylegan3" and body["meta"]["native_size"] == "16x16"
    expected = StyleGAN3Engine(network, device="cpu").render_png(SampleSpec(seed=5, psi=0.7), 80, 72)
    assert np.array_equal(_pixels(body["dataUri"]), np.asarray(Image.open(io.BytesIO(expected))))


def test_concurrent_requests_are_batched(served: str) -> None:
    def post(seed: int) -> dict:
        req = {"prompt": "a face, batch", "size": "64x64", "seed": seed}
        return httpx.post(f"{served}/api/generate/image", json=req, timeout=60).json()

    with ThreadPoolExecutor(6) as pool:
        bodies = list(pool.map(post, range(6)))
    assert all(b["backend"] == "stylegan3" for b in bodies)
    assert max(b["meta"]["batch_size"] for b in bodies) > 1
    assert len({b["dataUri"] for b in bodies}) == 6  # each sample kept its own seed


def test_translate_and_rotate_move_the_picture(served: str) -> None:
    def pixels(**extra: object) -> np.ndarray:
        req = {"prompt": "a face", "size": "64x64", "seed": 9, **extra}
        return _pixels(httpx.post(f"{served}/api/generate/image", json=req, timeout=60).json()["dataUri"])

    still = pixels()
    assert np.array_equal(still, pixels())
    assert not np.array_equal(still, pixels(translate=[0.25, 0]))
    assert not np.array_equal(still, pixels(rotate=15))


def test_without_a_network_or_gpu_the_backend_is_left_out_with_the_reason(tmp_path) -> None:
    assert "no network configured" in (StyleGAN3Args().unavailable_reason(ClusterInfo(gpus=1, cpus=8)) or "")
    missing = StyleGAN3Args(network=str(tmp_path / "nope.pkl"))
    assert "not found" in (missing.unavailable_reason(ClusterInfo(gpus=1, cpus=8)) or "")
    assert "needs 1 GPU" in (missing.unavailable_reason(ClusterInfo(gpus=0, cpus=8)) or "")


def test_a_house_prompt_skips_the_face_network_at_once(served: str) -> None:
    house = {"prompt": "a red house by a lake", "size": "64x64", "seed": 3}
    body = httpx.post(f"{served}/api/generate/image", json=house, timeout=60).json()
    assert body["backend"] == "svg"
    first = body["attempts"][0]
    assert first["backend"] == "stylegan3" and first["outcome"] == "skipped"
    assert first["error"] == "prompt outside the network's domain: faces" and first["elapsed_ms"] < 50
    forced = httpx.post(f"{served}/api/generate/image", json=house | {"backend": "stylegan3"}, timeout=60).json()
    assert forced["backend"] == "stylegan3"  # naming the backend still gets it
    health = httpx.get(f"{served}/healthz", timeout=30).json()
    assert health["backends"]["stylegan3"]["domain"] == "faces"


def _bad_network(folder: Path) -> str:
    path = folder / "stylegan3-t-ffhq-1024x1024.pkl"
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    return str(path)


def _chain_app(serve_url: str, name: str, stylegan3: dict, storage: Path) -> str:
    args = AppArgs.model_validate(
        {"order": ["stylegan3", "svg"], "storage_dir": str(storage), "backends": {"stylegan3": stylegan3}}
    )
    try:
        serve.run(build_app(args), name=name, route_prefix=f"/{name}", blocking=False)
    except RuntimeError:  # the app reports its failed deployment; its gateway runs on
        pass
    return f"{serve_url}/{name}"


def test_a_bad_network_file_is_left_out_with_the_reason(serve_url: str, tmp_path: Path) -> None:
    bad = _bad_network(tmp_path)
    reason = StyleGAN3Args(network=bad).unavailable_reason(ClusterInfo(gpus=1, cpus=8)) or ""
    assert reason.startswith("network refused: ") and "refused global os.system" in reason
    url = _chain_app(serve_url, "sg3leftout", {"network": bad}, tmp_path / "images")
    try:
        wait_running("sg3leftout", timeout_s=120)
        health = httpx.get(f"{url}/healthz", timeout=30).json()["backends"]["stylegan3"]
        assert health["deployed"] is False and health["reason"] == reason
        body = httpx.post(f"{url}/api/generate/image", json={"prompt": "a face", "size": "64x64"}, timeout=60).json()
        assert body["backend"] == "svg"
        assert body["attempts"][0] == {
            "backend": "stylegan3",
            "outcome": "skipped",
            "error": f"not deployed: {reason}",
            "elapsed_ms": body["attempts"][0]["elapsed_ms"],
        }
    finally:
        serve.delete("sg3leftout")


def test_a_replica_that_cannot_load_fails_start_up_with_the_reason(serve_url: str, tmp_path: Path) -> None:
    # enabled: true skips the builder's check, as a file changed after deploying would: the replica must refuse it.
    config = {
        "network": _bad_network(tmp_path),
        "enabled": True,
        "warm_up": False,
        "deployment": {"num_replicas": 1, "ray_actor_options": {"num_gpus": 0, "num_cpus": 0.5}},
    }
    url = _chain_app(serve_url, "sg3broken", config, tmp_path / "images")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            app = serve.status().applications.get("sg3broken")
            deployment = app.deployments.get("stylegan3") if app else None
            if deployment is not None and deployment.status == "DEPLOY_FAILED":
                break
            time.sleep(0.5)
        else:
            raise TimeoutError("the broken StyleGAN3 deployment never failed")
        health = httpx.get(f"{url}/healthz", timeout=30).json()["backends"]["stylegan3"]
        assert "StyleGAN3 network refused: " in health["failure"] and "os.system" in health["failure"]
        body = httpx.post(f"{url}/api/generate/image", json={"prompt": "a face", "size": "64x64"}, timeout=60).json()
        assert body["backend"] == "svg"
        first = body["attempts"][0]
        assert first["outcome"] == "skipped" and first["error"].startswith("deployment failed: ")
        assert "StyleGAN3 network refused" in first["error"] and first["elapsed_ms"] < 1000
    finally:
        serve.delete("sg3broken")
