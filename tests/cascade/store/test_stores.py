"""The object store contract, on a folder and on a real S3 endpoint (moto_server): each test runs on both."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from cascade.store import ByteRange, NotModified, ObjectMissing, ObjectStore, RangeNotSatisfiable, open_store
from cascade.store.keys import new_key
from tests.conftest import Stack

DATA = bytes(range(256)) * 40  # 10 KiB, every byte value


@pytest.fixture
def store(stack: Stack, tmp_path: Path) -> ObjectStore:
    return open_store(stack.storage_url, tmp_path, timeout_s=10)


def put(store: ObjectStore, data: bytes = DATA, backend: str = "pillow") -> str:
    name = new_key(backend, "image/png")
    store.put(name, data, "image/png", hashlib.sha256(data).hexdigest())
    return name


def read(store: ObjectStore, name: str, byte_range: ByteRange | None = None) -> tuple[bytes, tuple[int, int, int]]:
    opened = store.open(name, byte_range)
    try:
        return opened.body.read(), (opened.start, opened.end, opened.size)
    finally:
        opened.body.close()


def test_an_object_reads_back_whole_with_a_stable_etag(store: ObjectStore) -> None:
    name = put(store)
    data, span = read(store, name)
    assert data == DATA and span == (0, len(DATA) - 1, len(DATA))
    first, second = store.open(name), store.open(name)
    first.body.close(), second.body.close()
    assert first.etag == second.etag and first.etag.startswith('"')
    assert store.open(put(store, b"other bytes")).etag != first.etag


@pytest.mark.parametrize(
    ("byte_range", "start", "end"),
    [
        (ByteRange(0, 0), 0, 0),
        (ByteRange(100, 199), 100, 199),
        (ByteRange(10_000, None), 10_000, 10_239),
        (ByteRange(10_200, 99_999), 10_200, 10_239),  # past the end: cut to the end
        (ByteRange(None, 40), 10_200, 10_239),  # the last 40 bytes
        (ByteRange(None, 99_999), 0, 10_239),
    ],
)
def test_byte_ranges(store: ObjectStore, byte_range: ByteRange, start: int, end: int) -> None:
    name = put(store)
    data, span = read(store, name, byte_range)
    assert span == (start, end, len(DATA)) and data == DATA[start : end + 1]


def test_a_range_past_the_end_is_not_satisfiable(store: ObjectStore) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        store.open(put(store), ByteRange(len(DATA), None))
    assert err.value.size == len(DATA)


def test_a_matching_etag_is_not_modified(store: ObjectStore) -> None:
    name = put(store)
    opened = store.open(name)
    opened.body.close()
    with pytest.raises(NotModified) as err:
        store.open(name, if_none_match=opened.etag)
    assert err.value.etag == opened.etag
    fresh = store.open(name, if_none_match='"something-else"')
    assert fresh.body.read() == DATA
    fresh.body.close()


def test_deleting_is_idempotent_and_the_object_is_gone(store: ObjectStore) -> None:
    name = put(store)
    store.delete(name)
    store.delete(name)
    with pytest.raises(ObjectMissing):
        store.open(name)


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "..", "/etc/passwd", "a/b.png", "x.png", "", "20261130T120000-pillow-0123456789abcdef.json"],
)
def test_names_that_are_not_ours_are_missing(store: ObjectStore, name: str) -> None:
    put(store)
    with pytest.raises(ObjectMissing):
        store.open(name)


def test_listing_a_time_window_returns_exactly_the_names_made_in_it(store: ObjectStore) -> None:
    t = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    made = {}
    for offset in (0, 59, 60, 61, 120):
        name = new_key("svg", "image/svg+xml", t + timedelta(seconds=offset))
        store.put(name, b"<svg/>", "image/svg+xml", "x")
        made[offset] = name
    window = list(store.names_between("20261130T120000", "20261130T120100"))
    assert window == sorted([made[0], made[59]])
    assert list(store.names_between("20261130T120100", "20261130T120200")) == sorted([made[60], made[61]])


def test_a_usable_store_passes_its_check(store: ObjectStore) -> None:
    store.check()


def test_presigned_urls_where_the_store_has_them(store: ObjectStore, stack: Stack) -> None:
    name = put(store)
    url = store.presign(name, 60)
    if stack.storage_url.startswith("s3://"):
        assert url is not None and "X-Amz-Signature=" in url  # SigV4: R2 and Supabase take nothing older
        assert httpx.get(url).content == DATA
    else:
        assert url is None
