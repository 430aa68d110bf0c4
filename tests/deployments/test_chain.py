"""The fallback chain through real Serve deployments that fail in each way a backend can."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from ray import serve

from cascade.config import CircuitArgs, Route
from tests.fakes.backends import Fake, run_gateway

HANG_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def chain(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("chain")
    journals = {name: tmp / f"{name}.log" for name in ("raiser", "hanger", "busy", "good")}
    for j in journals.values():
        j.touch()
    routes = {
        "gpu": Route(10),
        "raiser": Route(5),
        "hanger": Route(HANG_TIMEOUT_S),
        "busy": Route(8),  # long enough that the queue stays full while the test request arrives
        "good": Route(5),
    }
    backends = {
        "raiser": Fake.options(name="raiser").bind("raise", str(journals["raiser"])),
        "hanger": Fake.options(name="hanger").bind("hang", str(journals["hanger"])),
        "busy": Fake.options(name="busy", max_ongoing_requests=1, max_queued_requests=1).bind(
            "hang", str(journals["busy"])
        ),
        "good": Fake.options(name="good").bind("ok", str(journals["good"])),
    }
    run_gateway("chain", routes, backends, tmp / "images", left_out={"gpu": "needs 1 GPU, the cluster has 0"})
    # Fill the busy backend's only slot...
    blocker = serve.get_deployment_handle("busy", app_name="chain").generate.remote(_job())
    yield f"{serve_url}/chain", journals
    blocker.cancel()
    serve.delete("chain")


def _job():
    from cascade.types import ImageJob

    return ImageJob(prompt="blocker", width=64, height=64, seed=0)


def test_each_outcome_in_order_and_the_first_good_backend_serves(chain) -> None:
    url, journals = chain
    # ...and its one queue place (queues are per caller: this request waits in the gateway's own queue).
    with ThreadPoolExecutor(1) as pool:
        queue_filler = {"prompt": "q", "size": "64x64", "backend": "busy"}
        queued = pool.submit(httpx.post, f"{url}/api/generate/image", json=queue_filler, timeout=30)
        time.sleep(1.5)  # time for it to reach the gateway and queue there; the outcomes below show it did
        started = time.monotonic()
        r = httpx.post(f"{url}/api/generate/image", json={"prompt": "ordered", "size": "96x80"}, timeout=30)
        elapsed = time.monotonic() - started
        assert queued.result().json()["attempts"][0]["outcome"] == "timeout"
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(a["backend"], a["outcome"]) for a in body["attempts"]] == [
        ("gpu", "skipped"),
        ("raiser", "error"),
        ("hanger", "timeout"),
        ("busy", "busy"),
        ("good", "ok"),
    ]
    gpu, raiser, hanger, busy, _ = body["attempts"]
    assert "not deployed: needs 1 GPU" in gpu["error"]
    assert gpu["elapsed_ms"] < 1
    assert raiser["error"] == "weights exploded"
    assert HANG_TIMEOUT_S * 1000 <= hanger["elapsed_ms"] < HANG_TIMEOUT_S * 1000 + 1000
    assert busy["error"].startswith("queue full")
    assert body["backend"] == "good" and body["provider"] == "fake"
    assert (body["width"], body["height"]) == (96, 80)
    assert elapsed < HANG_TIMEOUT_S + 5
    # The hung replica was told to stop, not left working for nobody.
    deadline = time.monotonic() + 5
    while "cancelled" not in journals["hanger"].read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "cancelled" in journals["hanger"].read_text()


def test_a_named_backend_is_used_alone(chain) -> None:
    url, journals = chain
    before = journals["raiser"].read_text().count("called")
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "alone", "size": "64x64", "backend": "good"})
    assert r.status_code == 200, r.text
    assert [(a["backend"], a["outcome"]) for a in r.json()["attempts"]] == [("good", "ok")]
    assert journals["raiser"].read_text().count("called") == before


def test_a_named_backend_that_fails_gives_503_with_its_attempt(chain) -> None:
    url, _ = chain
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "x", "size": "64x64", "backend": "raiser"})
    assert r.status_code == 503
    assert [(a["backend"], a["outcome"]) for a in r.json()["attempts"]] == [("raiser", "error")]


def test_when_every_backend_fails_the_answer_is_503_with_the_attempts(chain) -> None:
    url, _ = chain
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "x", "size": "64x64", "backend": "gpu"})
    assert r.status_code == 503
    body = r.json()
    reason = "not deployed: needs 1 GPU, the cluster has 0"
    [attempt] = body["attempts"]
    assert (attempt["backend"], attempt["outcome"], attempt["error"]) == ("gpu", "skipped", reason)
    assert attempt["elapsed_ms"] < 1


@pytest.fixture(scope="module")
def tripping(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("circuit")
    journal = tmp / "flaky.log"
    journal.touch()
    run_gateway(
        "circuit",
        {"flaky": Route(5)},
        {"flaky": Fake.options(name="flaky").bind("raise", str(journal))},
        tmp / "images",
        circuit=CircuitArgs(failure_threshold=2, cooldown_s=600),
    )
    yield f"{serve_url}/circuit", journal
    serve.delete("circuit")


def test_a_backend_that_keeps_failing_trips_its_circuit(tripping) -> None:
    url, journal = tripping
    outcomes = []
    for _ in range(3):
        r = httpx.post(f"{url}/api/generate/image", json={"prompt": "p", "size": "64x64"}, timeout=30)
        assert r.status_code == 200
        assert r.json()["backend"] == "svg"
        outcomes.append(r.json()["attempts"][0])
    assert [a["outcome"] for a in outcomes] == ["error", "error", "skipped"]
    assert outcomes[2]["error"].startswith("circuit open after 2 consecutive failures")
    assert journal.read_text().count("called") == 2  # the third request never reached it
    health = httpx.get(f"{url}/healthz").json()
    assert health["backends"]["flaky"]["circuit"] == "open"


@pytest.fixture(scope="module")
def cold(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("cold")
    journal = tmp / "sleepy.log"
    journal.touch()
    dozy_journal = tmp / "dozy.log"
    dozy_journal.touch()
    # Asks for more GPUs than the test cluster has: it scales from zero to a replica that never schedules.
    sleepy = Fake.options(
        name="sleepy",
        autoscaling_config={"min_replicas": 0, "max_replicas": 1, "initial_replicas": 0},
        ray_actor_options={"num_cpus": 0.1, "num_gpus": 2},
    ).bind("ok", str(journal))
    # Scaled to zero but schedulable: the wake-up call must bring it up for the requests after.
    dozy = Fake.options(
        name="dozy", autoscaling_config={"min_replicas": 0, "max_replicas": 1, "initial_replicas": 0}
    ).bind("ok", str(dozy_journal))
    routes = {"sleepy": Route(30, cold_start="skip"), "dozy": Route(30, cold_start="skip")}
    run_gateway("cold", routes, {"sleepy": sleepy, "dozy": dozy}, tmp / "images")
    yield f"{serve_url}/cold", dozy_journal
    serve.delete("cold")


def test_a_cold_backend_with_policy_skip_is_skipped_at_once_and_woken(cold) -> None:
    url, dozy_journal = cold
    started = time.monotonic()
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "p", "size": "64x64"}, timeout=30)
    assert r.status_code == 200, r.text
    outcomes = [(a["backend"], a["outcome"]) for a in r.json()["attempts"]]
    assert outcomes == [("sleepy", "skipped"), ("dozy", "skipped"), ("svg", "ok")]
    assert all("no running replica" in a["error"] for a in r.json()["attempts"][:2])
    assert time.monotonic() - started < 10  # not its 30 s timeout
    # The skip woke it: a later request finds it running and is served by it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.post(f"{url}/api/generate/image", json={"prompt": "later", "size": "64x64"}, timeout=30)
        if r.json()["backend"] == "dozy":
            break
        time.sleep(0.5)
    assert r.json()["backend"] == "dozy"
    assert dozy_journal.read_text().startswith("ping\n")
