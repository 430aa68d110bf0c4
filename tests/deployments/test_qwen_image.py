"""The Qwen-Image backend as a real Serve deployment (a tiny random pipeline, on the session's one logical GPU)."""

from __future__ import annotations

import os

# huggingface_hub reads this once, at import: set it before anything imports diffusers or transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import base64
import io
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from ray import serve

from cascade.config import CircuitArgs, ClusterInfo, Route
from deployments.progress import ProgressBoard
from deployments.qwen_image import QwenImageArgs, QwenImageBackend
from tests.fakes.backends import run_gateway

APP = "qwen-image"
# The gateway's timeout for qwen_image: far above a small job, far below a long one.
TIMEOUT_S = 5.0
PROMPT = "a lighthouse at dusk"
# At 512² the tiny pipeline needs ~0.25 s per step on this machine's CPU: 150 steps run far past TIMEOUT_S.
LONG_JOB = {"size": "512x512", "steps": 150, "backend": "qwen_image"}
SHORT_JOB = {"size": "64x64", "steps": 2, "backend": "qwen_image"}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.qwen_image.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("qwen-tiny") / "pipeline", seed=0)


# Several tests time qwen_image out on purpose: its circuit must not open between them.
PATIENT = CircuitArgs(failure_threshold=100)


@pytest.fixture(scope="module")
def qwen(serve_url: str, tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with [qwen_image, svg]; qwen_image as configured by default (1 GPU, 1 at a time) but a queue of 1."""
    # Jobs here run on past their deadline on purpose (to be cancelled mid-run): the measured-speed check that would
    # decline them at once is off in this app and tested in its own below.
    args = QwenImageArgs(
        weights=str(tiny_weights), steps=4, warmup_sizes=((64, 64),), timeout_s=TIMEOUT_S, decline_late_jobs=False
    )
    assert args.deployment.num_gpus == 1
    board = ProgressBoard.options(name="progress").bind()
    backend = QwenImageBackend.options(
        name="qwen_image", **{**args.deployment.as_options(), "max_queued_requests": 1}
    ).bind(args, board)
    images = tmp_path_factory.mktemp("qwen-app") / "images"
    run_gateway(APP, {"qwen_image": Route(TIMEOUT_S)}, {"qwen_image": backend}, images, board=board, circuit=PATIENT)
    try:
        yield f"{serve_url}/{APP}"
    finally:
        # The session has one logical GPU: the next module's GPU replica needs this one gone.
        serve.delete(APP)


def _post(url: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/api/generate/image", json=body, timeout=timeout)


def _pixels(data_uri: str) -> np.ndarray:
    header, _, payload = data_uri.partition(",")
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        return np.asarray(img.convert("RGB"))


def _outcomes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["backend"], a["outcome"]) for a in body["attempts"]]


def _backend_call(method: str, timeout_s: float = 30) -> Any:
    handle = serve.get_deployment_handle("qwen_image", app_name=APP)
    return getattr(handle, method).remote().result(timeout_s=timeout_s)


def test_the_served_image_is_the_pipeline_s_own(qwen: str, tiny_weights: Path) -> None:
    import torch
    from diffusers import QwenImagePipeline

    from models.imaging import fit_cover

    r = _post(
        qwen, {"prompt": PROMPT, "size": "100x72", "seed": 7, "steps": 3, "guidance": 4.0, "backend": "qwen_image"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert _outcomes(body) == [("qwen_image", "ok")]
    assert (body["provider"], body["width"], body["height"], body["seed"]) == ("qwen_image", 100, 72, 7)
    # The tiny VAE's multiple is 8: 100 rounds to 96, then the image is scaled and cropped back to 100x72.
    assert {k: body["meta"][k] for k in ("native_size", "steps", "guidance")} == {
        "native_size": "96x72",
        "steps": 3,
        "guidance": 4.0,
    }

    pipe = QwenImagePipeline.from_pretrained(str(tiny_weights), dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    # Ray gives a 1-CPU replica one intra-op thread; another thread count sums floats in another order, which can
    # move a pixel by one level.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        direct = pipe(
            PROMPT,
            negative_prompt=" ",
            true_cfg_scale=4.0,
            width=96,
            height=72,
            num_inference_steps=3,
            generator=torch.Generator("cpu").manual_seed(7),
            max_sequence_length=512,
        ).images[0]
    finally:
        torch.set_num_threads(threads)
    expected = np.asarray(fit_cover(direct, 100, 72).convert("RGB"))
    got = _pixels(body["dataUri"])
    assert got.shape == (72, 100, 3)
    np.testing.assert_array_equal(got, expected)
    assert got.std() > 1  # noise from random weights, not a blank image


def test_with_its_queue_full_the_next_backend_serves_at_once(qwen: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        # One job runs on the only replica, one waits in the gateway's queue (queues are per caller)...
        running = pool.submit(_post, qwen, {"prompt": "running", **LONG_JOB})
        time.sleep(1.0)
        queued = pool.submit(_post, qwen, {"prompt": "queued", **SHORT_JOB})
        time.sleep(1.0)
        # ...so this one finds no room and moves on without waiting.
        started = time.monotonic()
        r = _post(qwen, {"prompt": "overflow", "size": "64x64", "seed": 3})
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert _outcomes(r.json()) == [("qwen_image", "busy"), ("svg", "ok")]
        assert r.json()["attempts"][0]["error"].startswith("queue full")
        assert elapsed < TIMEOUT_S  # it did not wait for a slot
        assert _outcomes(running.result().json()) == [("qwen_image", "timeout")]
        # Whether the queued job fits between the cancelled run and its own timeout depends on the machine's load.
        assert _outcomes(queued.result().json())[0][1] in ("ok", "timeout")


def _jobs(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/healthz", timeout=10).json()["backends"]["qwen_image"]["jobs"]


def test_a_timed_out_job_stops_within_a_step_and_frees_the_replica(qwen: str) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_post, qwen, {"prompt": "too long", **LONG_JOB})
        # While it runs, /healthz shows its progress (posted by the replica, not asked of it: it is busy).
        seen: list[dict[str, Any]] = []
        while not seen and not pending.done():
            seen = _jobs(qwen)
            time.sleep(0.2)
        r = pending.result()
    assert seen and seen[0]["total"] == LONG_JOB["steps"] and 1 <= seen[0]["step"] < LONG_JOB["steps"]
    assert seen[0]["request_id"] == r.json()["request_id"]
    assert r.status_code == 503, r.text
    assert _outcomes(r.json()) == [("qwen_image", "timeout")]
    assert time.monotonic() - started < TIMEOUT_S + 5

    # Serve answers the cancel at once; the worker thread notices it after the step it is in.
    last = _backend_call("last_run")
    deadline = time.monotonic() + 15
    while last["outcome"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        last = _backend_call("last_run")
    assert last["request_id"] == r.json()["request_id"]
    assert last["outcome"] == "cancelled"
    assert last["steps_requested"] == LONG_JOB["steps"]
    assert 1 <= last["steps_run"] <= last["steps_at_cancel"] + 1
    assert last["steps_run"] < LONG_JOB["steps"] // 2
    assert _backend_call("progress") is None
    deadline = time.monotonic() + 5
    while _jobs(qwen) and time.monotonic() < deadline:  # the job's end is posted too
        time.sleep(0.1)
    assert _jobs(qwen) == []

    started = time.monotonic()
    r = _post(qwen, {"prompt": "next", **SHORT_JOB})
    assert r.status_code == 200, r.text
    assert _outcomes(r.json()) == [("qwen_image", "ok")]
    assert time.monotonic() - started < TIMEOUT_S


def test_missing_or_broken_weights_leave_qwen_out_and_the_next_backend_serves(
    serve_url: str, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments.app import AppArgs, Backends, plan

    cluster = ClusterInfo(gpus=1, cpus=8)
    monkeypatch.delenv("QWEN_IMAGE_PATH", raising=False)
    assert "no Qwen-Image weights path configured" in (QwenImageArgs().unavailable_reason(cluster) or "")
    absent = tmp_path / "absent"
    assert QwenImageArgs(weights=str(absent)).unavailable_reason(cluster) == f"weights folder {absent} does not exist"

    broken = tmp_path / "broken"
    shutil.copytree(tiny_weights, broken)
    shard = next((broken / "transformer").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-100])  # an interrupted download
    reason = QwenImageArgs(weights=str(broken)).unavailable_reason(cluster)
    assert reason is not None and str(shard) in reason and "truncated" in reason

    monkeypatch.setenv("QWEN_IMAGE_PATH", str(tiny_weights))
    assert QwenImageArgs().weights == str(tiny_weights)
    assert QwenImageArgs().unavailable_reason(cluster) is None
    assert QwenImageArgs().unavailable_reason(ClusterInfo(gpus=0, cpus=8)) == "needs 1 GPU, the cluster has 0"

    args = AppArgs(order=["qwen_image", "svg"], backends=Backends(qwen_image=QwenImageArgs(weights=str(broken))))
    deployed, left_out = plan(args, cluster)
    assert deployed == {} and left_out == {"qwen_image": reason}
    run_gateway("qwen-left-out", {"qwen_image": Route(TIMEOUT_S)}, {}, tmp_path / "images", left_out=left_out)
    try:
        r = _post(f"{serve_url}/qwen-left-out", {"prompt": PROMPT, "size": "64x64"})
        assert r.status_code == 200, r.text
        assert _outcomes(r.json()) == [("qwen_image", "skipped"), ("svg", "ok")]
        assert r.json()["attempts"][0]["error"] == f"not deployed: {reason}"
    finally:
        serve.delete("qwen-left-out")


def test_a_passed_job_deadline_stops_the_run_with_a_clear_error(qwen: str) -> None:
    from cascade.errors import BackendFailed
    from cascade.types import ImageJob

    # A caller that gives up without cancelling (or sets no timeout of its own) is covered by the job's deadline.
    job = ImageJob("no time", 512, 512, seed=1, options={"steps": 150}, deadline=time.time() + 1.0)
    handle = serve.get_deployment_handle("qwen_image", app_name=APP)
    with pytest.raises(BackendFailed) as caught:
        handle.generate.remote(job).result(timeout_s=30)
    # Ray wraps it (RayTaskError(BackendFailed), whose text is the remote traceback); `cause` is ours as raised.
    assert re.fullmatch(r"deadline passed: stopped after \d+ of 150 steps", str(caught.value.cause))
    last = _backend_call("last_run")
    assert last["outcome"] == "deadline" and last["steps_run"] < 150 // 2


def test_a_bad_job_is_an_error_attempt_with_a_short_reason(qwen: str) -> None:
    # The tiny pipeline keeps the real scheduler's terminal shift, with which a single step divides 0 by 0.
    r = _post(qwen, {"prompt": PROMPT, **SHORT_JOB, "steps": 1})
    assert r.status_code == 503, r.text
    [attempt] = r.json()["attempts"]
    assert (attempt["backend"], attempt["outcome"]) == ("qwen_image", "error")
    assert attempt["error"] == "steps must be >= 2 with this scheduler, got 1"


def test_healthz_shows_each_replica_s_memory_plan_and_measured_speed(qwen: str) -> None:
    body = httpx.get(f"{qwen}/healthz", timeout=10).json()
    [info] = body["backends"]["qwen_image"]["replica_info"]
    assert info["device"] == "cpu" and info["timeout_s"] == TIMEOUT_S
    plan = info["memory_plan"]
    assert plan["mode"] == "off" and plan["device"] == "cpu" and plan["max_pixels"] == 4_200_000
    assert plan["why"] == "no GPU: weights in host RAM"
    assert info["load_peak_host_rss_gib"] > 0 and info["load_seconds"] > 0
    # Estimates from the warm-up's own timed run, at the model card's two default sizes.
    assert [row["size"] for row in info["speed"]] == ["1328x1328", "1664x928"]
    assert all(0 < row["s_per_step_no_cfg"] < row["s_per_step_cfg"] for row in info["speed"])


# 150 steps at 512² need minutes on the tiny pipeline's single CPU thread: far past this.
DECLINING_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def declining(serve_url: str, tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """[qwen_image, svg] where qwen_image declines what its measured speed says it cannot finish in time.

    No GPU asked for: the module's other app holds the session's one logical GPU, and this is about timing.
    """
    # A default job (2 steps at 128²) fits the timeout with room to spare even on a busy machine.
    args = QwenImageArgs(
        weights=str(tiny_weights), steps=2, warmup_sizes=((64, 64), (128, 128)), timeout_s=DECLINING_TIMEOUT_S
    )
    board = ProgressBoard.options(name="progress").bind()
    options = {**args.deployment.as_options(), "ray_actor_options": {"num_cpus": 1, "num_gpus": 0}}
    backend = QwenImageBackend.options(name="qwen_image", **options).bind(args, board)
    images = tmp_path_factory.mktemp("qwen-declining") / "images"
    route = {"qwen_image": Route(DECLINING_TIMEOUT_S)}
    run_gateway("qwen-declining", route, {"qwen_image": backend}, images, board=board)
    try:
        yield f"{serve_url}/qwen-declining"
    finally:
        serve.delete("qwen-declining")


def test_a_job_that_cannot_finish_in_time_is_declined_at_once(declining: str) -> None:
    for attempt in range(4):  # more than the breaker's threshold (3): declining is not failing
        started = time.monotonic()
        r = _post(declining, {"prompt": f"too long {attempt}", "size": "512x512", "steps": 150})
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert _outcomes(r.json()) == [("qwen_image", "declined"), ("svg", "ok")]
        assert re.fullmatch(
            r"needs ~\d+\.\d s at this replica's measured speed, \d+\.\d s left", r.json()["attempts"][0]["error"]
        )
        assert elapsed < DECLINING_TIMEOUT_S / 4  # answered at once, not after the timeout
    health = httpx.get(f"{declining}/healthz", timeout=10).json()["backends"]["qwen_image"]
    assert (health["circuit"], health["consecutive_failures"]) == ("closed", 0)
    last = serve.get_deployment_handle("qwen_image", app_name="qwen-declining").last_run.remote().result(timeout_s=30)
    assert (last["outcome"], last["steps_run"]) == ("declined", 0)
    # What fits is still served.
    r = _post(declining, {"prompt": "small", **SHORT_JOB})
    assert _outcomes(r.json()) == [("qwen_image", "ok")]


def test_a_short_deadline_is_declined_before_any_step(declining: str) -> None:
    from cascade.errors import Declined
    from cascade.types import ImageJob

    handle = serve.get_deployment_handle("qwen_image", app_name="qwen-declining")
    job = ImageJob("no time", 256, 256, seed=1, options={"steps": 20}, deadline=time.time() + 0.2)
    started = time.monotonic()
    with pytest.raises(Declined) as caught:
        handle.generate.remote(job).result(timeout_s=30)
    assert time.monotonic() - started < 5
    assert "at this replica's measured speed" in str(caught.value.cause)


def test_a_default_job_slower_than_the_timeout_is_refused_at_start(tiny_weights: Path) -> None:
    # 50 steps with CFG cannot finish in 0.02 s: the replica must not start, and must say what would work (here only
    # a longer timeout: even 8 Lightning steps take longer; test_timing covers the Lightning advice).
    args = QwenImageArgs(weights=str(tiny_weights), steps=50, warmup_sizes=((64, 64),), timeout_s=0.02)
    options = {**args.deployment.as_options(), "ray_actor_options": {"num_cpus": 1, "num_gpus": 0}}
    # One try is enough to see the refusal (Serve would otherwise retry the constructor several times).
    backend = QwenImageBackend.options(name="qwen_image", max_constructor_retry_count=1, **options).bind(args)
    try:
        # serve.run waits for the app and raises once it is DEPLOY_FAILED; the reason is on the deployment.
        with pytest.raises(RuntimeError, match="qwen-too-slow failed"):
            serve.run(backend, name="qwen-too-slow", route_prefix="/qwen-too-slow", blocking=False)
        status = serve.status().applications["qwen-too-slow"]
        assert status.status == "DEPLOY_FAILED"
        message = status.deployments["qwen_image"].message
        assert "Qwen-Image refuses to start at 64x64 (off): a default job (50 steps) takes ~" in message
        assert "over timeout_s 0.02: raise timeout_s to " in message
    finally:
        serve.delete("qwen-too-slow")
