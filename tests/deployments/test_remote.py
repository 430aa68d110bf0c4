"""Remote providers through the gateway, against a fake OpenAI/Gemini/fal server on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from ray import serve

from cascade.config import Route
from deployments.remote import RemoteArgs, RemoteBackend
from tests.fakes.backends import Fake, run_gateway
from tests.fakes.providers import HANG, FakeProviders, refusal, server_error


@pytest.fixture(scope="module")
def remote(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("remote")
    journal = tmp / "pillow.log"
    journal.touch()
    with FakeProviders() as fake:
        args = RemoteArgs.model_validate(
            {
                "providers": ["fal", "openai", "gemini"],
                "overrides": {
                    "openai": {"base_url": fake.openai_base, "attempt_timeout_s": 2},
                    "gemini": {"base_url": fake.gemini_base},
                },
                "allow_http_hosts": [fake.host],
                "timeout_s": 20,
            }
        )
        # Keys reach the replica through its environment only; fal has none and must be skipped.
        env = {"OPENAI_API_KEY": fake.keys["openai"], "GEMINI_API_KEY": fake.keys["gemini"]}
        backend = RemoteBackend.options(
            name="remote", ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": env}}
        ).bind(args)
        failing_pillow = Fake.options(name="pillow").bind("raise", str(journal))
        routes = {"pillow": Route(5), "remote": Route(20, remote=True)}
        run_gateway("remote", routes, {"pillow": failing_pillow, "remote": backend}, tmp / "images")
        yield f"{serve_url}/remote", fake
        serve.delete("remote")


def _logged(text: str, timeout_s: float = 10) -> bool:
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(text in f.read_text(errors="replace") for f in logs.glob("replica_remote_remote_*.log")):
            return True
        time.sleep(0.2)
    return False


def _post(url: str, **body: object) -> httpx.Response:
    body = {"prompt": "a lighthouse", "size": "300x200", **body}
    return httpx.post(f"{url}/api/generate/image", json=body, timeout=60)


def test_local_requests_send_nothing_to_the_providers(remote) -> None:
    url, fake = remote
    before = len(fake.received())
    r = _post(url, local=True)
    assert r.status_code == 200 and r.json()["backend"] == "svg"
    assert [(a["backend"], a["outcome"]) for a in r.json()["attempts"]] == [
        ("pillow", "error"),
        ("remote", "skipped"),
        ("svg", "ok"),
    ]
    assert len(fake.received()) == before


def test_with_local_backends_failing_the_providers_are_tried_in_order(remote) -> None:
    url, fake = remote
    fake.script("openai", server_error("openai", 503), server_error("openai", 503), server_error("openai", 503))
    r = _post(url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(a["backend"], a["outcome"]) for a in body["attempts"]] == [
        ("pillow", "error"),
        ("remote:fal", "skipped"),
        ("remote:openai", "error"),
        ("remote:gemini", "ok"),
    ]
    assert body["attempts"][1]["error"] == "no FAL_KEY or FAL_API_KEY set"
    assert body["backend"] == "remote" and body["provider"] == "gemini:gemini-nano-banana-2.1"
    assert (body["width"], body["height"]) == (300, 200)
    sent = fake.received("gemini")[-1]
    assert sent.headers["x-goog-api-key"] == fake.keys["gemini"]
    assert fake.keys["openai"] not in r.text and fake.keys["gemini"] not in r.text
    # The provider client's own log lines (its retries) reach the replica's log with the request's id.
    assert _logged(f"{body['request_id']} -- openai server (HTTP 503): try 2 of 3")


def test_a_hung_provider_costs_its_attempt_timeout_and_the_next_one_serves(remote) -> None:
    url, fake = remote
    fake.script("openai", HANG)
    started = time.monotonic()
    r = _post(url)
    assert r.status_code == 200, r.text
    assert [(a["backend"], a["outcome"]) for a in r.json()["attempts"]][2:] == [
        ("remote:openai", "timeout"),
        ("remote:gemini", "ok"),
    ]
    assert 2000 <= r.json()["attempts"][2]["elapsed_ms"] < 4000
    assert time.monotonic() - started < 10


def test_a_refusal_ends_the_request_with_422_and_the_reason(remote) -> None:
    url, fake = remote
    fake.script("openai", refusal("openai"))
    gemini_before = len(fake.received("gemini"))
    r = _post(url)
    assert r.status_code == 422, r.text
    attempts = r.json()["attempts"]
    assert attempts[-1]["backend"] == "remote:openai" and "refused" in attempts[-1]["error"]
    assert len(fake.received("gemini")) == gemini_before  # not laundered through the next provider
