"""`GET /generated/<name>` as the gateway answers it (cascade/images/http.py), without Ray: the image service on a
folder + SQLite, and on a real S3 endpoint (moto_server) for the presigned redirect. tests/deployments/test_history.py
checks the same over real HTTP through Serve."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from starlette.responses import StreamingResponse

from cascade.config import StorageArgs
from cascade.errors import NotFound
from cascade.images import ImageService, NewImage
from cascade.images.http import IMMUTABLE, object_response, parse_range
from cascade.store import ByteRange
from cascade.store.keys import new_key
from cascade.svg import render_svg
from tests.services.s3 import MotoServer

DATA = bytes(range(256)) * 4  # 1 KiB


@pytest.fixture
def images(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService.open(
        StorageArgs(url=str(tmp_path / "images"), database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}"), tmp_path, {}
    )
    yield svc
    svc.close()


def put(svc: ImageService, data: bytes = DATA, mime: str = "image/png") -> str:
    name = new_key("pillow", mime)
    svc.store.put(name, data, mime, hashlib.sha256(data).hexdigest())
    return name


def get(svc: ImageService, name: str, head: bool = False, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) as a client would receive them."""

    async def answer() -> tuple[int, dict[str, str], bytes]:
        r = await object_response(svc, name, {k.replace("_", "-"): v for k, v in headers.items()}, head=head)
        if isinstance(r, StreamingResponse):
            body = b"".join([chunk async for chunk in r.body_iterator])  # type: ignore[misc]
        else:
            body = r.body
        return r.status_code, dict(r.headers), body

    return asyncio.run(answer())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=5-14", ByteRange(5, 14)),
        (" bytes=5-14 ", ByteRange(5, 14)),
        ("bytes=100-", ByteRange(100, None)),
        ("bytes=-7", ByteRange(None, 7)),
        ("bytes=-0", ByteRange(None, 0)),  # satisfiable by nothing: the store answers 416
        ("bytes=0-999999999999999999", ByteRange(0, 999_999_999_999_999_999)),
        # Ignored (the whole object is sent), as RFC 9110 §14.2 allows for what we do not serve:
        (None, None),
        ("", None),
        ("bytes=-", None),
        ("bytes=14-5", None),  # last before first: invalid
        ("bytes=0-1,5-6", None),  # several ranges
        ("items=0-5", None),
        ("bytes=0-1x", None),
        ("bytes=0-1\nx", None),
        ("bytes=0-9999999999999999999", None),  # 19 digits: no integer overflow games
    ],
)
def test_range_headers(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header) == expected


def test_a_whole_image_with_its_validators(images: ImageService) -> None:
    name = put(images)
    status, headers, body = get(images, name)
    assert (status, body) == (200, DATA)
    assert headers["content-type"] == "image/png" and headers["content-length"] == str(len(DATA))
    assert headers["accept-ranges"] == "bytes" and headers["cache-control"] == IMMUTABLE
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["etag"].startswith('"') and "content-range" not in headers
    assert "content-security-policy" not in headers  # only an SVG is a document


def test_a_byte_range_is_206_with_its_span(images: ImageService) -> None:
    name = put(images)
    status, headers, body = get(images, name, range="bytes=5-14")
    assert (status, body) == (206, DATA[5:15])
    assert headers["content-range"] == f"bytes 5-14/{len(DATA)}" and headers["content-length"] == "10"
    status, headers, body = get(images, name, range="bytes=-7")
    assert (status, body, headers["content-range"]) == (206, DATA[-7:], f"bytes {len(DATA) - 7}-{len(DATA) - 1}/1024")


def test_a_range_past_the_end_is_416_with_the_size(images: ImageService) -> None:
    name = put(images)
    for header in (f"bytes={len(DATA)}-", "bytes=-0"):
        status, headers, body = get(images, name, range=header)
        assert (status, body, headers["content-range"]) == (416, b"", f"bytes */{len(DATA)}")


def test_a_cached_copy_is_304_and_a_different_one_is_sent_whole(images: ImageService) -> None:
    name = put(images)
    etag = get(images, name)[1]["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        status, headers, body = get(images, name, if_none_match=header)
        assert (status, body) == (304, b"")
        assert headers["etag"] == etag and headers["cache-control"] == IMMUTABLE
    assert get(images, name, if_none_match='"other"')[:1] == (200,)


def test_if_range_sends_the_part_only_of_the_same_version(images: ImageService) -> None:
    name = put(images)
    etag = get(images, name)[1]["etag"]
    status, headers, body = get(images, name, range="bytes=0-3", if_range=etag)
    assert (status, body) == (206, DATA[:4])
    status, headers, body = get(images, name, range="bytes=0-3", if_range='"another-version"')
    assert (status, body) == (200, DATA) and "content-range" not in headers
    assert headers["content-length"] == str(len(DATA))


def test_head_answers_the_same_status_and_headers_without_a_body(images: ImageService) -> None:
    name = put(images)
    _, whole, _ = get(images, name)
    status, headers, body = get(images, name, head=True)
    assert (status, body) == (200, b"")
    assert {k: headers[k] for k in ("etag", "content-length", "content-type")} == {
        k: whole[k] for k in ("etag", "content-length", "content-type")
    }
    status, headers, body = get(images, name, head=True, range="bytes=1-2")
    assert (status, body, headers["content-range"], headers["content-length"]) == (206, b"", "bytes 1-2/1024", "2")


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


# Every type a backend answers with: PNG (Pillow, StyleGAN3, Qwen-Image), SVG (the last resort), JPEG and WebP
# (remote providers).
@pytest.mark.parametrize(
    ("mime", "data"),
    [
        ("image/png", _image("PNG")),
        ("image/jpeg", _image("JPEG")),
        ("image/webp", _image("WEBP")),
        ("image/svg+xml", render_svg("a red fox", 64, 48, seed=1)),
    ],
)
def test_every_image_type_is_saved_and_served_as_itself(images: ImageService, mime: str, data: bytes) -> None:
    async def save() -> str | None:
        saved = await images.save(_new_image(data, mime))
        assert saved.error is None
        return saved.name

    name = asyncio.run(save())
    assert name is not None
    status, headers, body = get(images, name)
    assert (status, body, headers["content-type"]) == (200, data, mime)
    csp = headers.get("content-security-policy")
    # An SVG opened on its own is a document that could run scripts: sandboxed, nothing fetched.
    assert (csp == "default-src 'none'; style-src 'unsafe-inline'; sandbox") is (mime == "image/svg+xml")


def _new_image(data: bytes, mime: str) -> NewImage:
    return NewImage(data, mime, "a red fox", None, 8, 6, 1, "remote:openai", "openai", [])


@pytest.mark.parametrize(
    "name",
    [
        "20260101T000000-pillow-0123456789abcdef.png",  # ours, but never saved
        "../index.sqlite3",
        "20260101T000000-pillow-0123456789abcdef.json",
        "x" * 500,
    ],
)
def test_anything_else_is_not_found_naming_at_most_80_characters(images: ImageService, name: str) -> None:
    put(images)
    with pytest.raises(NotFound) as err:
        get(images, name)
    assert err.value.status == 404 and str(err.value) == f"no saved image named {name[:80]!r}"


def test_redirect_falls_back_to_streaming_where_the_store_has_no_presigned_urls(tmp_path: Path) -> None:
    args = StorageArgs(url=str(tmp_path / "images"), database_url=f"sqlite:///{tmp_path / 'i.sqlite3'}", redirect=True)
    svc = ImageService.open(args, tmp_path, {})
    try:
        name = put(svc)
        assert get(svc, name)[0] == 200
    finally:
        svc.close()


def test_an_s3_store_redirects_to_a_presigned_url_cached_for_half_its_life(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    args = StorageArgs(
        url=f"s3://{moto.create_bucket()}/images",
        database_url=f"sqlite:///{tmp_path / 'i.sqlite3'}",
        redirect=True,
        presign_ttl_s=601,
    )
    svc = ImageService.open(args, tmp_path, {})
    try:
        name = put(svc)
        status, headers, body = get(svc, name)
        assert (status, body) == (307, b"")
        assert headers["cache-control"] == "private, max-age=300"
        assert "X-Amz-Signature=" in headers["location"] and f"/images/{name}?" in headers["location"]
        with pytest.raises(NotFound):  # a name that is not ours is never signed
            get(svc, "../" + name)
    finally:
        svc.close()
