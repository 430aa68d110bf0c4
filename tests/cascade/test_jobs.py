"""The job table on a hand-turned clock: states, events in order, cancels reaching owners, leases ending in `lost`."""

from __future__ import annotations

import pytest

from cascade.config import JobArgs
from cascade.jobs import JobTable, JobView


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _table(clock: Clock, **settings: float) -> JobTable:
    return JobTable(JobArgs(**settings), clock=clock)


def _types(table: JobTable, job_id: str, after: int = 0) -> list[str]:
    found = table.events_after(job_id, after)
    assert found is not None
    return [e["type"] for e in found[0]]


def test_a_job_runs_through_its_attempts_to_done(clock: Clock) -> None:
    table = _table(clock)
    view = table.create("j1", "gw-a", {"prompt": "p"}, key_id="k1")
    assert view is not None and view["status"] == "queued" and view["last_event_id"] == 1
    assert view["key_id"] == "k1"  # who may see it, kept for its whole life
    assert table.start("j1", "gw-b")
    table.attempt_started("j1", "qwen_image")
    table.progress("j1", "qwen_image", 3, 8)
    assert table.view("j1")["progress"] == {"backend": "qwen_image", "step": 3, "total": 8}  # type: ignore[index]
    table.attempt_ended("j1", {"backend": "qwen_image", "outcome": "timeout", "error": "slow", "elapsed_ms": 5.0})
    table.attempt_started("j1", "pillow")
    assert table.view("j1")["current"] == "pillow"  # type: ignore[index]
    result = {"backend": "pillow"}
    assert table.finish("j1", "done", result=result)
    assert not table.finish("j1", "failed", error="late")  # the first ending stands
    view = table.view("j1")
    assert view is not None
    assert (view["status"], view["result"], view["error"], view["current"]) == ("done", result, None, None)
    assert [a["outcome"] for a in view["attempts"]] == ["timeout"]
    assert _types(table, "j1") == [
        "queued",
        "started",
        "attempt_started",
        "progress",
        "attempt_ended",
        "attempt_started",
        "done",
    ]
    events, ended = table.events_after("j1", 5) or ([], False)
    assert [e["seq"] for e in events] == [6, 7] and ended
    assert all(e["data"]["job_id"] == "j1" for e in events)


def test_a_queued_job_cancels_at_once_and_never_starts(clock: Clock) -> None:
    table = _table(clock)
    table.create("j1", "gw-a", {})
    view = table.cancel("j1")
    assert view is not None and view["status"] == "cancelled"
    assert not table.start("j1", "gw-b")
    assert table.heartbeat("gw-a", ["j1"]) == ["j1"]  # the queuer drops its queued call


def test_a_running_job_s_cancel_reaches_its_owner_only(clock: Clock) -> None:
    table = _table(clock)
    table.create("j1", "gw-a", {})
    table.start("j1", "gw-b")
    table.attempt_started("j1", "qwen_image")
    view = table.cancel("j1")
    assert view is not None and view["status"] == "running" and view["cancel_requested"]
    assert table.must_stop("gw-b") and not table.must_stop("gw-a")
    assert table.heartbeat("gw-a", ["j1"]) == []
    assert table.heartbeat("gw-b", ["j1"]) == ["j1"]
    assert table.heartbeat("gw-b", ["j1"]) == []  # told once
    table.finish("j1", "cancelled", error="cancelled by the client")
    events, _ = table.events_after("j1", 0) or ([], False)
    assert events[-1]["type"] == "cancelled" and events[-1]["data"]["interrupted"] == "qwen_image"
    assert _types(table, "j1")[-2] == "cancelling"


def test_a_job_no_replica_holds_any_more_ends_lost_and_held_ones_do_not(clock: Clock) -> None:
    table = _table(clock, lease_s=10)
    table.create("dead", "gw-a", {})
    table.start("dead", "gw-a")
    table.create("waiting", "gw-a", {})  # queued by the replica that dies
    table.create("alive", "gw-b", {})
    table.start("alive", "gw-c")
    clock.now += 6
    table.heartbeat("gw-c", ["alive"])  # the runner holds it...
    assert not table.expire()
    clock.now += 6
    table.heartbeat("gw-b", ["alive"])  # ...and so does its queuer: either renews it
    assert table.expire()
    assert [table.view(j)["status"] for j in ("dead", "waiting", "alive")] == ["lost", "lost", "running"]  # type: ignore[index]
    assert "no heartbeat for 10 s" in table.view("dead")["error"]  # type: ignore[index]
    # A replica that was only slow hears that the table gave up on its job: it drops it.
    assert table.heartbeat("gw-a", ["dead"]) == ["dead"]


def test_a_runner_that_drops_a_job_while_beating_for_others_still_loses_it(clock: Clock) -> None:
    table = _table(clock, lease_s=10)
    for name in ("kept", "dropped"):
        table.create(name, "gw", {})
        table.start(name, "gw")
    for _ in range(3):
        clock.now += 5
        table.heartbeat("gw", ["kept"])
        table.expire()
    assert table.view("kept")["status"] == "running" and table.view("dropped")["status"] == "lost"  # type: ignore[index]


def test_finished_jobs_are_forgotten_after_keep_s_or_past_max_jobs_but_live_ones_never(clock: Clock) -> None:
    table = _table(clock, keep_s=60, max_jobs=3)
    for name in ("a", "b", "c"):
        table.create(name, "gw", {})
    assert table.create("d", "gw", {}) is None  # three live jobs: full
    table.finish("a", "done")
    assert table.create("d", "gw", {}) is not None  # the finished one made room
    assert table.view("a") is None and table.view("b") is not None
    table.finish("b", "failed", error="x")
    clock.now += 61
    table.heartbeat("gw", [])
    table.expire()
    assert table.view("b") is None and table.view("c") is not None
    assert table.events_after("b", 0) is None


def test_progress_past_max_events_updates_the_job_without_flooding_events(clock: Clock) -> None:
    table = _table(clock, max_events=10)
    table.create("j", "gw", {})
    table.start("j", "gw")
    for step in range(1, 50):
        table.progress("j", "qwen_image", step, 49)
    view = table.view("j")
    assert view is not None and view["progress"]["step"] == 49
    assert len(_types(table, "j")) == 10
    table.finish("j", "done")
    assert _types(table, "j")[-1] == "done"  # endings always get their event


def test_views_are_what_the_http_model_describes(clock: Clock) -> None:
    table = _table(clock)
    table.create("j", "gw", {"prompt": "p", "size": "64x64"})
    table.start("j", "gw")
    table.attempt_ended("j", {"backend": "pillow", "outcome": "ok", "error": None, "elapsed_ms": 3.0})
    result = {
        "dataUri": None,
        "content": "/generated/x.png",
        "saved": "/generated/x.png",
        "provider": "pillow",
        "backend": "pillow",
        "width": 64,
        "height": 64,
        "seed": 1,
        "request_id": "j",
        "attempts": [{"backend": "pillow", "outcome": "ok", "error": None, "elapsed_ms": 3.0}],
    }
    table.finish("j", "done", result=result)
    view = JobView.model_validate(table.view("j"))
    assert view.result is not None and view.result.data_uri is None and view.result.saved == "/generated/x.png"
    assert view.model_dump(by_alias=True)["result"]["dataUri"] is None
