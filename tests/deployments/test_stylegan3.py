"""StyleGAN3 served through the gateway from a tiny network pickle in NVIDIA's layout, on a fake GPU."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

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

    path = tmp_path_factory.mktemp("sg3") / "tiny-stylegan3-t.pkl"
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
        req = {"prompt": "batch", "size": "64x64", "seed": seed}
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
