"""Keys and limits as users meet them: real Serve, two gateway replicas, a real redis-server, keys in the SQLite index
made with the CLI, real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from ray import serve

from cascade.access_config import AccessConfig
from cascade.config import CircuitArgs, Route, StorageArgs
from cascade.index import Index
from deployments.access import serve_http_host
from tests.conftest import ROOT
from tests.fakes.backends import Fake, run_gateway
from tests.services.keys import make_key
from tests.services.redis_server import RedisServer, free_port, redis_server
from tests.services.secret_scan import leaks
from tests.services.sentry_ingest import Ingest, sentry_ingest

ASK = {"prompt": "a lighthouse", "size": "64x64"}


@dataclass
class App:
    url: str
    database: str

    def key(self, name: str, *, backends: list[str] | None = None, admin: bool = False, **quota: Any) -> str:
        """A key made straight in the index (the CLI path has its own test below)."""
        return make_key(self.database, name, backends=backends, admin=admin, **quota)

    def post(self, key: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        return httpx.post(f"{self.url}/api/generate/image", json=body or ASK, headers=headers, timeout=60)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={} if key is None else {"x-api-key": key}, timeout=30)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _deploy(app: str, tmp: Path, routes: dict[str, Route], modes: dict[str, str], access: dict[str, Any], **kw: Any):
    database = f"sqlite:///{tmp / 'index.sqlite3'}"
    Index(database).migrate()  # so that keys can be made before the gateway has started
    journal = tmp / "journal.log"
    journal.touch()
    backends = {name: Fake.options(name=name).bind(mode, str(journal)) for name, mode in modes.items()}
    storage = StorageArgs(database_url=database)
    config = AccessConfig.model_validate(access)
    run_gateway(app, routes, backends, tmp / "images", storage=storage, access=config, **kw)
    return database


@pytest.fixture(scope="module")
def guarded(serve_url: str, tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[App]:
    """Two gateway replicas sharing limits in Redis; `remote` first in the chain, so that spend limits show."""
    tmp = tmp_path_factory.mktemp("guarded")
    # `hanger` (after pillow, so no chain reaches it) holds a job for as long as the test wants it to run.
    routes = {"remote": Route(10, remote=True), "qwen_image": Route(10), "pillow": Route(10), "hanger": Route(120)}
    access = {
        "auth": "required",
        "key_cache_s": 0.5,
        "limits": {"prices_usd": {"fake:*": 0.02}, "redis_prefix": f"t{uuid.uuid4().hex[:8]}"},
    }
    database = _deploy(
        "guarded",
        tmp,
        routes,
        {"remote": "ok", "qwen_image": "ok", "pillow": "ok", "hanger": "hang"},
        access,
        env={"CASCADE_REDIS_URL": redis.url},
        replicas=2,
    )
    yield App(f"{serve_url}/guarded", database)
    serve.delete("guarded")


def test_without_a_valid_key_every_spending_route_is_401_and_healthz_stays_open(guarded: App) -> None:
    for key, says in [(None, "an API key is required"), ("csk_nope", "invalid API key")]:
        r = guarded.post(key)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Bearer realm="cascade"' and says in r.json()["error"]
        assert guarded.get("/api/images", key).status_code == 401
        assert guarded.get(f"/api/images/{uuid.uuid4()}", key).status_code == 401
    health = guarded.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "auth": "required"}
    full = guarded.get("/healthz", guarded.key("ops", admin=True)).json()
    assert set(full["backends"]) == {"remote", "qwen_image", "pillow", "hanger", "svg"}
    assert guarded.get("/healthz", guarded.key("app")).json() == {"status": "ok", "auth": "required"}


def test_a_key_made_with_the_cli_generates_and_its_id_not_the_key_is_on_the_row(guarded: App) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "cascade.keys", "--database-url", guarded.database, "create", "app", "--rate", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    r = guarded.post(key)
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-limit"] == "50" and "x-ratelimit-remaining" in r.headers
    assert r.headers["x-cascade-replica"]
    body = r.json()
    record = guarded.get(f"/api/images/{body['image_id']}", key).json()
    assert record["api_key_id"] == key[4:16]
    assert key not in str(record)
    # Saved images stay open by their unguessable name: an <img src> cannot send a key.
    assert guarded.get(body["saved"]).status_code == 200


def test_each_key_sees_and_deletes_only_its_own_history_and_admins_see_all(guarded: App) -> None:
    alice, bob, ops = guarded.key("alice"), guarded.key("bob"), guarded.key("ops", admin=True)
    image = guarded.post(alice, {**ASK, "prompt": "alice's secret garden"}).json()["image_id"]
    assert image in [i["id"] for i in guarded.get("/api/images?q=secret garden", alice).json()["items"]]
    assert guarded.get("/api/images?q=secret garden", bob).json()["items"] == []
    assert guarded.get(f"/api/images/{image}", bob).status_code == 404
    assert httpx.delete(f"{guarded.url}/api/images/{image}", headers={"x-api-key": bob}).status_code == 204
    assert guarded.get(f"/api/images/{image}", alice).status_code == 200  # bob's delete changed nothing
    assert image in [i["id"] for i in guarded.get("/api/images?q=secret garden", ops).json()["items"]]
    assert httpx.delete(f"{guarded.url}/api/images/{image}", headers={"x-api-key": alice}).status_code == 204
    assert guarded.get(f"/api/images/{image}", alice).status_code == 404


def test_a_key_limited_to_pillow_gets_403_for_qwen_image_and_its_chain_skips_the_rest(guarded: App) -> None:
    key = guarded.key("pillow only", backends=["pillow"])
    refused = guarded.post(key, {**ASK, "backend": "qwen_image"})
    assert refused.status_code == 403 and refused.json()["field"] == "backend"
    assert "may not use backend 'qwen_image'" in refused.json()["error"]
    r = guarded.post(key)
    assert r.status_code == 200, r.text
    attempts = [(a["backend"], a["outcome"], a["error"]) for a in r.json()["attempts"]]
    key_id = key[4:16]
    assert attempts == [
        ("remote", "skipped", f"key {key_id} may not use remote"),
        ("qwen_image", "skipped", f"key {key_id} may not use qwen_image"),
        ("pillow", "ok", None),
    ]


def test_past_its_rate_a_key_gets_429_from_either_replica_and_two_replicas_do_not_double_it(guarded: App) -> None:
    rate, burst = 0.2, 3
    key = guarded.key("bursty", rate_per_s=rate, burst=burst)
    served: list[str] = []
    refused_by: dict[str, httpx.Response] = {}
    started = time.monotonic()
    for _ in range(60):
        r = guarded.post(key, {**ASK, "backend": "svg"})
        replica = r.headers["x-cascade-replica"]
        if r.status_code == 200:
            served.append(replica)
        else:
            assert r.status_code == 429, r.text
            refused_by.setdefault(replica, r)
        if len(refused_by) == 2 and len(served) >= burst:
            break
    elapsed = time.monotonic() - started
    # One limit for the key however the requests spread: the burst, plus what the rate refilled meanwhile.
    # Each replica counting on its own would have let 2 x burst through.
    assert burst <= len(served) <= burst + int(elapsed * rate) + 1, (served, elapsed)
    assert len(refused_by) == 2, "every 429 came from one replica; the other never refused"
    for r in refused_by.values():
        assert 1 <= int(r.headers["retry-after"]) <= 1 / rate + 1
        assert r.headers["x-ratelimit-limit"] == str(burst) and r.headers["x-ratelimit-remaining"] == "0"
        assert r.json()["error"].startswith("over 0.2 requests/s for key ")


def test_over_its_daily_spend_the_chain_goes_on_locally_and_naming_remote_is_429(guarded: App) -> None:
    key = guarded.key("thrifty", daily_spend_usd=0.03)  # one image at $0.02, not two
    first = guarded.post(key)
    assert first.status_code == 200 and first.json()["backend"] == "remote"
    second = guarded.post(key)
    assert second.status_code == 200, second.text
    attempts = second.json()["attempts"]
    assert [(a["backend"], a["outcome"]) for a in attempts] == [("remote", "skipped"), ("qwen_image", "ok")]
    assert "daily remote spend limit ($0.03) reached" in attempts[0]["error"]
    named = guarded.post(key, {**ASK, "backend": "remote"})
    assert named.status_code == 429 and int(named.headers["retry-after"]) >= 1


def test_daily_images_count_what_was_made(guarded: App) -> None:
    key = guarded.key("two a day", daily_images=2)
    assert guarded.post(key, {**ASK, "size": "1x1"}).status_code == 422  # invalid: nothing made, nothing counted
    assert [guarded.post(key).status_code for _ in range(3)] == [200, 200, 429]


# --- the OpenAI Images API and jobs, behind the same keys and limits ------------------------------------------------


def _sdk(app: App, key: str) -> openai.OpenAI:
    # No retries: the SDK retries 429 and 5xx by itself, which would hide the answer under test.
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0, timeout=60)


def test_the_openai_sdk_meets_keys_and_limits_as_its_own_errors(guarded: App) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        _sdk(guarded, "csk_nope").images.generate(model="pillow", prompt="a lighthouse", size="64x64")
    assert denied.value.status_code == 401 and denied.value.code == "invalid_api_key"
    assert denied.value.response.headers["www-authenticate"] == 'Bearer realm="cascade"'
    with pytest.raises(openai.AuthenticationError):
        _sdk(guarded, "csk_nope").models.list()

    pillow = _sdk(guarded, guarded.key("sdk pillow", backends=["pillow"]))
    assert [m.id for m in pillow.models.list().data] == ["cascade", "pillow"]  # what this key may use
    with pytest.raises(openai.PermissionDeniedError) as forbidden:
        pillow.images.generate(model="qwen_image", prompt="a lighthouse", size="64x64")
    assert forbidden.value.status_code == 403 and forbidden.value.param == "model"
    assert "may not use backend 'qwen_image'" in forbidden.value.message
    with pytest.raises(openai.PermissionDeniedError):
        pillow.models.retrieve("qwen_image")
    image = pillow.images.generate(model="cascade", prompt="a lighthouse", size="64x64")
    assert image.data[0].model_extra["backend"] == "pillow"  # the chain skipped what the key may not use

    bursty = _sdk(guarded, guarded.key("sdk bursty", rate_per_s=0.05, burst=1))
    raw = bursty.images.with_raw_response.generate(model="pillow", prompt="a lighthouse", size="64x64")
    assert raw.headers["x-ratelimit-limit"] == "1" and raw.headers["x-ratelimit-remaining"] == "0"
    with pytest.raises(openai.RateLimitError) as limited:
        bursty.images.generate(model="pillow", prompt="a lighthouse", size="64x64")
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"
    assert limited.value.type == "rate_limit_error"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 21
    assert limited.value.response.headers["x-ratelimit-remaining"] == "0"


def test_n_images_count_against_the_day_together(guarded: App) -> None:
    client = _sdk(guarded, guarded.key("sdk two a day", daily_images=2))
    with pytest.raises(openai.RateLimitError, match="daily image quota"):
        client.images.generate(model="pillow", prompt="a lighthouse", size="64x64", n=3)
    assert len(client.images.generate(model="pillow", prompt="a lighthouse", size="64x64", n=2).data) == 2
    with pytest.raises(openai.RateLimitError):
        client.images.generate(model="pillow", prompt="a lighthouse", size="64x64")


def _submit(app: App, key: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {} if key is None else {"x-api-key": key}
    return httpx.post(f"{app.url}/api/jobs", json=body or ASK, headers=headers, timeout=30)


def _until(app: App, key: str, job_id: str, statuses: set[str], timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline and job.get("status") not in statuses:
        r = app.get(f"/api/jobs/{job_id}", key)
        assert r.status_code == 200, r.text
        job = r.json()
        time.sleep(0.1)
    return job


def test_a_job_is_admitted_like_a_generate_and_only_its_key_and_admins_see_it(guarded: App) -> None:
    assert _submit(guarded, None).status_code == 401
    forbidden = _submit(guarded, guarded.key("jobs pillow", backends=["pillow"]), {**ASK, "backend": "qwen_image"})
    assert forbidden.status_code == 403 and forbidden.json()["field"] == "backend"

    alice, bob, ops = guarded.key("job alice", daily_images=1), guarded.key("job bob"), guarded.key("o", admin=True)
    submitted = _submit(guarded, alice, {**ASK, "backend": "pillow"})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["key_id"] == alice[4:16] and alice not in submitted.text
    done = _until(guarded, alice, job["id"], {"done", "failed"})
    assert done["status"] == "done", done
    record = guarded.get(f"/api/images/{done['result']['image_id']}", alice).json()
    assert record["api_key_id"] == alice[4:16]
    # Another key can neither read, follow nor cancel it (as if there were no such job); an admin key can read it.
    for method, path in [("GET", ""), ("GET", "/events"), ("DELETE", "")]:
        r = httpx.request(method, f"{guarded.url}/api/jobs/{job['id']}{path}", headers={"x-api-key": bob}, timeout=30)
        assert r.status_code == 404, (method, path, r.text)
    assert guarded.get(f"/api/jobs/{job['id']}", ops).json()["status"] == "done"
    # The job made the key's one image of the day: the next job is refused now, not when it would run.
    refused = _submit(guarded, alice)
    assert refused.status_code == 429 and "daily image quota" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1


def test_a_job_holds_its_key_s_concurrency_slot_until_it_ends(guarded: App) -> None:
    key = guarded.key("one at a time", max_concurrency=1)
    first = _submit(guarded, key, {**ASK, "backend": "hanger"})
    assert first.status_code == 202, first.text
    job_id = first.json()["id"]
    assert _until(guarded, key, job_id, {"running"})["status"] == "running"
    for refused in (_submit(guarded, key), guarded.post(key)):  # from either replica: the slot is in Redis
        assert refused.status_code == 429 and "1 requests already in flight" in refused.json()["error"]
    cancelled = httpx.delete(f"{guarded.url}/api/jobs/{job_id}", headers={"x-api-key": key}, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The queuing replica frees the slot once the run has returned; a moment after the job ended, at most.
    deadline = time.monotonic() + 15
    while (r := guarded.post(key, {**ASK, "backend": "svg"})).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 200, r.text


def test_auth_off_on_a_public_host_refuses_to_start(serve_url: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="open-door failed"):
        run_gateway("open-door", {}, {}, tmp_path / "images", http_host="0.0.0.0")
    # The app fails; why is on its gateway deployment.
    message = serve.status().applications["open-door"].deployments["gateway"].message
    serve.delete("open-door")
    assert "auth is off but the HTTP host '0.0.0.0' is not loopback" in message
    assert "auth_off_on_public_host: true" in message


def test_with_ray_s_haproxy_the_gateway_counts_as_public_whatever_http_options_say() -> None:
    # RAY_SERVE_ENABLE_HA_PROXY=1 makes Ray bind each ingress replica's own port on every interface (so HAProxy on
    # other nodes reaches it): a laptop's auth-off gateway would be open to the network through it.
    host = serve_http_host({"RAY_SERVE_ENABLE_HA_PROXY": "1"})
    with pytest.raises(ValueError, match="is not loopback"):
        AccessConfig().check_host(host)
    AccessConfig(auth="required").check_host(host)


# --- Redis down, and Sentry: one replica, a backend that always fails ----------------------------------------------


@pytest.fixture(scope="module")
def ingest() -> Iterator[Ingest]:
    with sentry_ingest() as server:
        yield server


@pytest.fixture(scope="module")
def degraded(serve_url: str, tmp_path_factory: pytest.TempPathFactory, ingest: Ingest) -> Iterator[App]:
    """Limits fail open while Redis is unreachable (a password in its URL, which must never reach Sentry); Sentry on."""
    tmp = tmp_path_factory.mktemp("degraded")
    routes = {"broken": Route(5), "remote": Route(5, remote=True), "pillow": Route(5)}
    access = {"auth": "required", "limits": {"prices_usd": {"fake:*": 0.02}, "on_redis_error": "fail_open"}}
    env = {"CASCADE_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0", "SENTRY_DSN": ingest.dsn()}
    database = _deploy(
        "degraded",
        tmp,
        routes,
        {"broken": "raise", "remote": "ok", "pillow": "ok"},
        access,
        env=env,
        circuit=CircuitArgs(failure_threshold=1000),  # every request reaches the broken backend
    )
    yield App(f"{serve_url}/degraded", database)
    serve.delete("degraded")


REDIS_PASSWORD = "hunter2-" + uuid.uuid4().hex


def test_redis_down_rate_limits_fail_open_as_configured_but_spend_fails_closed(degraded: App) -> None:
    limited = degraded.key("limited", rate_per_s=0.001, burst=1)
    assert [degraded.post(limited).status_code for _ in range(3)] == [200, 200, 200]
    spender = degraded.key("spender", daily_spend_usd=5)
    r = degraded.post(spender)
    assert r.status_code == 200, r.text
    attempts = [(a["backend"], a["outcome"], a["error"]) for a in r.json()["attempts"]]
    assert attempts == [
        ("broken", "error", "weights exploded"),
        ("remote", "skipped", "spend limits unavailable; retry shortly"),
        ("pillow", "ok", None),
    ]
    named = degraded.post(spender, {**ASK, "backend": "remote"})
    assert named.status_code == 503 and named.headers["retry-after"] == "1"


def test_backend_errors_reach_sentry_tagged_with_backend_outcome_request_and_key_and_no_secret(
    degraded: App, ingest: Ingest
) -> None:
    key = degraded.key("watched")
    prompt = f"a very private prompt {uuid.uuid4().hex}"
    r = degraded.post(key, {**ASK, "prompt": prompt})
    assert r.status_code == 200, r.text
    request_id = r.json()["request_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [e for e in ingest.events() if e.get("tags", {}).get("request_id") == request_id]
        if mine:
            break
        time.sleep(0.5)
    assert len(mine) == 1, ingest.events()
    tags = mine[0]["tags"]
    assert tags["backend"] == "broken" and tags["outcome"] == "error" and tags["key_id"] == key[4:16]
    assert tags["component"] == "gateway" and mine[0]["release"].startswith("cascade@")
    assert "weights exploded" in str(mine[0].get("message") or mine[0].get("logentry"))
    with ingest.lock:
        envelopes = list(ingest.envelopes)
    for envelope in envelopes:
        for secret in (key[len("csk_") + 13 :], REDIS_PASSWORD):
            assert not leaks(envelope.raw, secret)
        assert prompt.encode() not in envelope.raw
