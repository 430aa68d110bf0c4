"""Saved images and the history API over real HTTP, on folder+SQLite and on S3 (moto_server) + PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray import serve

from cascade.config import StorageArgs
from cascade.index.migrate import head
from tests.conftest import STACKS, Stack, make_stack
from tests.fakes.backends import run_gateway


@pytest.fixture(scope="module", params=STACKS)
def history(
    request: pytest.FixtureRequest, serve_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Stack]]:
    tmp = tmp_path_factory.mktemp("history")
    stack = make_stack(request.param, tmp, request)
    app = "history-" + request.param.replace("+", "-")
    storage = StorageArgs(url=stack.storage_url, database_url=stack.database_url)
    run_gateway(app, {}, {}, tmp / "unused", storage=storage, env=stack.env)
    yield f"{serve_url}/{app}", stack
    serve.delete(app)


def generate(url: str, prompt: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": prompt, "size": "96x64"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["save_error"] is None and body["saved"] and body["image_id"]
    return body


def test_saved_images_are_streamed_with_an_etag_ranges_and_304(history: tuple[str, Stack]) -> None:
    url, _ = history
    body = generate(url, "validators")
    original = base64.b64decode(body["dataUri"].split(",", 1)[1])
    whole = httpx.get(url + body["saved"])
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["content-type"] == "image/svg+xml" and whole.headers["accept-ranges"] == "bytes"
    assert int(whole.headers["content-length"]) == len(original) and "immutable" in whole.headers["cache-control"]
    assert "sandbox" in whole.headers["content-security-policy"]
    etag = whole.headers["etag"]

    same = httpx.get(url + body["saved"], headers={"if-none-match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag

    part = httpx.get(url + body["saved"], headers={"range": "bytes=5-14"})
    assert part.status_code == 206 and part.content == original[5:15]
    assert part.headers["content-range"] == f"bytes 5-14/{len(original)}"
    tail = httpx.get(url + body["saved"], headers={"range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == original[-7:]
    beyond = httpx.get(url + body["saved"], headers={"range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(original)}"
    stale = httpx.get(url + body["saved"], headers={"range": "bytes=0-3", "if-range": '"another-version"'})
    assert stale.status_code == 200 and stale.content == original
    multi = httpx.get(url + body["saved"], headers={"range": "bytes=0-1,5-6"})
    assert multi.status_code == 200 and multi.content == original
    head = httpx.head(url + body["saved"])
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    assert int(head.headers["content-length"]) == len(original)


def test_history_pages_newest_first_searches_prompts_and_filters_backends(history: tuple[str, Stack]) -> None:
    url, _ = history
    tag = uuid.uuid4().hex[:8]
    prompts = [f"{tag} fox", f"{tag} 100% FOX", f"{tag} owl", f"{tag} a_b", f"{tag} Été"]
    ids = [generate(url, p)["image_id"] for p in prompts]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2, "q": tag, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{url}/api/images", params=params).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["id"] for item in seen] == ids[::-1]
    assert seen[0]["url"] == f"/generated/{seen[0]['name']}" and seen[0]["backend"] == "svg"

    def found(**params: Any) -> list[str]:
        return [
            item["prompt"] for item in httpx.get(f"{url}/api/images", params={"limit": 50, **params}).json()["items"]
        ]

    assert found(q=f"{tag} fox") == [f"{tag} fox"]
    assert sorted(found(q="fox")[:2]) == sorted([f"{tag} 100% FOX", f"{tag} fox"])
    assert found(q=f"{tag} 1%") == [] and found(q="0% fox") == [f"{tag} 100% FOX"]
    assert found(q=f"{tag} a_b") == [f"{tag} a_b"] and found(q=f"{tag} a%b") == []
    assert found(q=f"{tag} été") == [f"{tag} Été"]
    assert found(q=tag, backend="pillow") == [] and len(found(q=tag, backend="svg")) == 5


def test_one_image_by_id_and_deleting_it_everywhere(history: tuple[str, Stack]) -> None:
    url, _ = history
    body = generate(url, "to be deleted")
    record = httpx.get(f"{url}/api/images/{body['image_id']}").json()
    assert record["url"] == body["saved"] and record["request_id"] == body["request_id"]
    assert record["attempts"] == body["attempts"] and record["size"] == "96x64" and record["mime"] == "image/svg+xml"
    assert len(record["sha256"]) == 64 and record["bytes"] > 0
    assert httpx.delete(f"{url}/api/images/{body['image_id']}").status_code == 204
    assert httpx.get(f"{url}/api/images/{body['image_id']}").status_code == 404
    assert httpx.get(url + body["saved"]).status_code == 404
    assert httpx.delete(f"{url}/api/images/{body['image_id']}").status_code == 204  # again: still fine
    assert body["image_id"] not in {i["id"] for i in httpx.get(f"{url}/api/images?limit=100").json()["items"]}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/images?limit=0", "limit"),
        ("/api/images?limit=101", "limit"),
        ("/api/images?limit=many", "limit"),
        ("/api/images?cursor=not-a-cursor", "cursor"),
        ("/api/images?q=" + "x" * 201, "q"),
        ("/api/images/not-a-uuid", "image_id"),
    ],
)
def test_bad_parameters_are_a_422_naming_the_field(history: tuple[str, Stack], path: str, field: str) -> None:
    url, _ = history
    r = httpx.get(url + path)
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_unknown_images_are_404(history: tuple[str, Stack]) -> None:
    url, _ = history
    assert httpx.get(f"{url}/api/images/{uuid.uuid4()}").status_code == 404
    assert httpx.get(f"{url}/generated/20260101T000000-svg-0123456789abcdef.svg").status_code == 404
    name = generate(url, "newline")["saved"]
    assert httpx.get(url + name + "%0A").status_code == 404


def test_openapi_describes_the_history_api(history: tuple[str, Stack]) -> None:
    url, _ = history
    spec = httpx.get(f"{url}/openapi.json").json()
    listing = spec["paths"]["/api/images"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor", "backend", "q"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImagePage")
    one = spec["paths"]["/api/images/{image_id}"]
    assert one["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImageRecord")
    assert "204" in one["delete"]["responses"]
    record = spec["components"]["schemas"]["ImageRecord"]["properties"]
    assert {"id", "created", "url", "prompt", "sha256", "attempts", "backend", "provider", "seed"} <= set(record)


def test_healthz_shows_both_stores(history: tuple[str, Stack]) -> None:
    url, stack = history
    storage = httpx.get(f"{url}/healthz").json()["storage"]
    assert storage["ok"] is True and storage["index"]["revision"] == head()
    assert storage["objects"]["kind"] == ("s3" if stack.storage_url.startswith("s3://") else "folder")
    assert "cascade-test-secret" not in str(storage)
    if stack.database_url.startswith("postgresql"):
        assert storage["index"]["url"].startswith("postgresql+psycopg://cascade:***@")


@pytest.mark.parametrize("history", ["folder+sqlite"], indirect=True)
def test_a_symlink_planted_in_the_folder_is_not_served(history: tuple[str, Stack]) -> None:
    url, stack = history
    name = "20260101T000000-pillow-0123456789abcdef.png"
    (Path(stack.storage_url) / name).symlink_to("/etc/passwd")
    r = httpx.get(f"{url}/generated/{name}")
    assert r.status_code == 404 and b"root:" not in r.content


@pytest.fixture(scope="module")
def redirecting(serve_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    tmp = tmp_path_factory.mktemp("redirect")
    stack = make_stack("s3+postgres", tmp, request)
    storage = StorageArgs(url=stack.storage_url, database_url=stack.database_url, redirect=True, presign_ttl_s=600)
    run_gateway("redirect", {}, {}, tmp / "unused", storage=storage, env=stack.env)
    yield f"{serve_url}/redirect"
    serve.delete("redirect")


def test_an_s3_store_can_redirect_to_a_presigned_url(redirecting: str) -> None:
    body = generate(redirecting, "redirected")
    r = httpx.get(redirecting + body["saved"])
    assert r.status_code == 307 and r.headers["cache-control"] == "private, max-age=300"
    assert "X-Amz-Signature=" in r.headers["location"]
    direct = httpx.get(r.headers["location"])
    assert direct.status_code == 200 and direct.content == base64.b64decode(body["dataUri"].split(",", 1)[1])
