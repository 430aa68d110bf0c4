"""Pillow's two placements as users run them: its own pool, or threads of the gateway (`runs_in: gateway`)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml
from pydantic import ValidationError
from ray import serve

from cascade.types import ImageJob
from deployments.app import PROJECT_ROOT, AppArgs, build_app
from deployments.pillow import PillowGenerator, for_gateway
from models.local.generate_cpu_image import generate_png
from models.remote.config import KEY_ENV
from tests.fakes.backends import wait_running

APP = "pillow_in_gw"


@pytest.fixture(scope="module")
def in_gw(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    # The laptop default itself (serve_config.yaml), saving into a folder of the test's own.
    shipped = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())["applications"][0]["args"]
    args = AppArgs.model_validate({**shipped, "storage_dir": str(tmp_path_factory.mktemp("images"))})
    assert args.backends.pillow.runs_in == "gateway"
    with pytest.MonkeyPatch.context() as env:
        for name in (*itertools.chain(*KEY_ENV.values()), "STYLEGAN3_NETWORK", "QWEN_IMAGE_PATH"):
            env.delenv(name, raising=False)
        serve.run(build_app(args), name=APP, route_prefix=f"/{APP}", blocking=False)
    wait_running(APP)
    yield f"{serve_url}/{APP}"
    serve.delete(APP)


def test_on_the_laptop_default_pillow_serves_from_the_gateway_with_no_deployment_of_its_own(in_gw: str) -> None:
    request = {"prompt": "a lighthouse at dusk", "size": "96x64", "seed": 11}
    r = httpx.post(f"{in_gw}/api/generate/image", json=request, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    # No GPU weights and no provider keys here: the GPU backends are skipped with their reasons, Pillow serves.
    assert [(a["backend"], a["outcome"]) for a in body["attempts"]] == [
        ("stylegan3", "skipped"),
        ("qwen_image", "skipped"),
        ("pillow", "ok"),
    ]
    assert body["backend"] == "pillow"
    # The very generator the pool runs, byte for byte.
    assert base64.b64decode(body["dataUri"].split(",", 1)[1]) == generate_png("a lighthouse at dusk", 96, 64, 11)
    assert set(serve.status().applications[APP].deployments) == {"gateway", "progress"}
    pillow = httpx.get(f"{in_gw}/healthz").json()["backends"]["pillow"]
    assert pillow["deployed"] is True and pillow["runs_in"] == "gateway" and "replicas" not in pillow
    assert pillow["circuit"] == "closed"


def test_in_the_gateway_concurrent_requests_and_python_handle_calls_are_all_served(in_gw: str) -> None:
    def post(i: int) -> httpx.Response:
        return httpx.post(f"{in_gw}/api/generate/image", json={"prompt": f"tile {i}", "size": "64x64"}, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
    assert [r.status_code for r in answers] == [200] * 16
    assert {r.json()["backend"] for r in answers} == {"pillow"}
    handle = serve.get_app_handle(APP)
    answer = handle.generate.remote({"prompt": "from Python", "size": "64x80"}).result(timeout_s=60)
    assert (answer.backend, answer.width, answer.height) == ("pillow", 64, 80)


def test_a_generator_in_the_gateway_uses_one_thread_per_usable_core_and_can_be_cancelled() -> None:
    pillow = for_gateway()
    assert pillow._threads is not None and pillow._threads._max_workers == len(os.sched_getaffinity(0))

    async def cancelled_then_served() -> bytes:
        call = pillow.start(ImageJob("late", 64, 64, 1))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return (await pillow.start(ImageJob("next", 64, 64, 2))).data

    assert asyncio.run(cancelled_then_served()) == generate_png("next", 64, 64, 2)


def test_the_health_check_refuses_a_generator_that_makes_no_png(monkeypatch: pytest.MonkeyPatch) -> None:
    pillow = PillowGenerator()
    pillow.check()
    monkeypatch.setattr(pillow, "_generate_png", lambda *a: b"GIF89a")
    with pytest.raises(RuntimeError, match="did not produce a PNG"):
        pillow.check()


def test_runs_in_accepts_only_the_two_placements() -> None:
    with pytest.raises(ValidationError, match="runs_in"):
        AppArgs.model_validate({"backends": {"pillow": {"runs_in": "laptop"}}})
