"""/api/jobs over real HTTP: two gateway replicas, a job board, backends that answer, hang or fail on purpose."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import ray
from ray import serve

from cascade.config import JobArgs, Route
from tests.fakes.backends import Fake, run_gateway, wait_running
from tests.fakes.sse import job_events, sse_fields

APP = "jobs"
LEASE_S = 2.0
HEARTBEAT_S = 0.5


@pytest.fixture(scope="module")
def jobs(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("jobs")
    journals = {name: tmp / f"{name}.log" for name in ("good", "hanger", "raiser")}
    for journal in journals.values():
        journal.touch()
    backends = {
        "good": Fake.options(name="good").bind("ok", str(journals["good"])),
        "hanger": Fake.options(name="hanger").bind("hang", str(journals["hanger"])),
        "raiser": Fake.options(name="raiser").bind("raise", str(journals["raiser"])),
    }
    routes = {"good": Route(10), "hanger": Route(120), "raiser": Route(10)}
    settings = JobArgs(lease_s=LEASE_S, events_heartbeat_s=HEARTBEAT_S)
    # Two gateway replicas: a job is posted to one, run by either, read and cancelled through either.
    run_gateway(APP, routes, backends, tmp / "images", jobs=settings, replicas=2)
    yield f"{serve_url}/{APP}", journals
    serve.delete(APP)


def _submit(url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/jobs", json=body, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/{APP}/api/jobs/{job['id']}"
    return job


def _until(url: str, job_id: str, statuses: set[str], timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/api/jobs/{job_id}", timeout=10)
        except httpx.TransportError:  # a gateway replica restarting
            r = None
        if r is not None and r.status_code == 200:
            job = r.json()
            if job["status"] in statuses:
                break
        time.sleep(0.1)
    return job


def _stream(url: str, job_id: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{url}/api/jobs/{job_id}/events", headers=headers, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return list(job_events(r.iter_lines()))


def test_a_job_runs_to_done_and_keeps_its_result(jobs) -> None:
    url, _ = jobs
    job = _submit(url, {"prompt": "a job", "size": "96x64", "backend": "good", "seed": 5})
    assert job["status"] == "queued" and job["request"] == {
        "prompt": "a job",
        "size": "96x64",
        "local": False,
        "seed": 5,
        "backend": "good",
    }
    done = _until(url, job["id"], {"done", "failed"})
    assert done["status"] == "done" and done["error"] is None and done["progress"] is None
    assert [(a["backend"], a["outcome"]) for a in done["attempts"]] == [("good", "ok")]
    result = done["result"]
    assert (result["backend"], result["width"], result["height"], result["seed"]) == ("good", 96, 64, 5)
    assert result["dataUri"] is None and result["request_id"] == job["id"]  # the image is at `saved`
    assert httpx.get(f"{url}{result['saved']}").headers["content-type"] == "image/png"
    assert done["started_at"] >= done["created_at"] and done["ended_at"] >= done["started_at"]


def test_events_arrive_in_order_end_the_stream_and_resume_from_last_event_id(jobs) -> None:
    url, _ = jobs
    job = _submit(url, {"prompt": "events", "size": "64x64", "backend": "good"})
    events = _stream(url, job["id"])
    assert [e["event"] for e in events] == ["queued", "started", "attempt_started", "attempt_ended", "done"]
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5] and {e["job_id"] for e in events} == {job["id"]}
    assert events[3]["outcome"] == "ok" and events[4]["result"]["backend"] == "good"
    times = [e["at"] for e in events]
    assert times == sorted(times) and all(isinstance(t, float) for t in times)
    assert [e["id"] for e in _stream(url, job["id"], {"Last-Event-ID": "3"})] == [4, 5]
    # Nothing more to say: 204 tells an EventSource to stop reconnecting.
    ended = httpx.get(f"{url}/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "5"}, timeout=10)
    assert ended.status_code == 204
    bad = httpx.get(f"{url}/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "x"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "Last-Event-ID"


def test_a_failed_job_says_why_with_every_attempt(jobs) -> None:
    url, _ = jobs
    job = _submit(url, {"prompt": "fails", "size": "64x64", "backend": "raiser"})
    events = _stream(url, job["id"])
    assert events[-1]["event"] == "failed"
    assert events[-1]["error"] == "every backend failed: raiser error"
    assert [(a["backend"], a["error"]) for a in events[-1]["attempts"]] == [("raiser", "weights exploded")]
    assert _until(url, job["id"], {"failed"})["status"] == "failed"


def test_delete_stops_the_backend_at_work_and_the_stream_says_so_live(jobs) -> None:
    url, journals = jobs
    job = _submit(url, {"prompt": "hangs", "size": "64x64", "backend": "hanger"})
    seen: list[dict[str, str]] = []

    def watch() -> None:
        with httpx.stream("GET", f"{url}/api/jobs/{job['id']}/events", timeout=60) as r:
            seen.extend(sse_fields(r.iter_lines()))

    watcher = threading.Thread(target=watch)
    watcher.start()
    running = _until(url, job["id"], {"running"})
    deadline = time.monotonic() + 10
    while running["current"] != "hanger" and time.monotonic() < deadline:
        running = httpx.get(f"{url}/api/jobs/{job['id']}", timeout=10).json()
    assert running["current"] == "hanger"
    time.sleep(3 * HEARTBEAT_S)  # a quiet stretch: the stream must keep talking
    r = httpx.delete(f"{url}/api/jobs/{job['id']}", timeout=30)
    assert r.status_code == 200, r.text  # 200: it ended cancelled while DELETE waited (202 would say it had not)
    cancelled = r.json()
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled by the client"
    watcher.join(timeout=30)
    assert not watcher.is_alive()  # the stream ended with the job
    kinds = [f.get("event", "comment") for f in seen]
    assert kinds[:3] == ["queued", "started", "attempt_started"]
    assert kinds[-2:] == ["cancelling", "cancelled"]
    assert kinds.count("comment") >= 2  # keep-alives while the backend hung
    # The backend itself was cancelled, not left working for nobody.
    deadline = time.monotonic() + 10
    while "cancelled" not in journals["hanger"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "cancelled" in journals["hanger"].read_text()
    assert httpx.delete(f"{url}/api/jobs/{job['id']}", timeout=30).status_code == 200  # idempotent


def test_cancelling_what_ended_or_never_was(jobs) -> None:
    url, _ = jobs
    job = _submit(url, {"prompt": "quick", "size": "64x64", "backend": "good"})
    _until(url, job["id"], {"done"})
    r = httpx.delete(f"{url}/api/jobs/{job['id']}", timeout=30)
    assert r.status_code == 409 and "already ended: done" in r.json()["error"]
    for path in ("/api/jobs/0123456789abcdef0123456789abcdef", "/api/jobs/..%2Fhealthz", "/api/jobs/x"):
        for method in ("GET", "DELETE"):
            assert httpx.request(method, f"{url}{path}", timeout=10).status_code == 404
        assert httpx.get(f"{url}{path}/events", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("content", "headers", "status", "field"),
    [
        (b'{"prompt": "x"', {"content-type": "application/json"}, 400, "body"),
        (b'{"prompt": "x"}', {"content-type": "text/plain"}, 415, "content-type"),
        (b'{"prompt": "' + b"x" * 300_000 + b'"}', {"content-type": "application/json"}, 413, "body"),
        (b'{"prompt": "x", "size": "10x10"}', {"content-type": "application/json"}, 422, "size"),
        (b'{"prompt": "x", "backend": "nope"}', {"content-type": "application/json"}, 422, "backend"),
    ],
)
def test_a_bad_job_is_refused_at_once_naming_the_field(
    jobs, content: bytes, headers: dict, status: int, field: str
) -> None:
    url, _ = jobs
    r = httpx.post(f"{url}/api/jobs", content=content, headers=headers, timeout=30)
    assert r.status_code == status and r.json()["field"] == field


def _kill_gateways() -> int:
    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{APP}#gateway#")
    ]
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return len(names)


def test_a_job_whose_gateway_replicas_died_ends_lost(jobs) -> None:
    # Last in this module: it kills the gateway replicas (Serve starts new ones).
    url, _ = jobs
    job = _submit(url, {"prompt": "orphan", "size": "64x64", "backend": "hanger"})
    assert _until(url, job["id"], {"running"})["status"] == "running"
    assert _kill_gateways() == 2
    time.sleep(1)
    wait_running(APP)
    lost = _until(url, job["id"], {"lost", "done", "failed", "cancelled"}, timeout_s=30)
    assert lost["status"] == "lost", lost
    assert "heartbeat" in lost["error"] or "died" in lost["error"]
    events = _stream(url, job["id"])
    assert events[-1]["event"] == "lost"
