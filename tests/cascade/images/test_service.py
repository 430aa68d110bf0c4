"""The image service on folder+SQLite and on S3 (moto_server) + PostgreSQL: what the gateway relies on."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cascade.config import StorageArgs
from cascade.errors import StorageUnavailable
from cascade.images import ImageService, NewImage
from cascade.index.migrate import head
from cascade.store import ObjectMissing
from cascade.store.keys import new_key
from tests.conftest import Stack

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def image(prompt: str = "a red fox", backend: str = "pillow", data: bytes = PNG) -> NewImage:
    return NewImage(
        data=data,
        mime="image/png",
        prompt=prompt,
        negative_prompt="blurry",
        width=64,
        height=48,
        seed=7,
        backend=backend,
        provider=backend,
        attempts=[{"backend": backend, "outcome": "ok", "error": None, "elapsed_ms": 2.0}],
        meta={"native_size": (16, 16), "when": datetime(2026, 1, 1)},
        request_id="req-1",
    )


def service(stack: Stack, tmp_path: Path, **args: Any) -> ImageService:
    settings = StorageArgs(url=stack.storage_url, database_url=stack.database_url, **args)
    return ImageService.open(settings, tmp_path / "default", {})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def read_all(svc: ImageService, name: str) -> bytes:
    opened = await svc.open_object(name, None, None)
    return b"".join([chunk async for chunk in svc.chunks(opened)])


def test_an_image_is_saved_listed_read_and_deleted(stack: Stack, tmp_path: Path) -> None:
    svc = service(stack, tmp_path)

    async def scenario() -> None:
        saved = await svc.save(image())
        assert saved.error is None and saved.name and saved.id
        record = await svc.get(saved.id)
        assert record is not None and record.object_key == saved.name
        assert record.sha256 == hashlib.sha256(PNG).hexdigest() and record.bytes == len(PNG)
        assert (record.prompt, record.negative_prompt, record.width, record.height) == ("a red fox", "blurry", 64, 48)
        assert record.meta == {"native_size": [16, 16], "when": "2026-01-01 00:00:00"}
        assert [g.id for g in (await svc.page(10, None, None, None)).items] == [saved.id]
        assert await read_all(svc, saved.name) == PNG
        assert await svc.delete(saved.id) is True
        assert await svc.get(saved.id) is None and (await svc.page(10, None, None, None)).items == []
        with pytest.raises(ObjectMissing):
            await svc.open_object(saved.name, None, None)
        assert await svc.delete(saved.id) is False  # repeating a delete is fine

    try:
        run(scenario())
    finally:
        svc.close()


def test_a_broken_object_store_gives_no_link_the_reason_and_no_row(stack: Stack, tmp_path: Path) -> None:
    if stack.storage_url.startswith("s3://"):
        broken = stack.storage_url.replace("s3://", "s3://no-such-bucket-")
    else:
        (tmp_path / "file").write_text("a file, not a folder")
        broken = str(tmp_path / "file" / "images")
    svc = ImageService.open(StorageArgs(url=broken, database_url=stack.database_url), tmp_path, {})

    async def scenario() -> None:
        saved = await svc.save(image())
        assert saved.name is None and saved.id is None
        assert saved.error is not None and saved.error.startswith("image not saved: object store:")
        assert (await svc.page(10, None, None, None)).items == []
        health = await svc.health()
        assert health["ok"] is False and health["objects"]["ok"] is False and health["index"]["ok"] is True
        assert health["saves"] == {**health["saves"], "saved": 0, "failed": 1, "last_error": saved.error}

    try:
        run(scenario())
    finally:
        svc.close()


class TableLock:
    """Holds the generations table's write lock from another connection, as a long migration or a stuck writer
    would, until released."""

    def __init__(self, database_url: str) -> None:
        self.url, self.held, self.done = database_url, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        if self.url.startswith("postgresql"):
            with psycopg.connect(self.url) as conn:
                conn.execute("LOCK TABLE generations IN ACCESS EXCLUSIVE MODE")
                self.held.set()
                self.done.wait(60)
        else:
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            self.held.set()
            self.done.wait(60)
            conn.execute("ROLLBACK")
            conn.close()

    def __enter__(self) -> TableLock:
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(10)


def test_a_slow_index_answers_within_the_timeout_and_leaves_only_an_orphan_to_sweep(
    stack: Stack, tmp_path: Path
) -> None:
    svc = service(stack, tmp_path, timeout_s=1.0)

    async def scenario() -> None:
        await svc.ready()
        with TableLock(stack.database_url):
            started = time.monotonic()
            saved = await svc.save(image("while the table is locked"))
            elapsed = time.monotonic() - started
            # The server gives up on the insert too (statement/lock timeout, SQLite's busy timeout): nothing is
            # left to land later, after the sweep has judged its object an orphan.
            await asyncio.sleep(1.5)
        assert saved.name is None and saved.error and saved.error.startswith("image not saved: index")
        assert elapsed < 1.8
        assert await svc._in(svc._rows, svc.index.count) == 0
        orphans = list(svc.store.names_between("0", "9"))
        assert len(orphans) == 1  # the object went first
        report = await svc.sweeper.sweep(datetime.now(timezone.utc) + timedelta(seconds=svc.args.sweep_grace_s + 5))
        assert report.orphans_removed == 1 and list(svc.store.names_between("0", "9")) == []

    try:
        run(scenario())
    finally:
        svc.close()


def _black_hole() -> tuple[socket.socket, str]:
    """A TCP server that accepts and never answers: an S3 endpoint that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_hung_object_store_answers_within_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, endpoint = _black_hole()
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}.items():
        monkeypatch.setenv(name, value)
    args = StorageArgs(url="s3://hung/images", database_url=f"sqlite:///{tmp_path / 'i.sqlite3'}", timeout_s=1.0)
    svc = ImageService.open(args, tmp_path, {})

    async def scenario() -> None:
        started = time.monotonic()
        saved = await svc.save(image())
        assert saved.name is None and saved.error == "image not saved: object store did not answer within 1 s"
        assert time.monotonic() - started < 1.8
        health = await svc.health()
        assert health["objects"]["ok"] is False and "did not answer" in health["objects"]["error"]
        assert health["index"]["ok"] is True and (await svc.page(5, None, None, None)).items == []

    try:
        run(scenario())
    finally:
        svc.close()
        server.close()


def test_the_sweep_removes_objects_without_rows_after_the_grace_and_finishes_deletes(
    stack: Stack, tmp_path: Path
) -> None:
    svc = service(stack, tmp_path, sweep_grace_s=900)
    now = datetime.now(timezone.utc)

    def plant(age_s: float, name: str | None = None) -> str:
        name = name or new_key("pillow", "image/png", now - timedelta(seconds=age_s))
        svc.store.put(name, b"orphan", "image/png", "x")
        return name

    async def scenario() -> None:
        await svc.ready()
        old_orphan, young_orphan = plant(3600), plant(60)
        legacy = plant(3600, (now - timedelta(hours=1)).strftime("%Y%m%dT%H%M%S") + "-pillow-0123456789ab.png")
        kept = await svc.save(image("kept"))
        half_deleted = await svc.save(image("half deleted"))
        assert kept.id and half_deleted.id and half_deleted.name
        await svc._in(svc._rows, svc.index.begin_delete, half_deleted.id)  # as if the object delete then failed

        first = await svc.sweeper.sweep(now + timedelta(minutes=10))
        assert (first.orphans_removed, first.deletes_finished) == (1, 1)
        names = set(svc.store.names_between("0", "9"))
        assert old_orphan not in names and half_deleted.name not in names
        assert {young_orphan, legacy, kept.name} <= names  # too young / not ours to judge / has its row
        assert await svc.get(kept.id) is not None and svc.index.deleting() == []

        # The next pass starts where this one stopped and, 10 minutes on, takes the then old enough orphan.
        second = await svc.sweeper.sweep(now + timedelta(minutes=20))
        assert second.window[0] == first.window[1] and second.orphans_removed == 1
        assert young_orphan not in set(svc.store.names_between("0", "9"))

    try:
        run(scenario())
    finally:
        svc.close()


def test_an_index_that_cannot_migrate_at_start_is_retried_and_then_used(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("the index's folder cannot be made under a file")
    args = StorageArgs(url=str(tmp_path / "images"), database_url=f"sqlite:///{blocker / 'db' / 'i.sqlite3'}")
    svc = ImageService.open(args, tmp_path, {})

    async def scenario() -> None:
        saved = await svc.save(image())
        assert saved.name is None and saved.error and saved.error.startswith("image not saved: index not ready:")
        with pytest.raises(StorageUnavailable, match="index not ready"):
            await svc.page(5, None, None, None)
        assert (await svc.health())["index"]["ok"] is False
        blocker.unlink()
        svc._retry_at = 0.0  # skip the retry back-off
        assert (await svc.save(image())).name is not None
        assert (await svc.health())["index"] == {**(await svc.health())["index"], "ok": True, "revision": head()}

    try:
        run(scenario())
    finally:
        svc.close()
