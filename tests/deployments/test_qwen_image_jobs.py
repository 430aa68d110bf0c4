"""A Qwen-Image job through /api/jobs: its steps arrive live, and a DELETE stops the pipeline within a step.

Its own module: the job must outlive the short timeouts test_qwen_image.py gives Qwen-Image on purpose, and the
session's one logical GPU holds one Qwen-Image replica at a time (each module deletes its app when done).
"""

from __future__ import annotations

import os

# huggingface_hub reads this once, at import: set it before anything imports diffusers or transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ray import serve

from cascade.config import Route
from deployments.progress import ProgressBoard
from deployments.qwen_image import QwenImageArgs, QwenImageBackend
from tests.fakes.backends import run_gateway
from tests.fakes.sse import job_events

APP = "qwen-jobs"
TIMEOUT_S = 300.0  # far past any step count the test lets run: only the DELETE may stop it
# At 512² the tiny pipeline takes ~0.25 s per step on this machine's CPU: 150 steps are far more than it waits for.
LONG_JOB = {"size": "512x512", "steps": 150, "backend": "qwen_image"}


@pytest.fixture(scope="module")
def qwen(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from models.qwen_image.tiny import build_tiny_pipeline

    weights = build_tiny_pipeline(tmp_path_factory.mktemp("qwen-tiny") / "pipeline", seed=0)
    # decline_late_jobs off: on a loaded machine the measured speed may call 150 steps late, and this test is about
    # stopping a job that runs, not about refusing one.
    args = QwenImageArgs(weights=str(weights), warmup_sizes=((64, 64),), timeout_s=TIMEOUT_S, decline_late_jobs=False)
    board = ProgressBoard.options(name="progress").bind()
    backend = QwenImageBackend.options(name="qwen_image", **args.deployment.as_options()).bind(args, board)
    images = tmp_path_factory.mktemp("qwen-jobs") / "images"
    run_gateway(
        APP, {"qwen_image": Route(TIMEOUT_S)}, {"qwen_image": backend}, images, board=board, request_timeout_s=TIMEOUT_S
    )
    try:
        yield f"{serve_url}/{APP}"
    finally:
        serve.delete(APP)  # frees the session's one logical GPU for the next module


def _last_run() -> dict[str, Any]:
    handle = serve.get_deployment_handle("qwen_image", app_name=APP)
    return handle.last_run.remote().result(timeout_s=30)  # type: ignore[no-any-return]


def test_a_job_shows_its_steps_live_and_delete_stops_it_within_a_step(qwen: str) -> None:
    r = httpx.post(f"{qwen}/api/jobs", json={"prompt": "a slow lighthouse", **LONG_JOB}, timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    progress: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{qwen}/api/jobs/{job_id}/events", timeout=120) as stream:
        for event in job_events(stream.iter_lines()):
            if event["event"] == "progress":
                progress.append(event)
            if len(progress) == 3 or event["event"] in ("done", "failed", "cancelled", "lost"):
                break
    assert len(progress) == 3, progress
    assert {(p["backend"], p["total"]) for p in progress} == {("qwen_image", LONG_JOB["steps"])}
    steps = [p["step"] for p in progress]
    assert steps == sorted(steps) and steps[0] < steps[-1] < LONG_JOB["steps"]
    assert httpx.get(f"{qwen}/api/jobs/{job_id}", timeout=10).json()["progress"]["step"] >= steps[-1]

    cancelled = httpx.delete(f"{qwen}/api/jobs/{job_id}", timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    last = _last_run()
    deadline = time.monotonic() + 30
    while last["outcome"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        last = _last_run()
    # The job's id is what the backend saw as the request's: the steps it posted were this job's.
    assert last["request_id"] == job_id and last["outcome"] == "cancelled"
    assert steps[-1] <= last["steps_at_cancel"] and last["steps_run"] <= last["steps_at_cancel"] + 1
    assert last["steps_run"] < LONG_JOB["steps"] // 2
    events = list(job_events(httpx.get(f"{qwen}/api/jobs/{job_id}/events", timeout=30).iter_lines()))
    assert events[-1]["event"] == "cancelled" and events[-1]["interrupted"] == "qwen_image"
