"""The service as users meet it: real Serve, real HTTP on loopback, the real builder and Pillow backend."""

from __future__ import annotations

import base64
import io
import json
import socket
import sys
import time

import httpx
import pytest
from PIL import Image
from ray import serve

from cascade.config import Route
from cascade.errors import RequestRejected
from cascade.schemas import GenerateResponse
from deployments.app import PROJECT_ROOT, AppArgs, build_app
from tests.fakes.backends import Fake, run_gateway, wait_running

SEED_EXAMPLE = {"prompt": "a friendly robot", "size": "800x600"}


@pytest.fixture(scope="module")
def gateway(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    images = tmp_path_factory.mktemp("images")
    args = AppArgs.model_validate(
        {
            "order": ["pillow", "script", "svg"],
            "storage_dir": str(images),
            "backends": {
                "pillow": {"deployment": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 1}}},
                "script": {
                    "command": [sys.executable, str(PROJECT_ROOT / "models/local/generate_cpu_image.py")],
                    "deployment": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.5}},
                },
            },
        }
    )
    serve.run(build_app(args), name="gw", route_prefix="/gw", blocking=False)
    wait_running("gw")
    yield f"{serve_url}/gw", images
    serve.delete("gw")


def _png(data_uri: str) -> Image.Image:
    header, payload = data_uri.split(",", 1)
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def test_the_seed_example_returns_an_800x600_png_that_is_also_saved(gateway) -> None:
    url, images = gateway
    r = httpx.post(f"{url}/api/generate/image", json=SEED_EXAMPLE, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _png(body["dataUri"]).size == (800, 600)
    assert body["provider"] == body["backend"] == "pillow"
    assert (body["width"], body["height"]) == (800, 600)
    assert body["saved"].startswith("/generated/") and body["content"] == body["saved"]
    assert body["attempts"][0]["backend"] == "pillow" and body["attempts"][0]["outcome"] == "ok"
    assert body["request_id"] and r.headers.get("x-request-id") == body["request_id"]
    served = httpx.get(f"{url}{body['saved']}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == base64.b64decode(body["dataUri"].split(",", 1)[1])
    assert (images / body["saved"].removeprefix("/generated/")).is_file()
    record = httpx.get(f"{url}/api/images/{body['image_id']}").json()
    assert (record["url"], record["prompt"], record["size"]) == (body["saved"], "a friendly robot", "800x600")


def test_same_seed_same_image_and_the_seed_is_reported(gateway) -> None:
    url, _ = gateway
    req = {"prompt": "sunset over the ocean", "size": "128x96", "seed": 7}
    a, b = (httpx.post(f"{url}/api/generate/image", json=req, timeout=60).json() for _ in range(2))
    assert a["seed"] == b["seed"] == 7 and a["dataUri"] == b["dataUri"] and a["saved"] != b["saved"]


def test_the_script_backend_runs_the_seed_protocol(gateway) -> None:
    url, _ = gateway
    req = {"prompt": "a red fox", "size": "65x97", "backend": "script"}
    r = httpx.post(f"{url}/api/generate/image", json=req, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["backend"] == "script" and _png(r.json()["dataUri"]).size == (65, 97)


@pytest.mark.parametrize(
    ("content", "headers", "status", "field"),
    [
        (b'{"prompt": "x"', {"content-type": "application/json"}, 400, "body"),
        (b'{"prompt": "x"}', {"content-type": "text/plain"}, 415, "content-type"),
        (b'{"prompt": "' + b"x" * 300_000 + b'"}', {"content-type": "application/json"}, 413, "body"),
        (b'{"prompt": ""}', {"content-type": "application/json"}, 422, "prompt"),
        (b'{"prompt": "' + b"x" * 4001 + b'"}', {"content-type": "application/json"}, 422, "prompt"),
        (b'{"prompt": "x", "size": "10x10"}', {"content-type": "application/json"}, 422, "size"),
        (b'{"prompt": "x", "size": "2048x4096"}', {"content-type": "application/json"}, 422, "size"),
        (b'{"prompt": "x", "size": "big"}', {"content-type": "application/json"}, 422, "size"),
        (b'{"prompt": "x", "backend": "dalle"}', {"content-type": "application/json"}, 422, "backend"),
        (b'{"prompt": "x", "local": "sure"}', {"content-type": "application/json"}, 422, "local"),
        (b'"just a string"', {"content-type": "application/json"}, 422, "body"),
        (b'{"prompt": "\\ud800"}', {"content-type": "application/json"}, 422, "prompt"),
        (b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}", {"content-type": "application/json"}, 400, "body"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field_and_the_server_keeps_serving(
    gateway, content: bytes, headers: dict[str, str], status: int, field: str
) -> None:
    url, _ = gateway
    r = httpx.post(f"{url}/api/generate/image", content=content, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    ok = httpx.post(f"{url}/api/generate/image", json={"prompt": "still here", "size": "64x64"}, timeout=30)
    assert ok.status_code == 200


@pytest.mark.parametrize("prompt", ["nul \u0000 and bell \u0007", "emoji 🤖🌅 and <svg>&amp;", "x" * 4000])
def test_odd_but_valid_prompts_are_served(gateway, prompt: str) -> None:
    url, _ = gateway
    for backend in ("pillow", "svg"):
        body = json.dumps({"prompt": prompt, "size": "64x64", "backend": backend})
        r = httpx.post(f"{url}/api/generate/image", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["backend"] == backend


@pytest.mark.parametrize(
    "path",
    [
        "/generated/..%2F..%2Fetc%2Fpasswd",
        "/generated/%2Fetc%2Fpasswd",
        "/generated/..",
        "/generated/20260101T000000-pillow-000000000000.png",
        "/generated/nothing.png",
        "/generated/%2e%2e%2fserve_config.yaml",
    ],
)
def test_generated_refuses_path_tricks_and_unknown_names(gateway, path: str) -> None:
    url, _ = gateway
    r = httpx.get(f"{url}{path}")
    if httpx.URL(f"{url}{path}").raw_path == httpx.URL(url).raw_path:
        # The client resolves "/generated/.." before sending: the app's own root, sent on to the web page at "/".
        assert r.status_code == 307 and httpx.URL(url).join(r.headers["location"]) == httpx.URL(f"{url}/")
    else:
        assert r.status_code == 404
    assert b"root:" not in r.content


def test_a_python_handle_call_gets_the_same_result_structure(gateway) -> None:
    url, _ = gateway
    handle = serve.get_app_handle("gw")
    result = handle.generate.remote({"prompt": "a friendly robot", "size": "96x64", "seed": 3}).result(timeout_s=60)
    assert isinstance(result, GenerateResponse)
    over_http = httpx.post(
        f"{url}/api/generate/image", json={"prompt": "a friendly robot", "size": "96x64", "seed": 3}, timeout=60
    ).json()
    assert set(result.to_json()) == set(over_http)
    assert result.data_uri == over_http["dataUri"] and result.backend == "pillow"
    with pytest.raises(RequestRejected) as err:
        handle.generate.remote({"prompt": "x", "size": "1x1"}).result(timeout_s=30)
    assert err.value.field == "size"


def test_healthz_reports_each_backend(gateway) -> None:
    url, _ = gateway
    health = httpx.get(f"{url}/healthz").json()
    assert health["order"] == ["pillow", "script", "svg"]
    pillow = health["backends"]["pillow"]
    assert pillow["deployed"] and pillow["replicas"] == {"RUNNING": 1} and pillow["circuit"] == "closed"


@pytest.fixture(scope="module")
def with_remote(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("remote")
    journal = tmp / "remote.log"
    journal.touch()
    blocker = tmp / "blocker"
    blocker.write_text("a file, not a folder")
    backends = {"remote": Fake.options(name="remote").bind("ok", str(journal))}
    # Under a plain file: no image can be saved here.
    run_gateway("remotegw", {"remote": Route(5, remote=True)}, backends, blocker / "images")
    yield f"{serve_url}/remotegw", journal
    serve.delete("remotegw")


def test_local_requests_never_call_the_remote_backend(with_remote) -> None:
    url, journal = with_remote
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "p", "size": "64x64", "local": True}, timeout=30)
    assert r.status_code == 200
    first = r.json()["attempts"][0]
    assert (first["backend"], first["outcome"]) == ("remote", "skipped")
    assert first["error"] == "local request: remote backends are not called" and first["elapsed_ms"] < 1
    time.sleep(0.2)
    assert "called" not in journal.read_text()
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "p", "size": "64x64", "local": False}, timeout=30)
    assert r.json()["backend"] == "remote" and "called p" in journal.read_text()
    named = {"prompt": "p", "size": "64x64", "local": True, "backend": "remote"}
    r = httpx.post(f"{url}/api/generate/image", json=named, timeout=30)
    assert r.status_code == 422 and r.json()["field"] == "backend"


def test_an_image_that_cannot_be_saved_is_still_returned_with_the_reason(with_remote) -> None:
    url, _ = with_remote
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "p", "size": "64x64", "local": True}, timeout=30)
    body = r.json()
    assert r.status_code == 200 and body["backend"] == "svg"
    assert body["saved"] is None and body["content"] == body["dataUri"]
    assert body["dataUri"].startswith("data:image/svg+xml;base64,")
    assert body["save_error"].startswith("image not saved:")
    storage = httpx.get(f"{url}/healthz").json()["storage"]
    assert storage["ok"] is False and storage["objects"]["ok"] is False and storage["saves"]["failed"] >= 1


@pytest.fixture(scope="module")
def hanging(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hanging")
    journal = tmp / "hanger.log"
    journal.touch()
    backends = {"hanger": Fake.options(name="hanger").bind("hang", str(journal))}
    run_gateway("hanggw", {"hanger": Route(120)}, backends, tmp / "images", request_timeout_s=120)
    yield f"{serve_url}/hanggw", journal
    serve.delete("hanggw")


def test_a_client_that_hangs_up_cancels_the_backend_call(hanging) -> None:
    url, journal = hanging
    parsed = httpx.URL(url)
    body = json.dumps({"prompt": "gone", "size": "64x64"}).encode()
    head = (
        f"POST {parsed.path}/api/generate/image HTTP/1.1\r\nHost: {parsed.host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    # Hang up only once the backend has the call (on a loaded machine that can take longer than any fixed wait).
    with socket.create_connection((parsed.host, parsed.port), timeout=30) as client:
        client.sendall(head.encode() + body)
        deadline = time.monotonic() + 30
        while "called gone" not in journal.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert journal.read_text().splitlines() == ["called gone"]
    # The client is gone: Serve's proxy cancels the request, the chain cancels its backend call.
    deadline = time.monotonic() + 15
    while "cancelled" not in journal.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert journal.read_text().splitlines() == ["called gone", "cancelled"]
