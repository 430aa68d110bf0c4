"""The gateway's one door to storage: save (object first, then its row), read, page, delete, health.

Async outside, blocking inside: every store and index call runs on this service's own bounded thread pools (one
for objects, one for rows, so a hung database cannot starve image downloads or the other way round), and every
call the gateway waits on is bounded by `timeout_s`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from cascade.config import StorageArgs
from cascade.errors import StorageUnavailable
from cascade.images.sweep import Sweeper
from cascade.index import Cursor, Generation, Index, Page
from cascade.store import ByteRange, NotModified, ObjectMissing, ObjectStore, Opened, RangeNotSatisfiable, open_store
from cascade.store.keys import mime_of, new_key

logger = logging.getLogger("ray.serve")
T = TypeVar("T")
CHUNK = 256 * 1024
_RETRY_MIGRATION_S = 5.0


@dataclass(frozen=True)
class NewImage:
    """What the gateway knows about an image it is about to answer with."""

    data: bytes
    mime: str
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    seed: int | None
    backend: str
    provider: str
    attempts: list[dict[str, Any]]
    meta: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    api_key_id: str | None = None


@dataclass(frozen=True)
class SaveOutcome:
    name: str | None = None
    id: uuid.UUID | None = None
    error: str | None = None


def describe(exc: BaseException) -> str:
    """One line about a failure, for responses and /healthz: the driver's own message, not SQLAlchemy's SQL dump."""
    inner = getattr(exc, "orig", None) or exc
    text = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}: {text[:200]}" if text else type(inner).__name__


def resolve_urls(args: StorageArgs, folder: Path, environ: Mapping[str, str]) -> tuple[str, str]:
    """(storage URL, database URL): config, else the replica's environment, else the embedded defaults."""
    storage = args.url or (environ.get("CASCADE_STORAGE_URL") or "").strip() or str(folder)
    database = (
        args.database_url
        or (environ.get("CASCADE_DATABASE_URL") or "").strip()
        or f"sqlite:///{folder / 'cascade.sqlite3'}"
    )
    return storage, database


class ImageService:
    def __init__(self, store: ObjectStore, index: Index, args: StorageArgs) -> None:
        self.store, self.index, self.args = store, index, args
        self._objects = ThreadPoolExecutor(16, thread_name_prefix="cascade-objects")
        self._rows = ThreadPoolExecutor(8, thread_name_prefix="cascade-index")
        self._revision: str | None = None
        self._migration_error: str | None = None
        self._retry_at = 0.0
        self._migrating: asyncio.Lock | None = None
        self.saved, self.failed = 0, 0
        self.last_error: tuple[datetime, str] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.sweeper = Sweeper(self)

    @classmethod
    def open(cls, args: StorageArgs, folder: Path, environ: Mapping[str, str]) -> ImageService:
        storage, database = resolve_urls(args, folder, environ)
        return cls(open_store(storage, folder.parent, args.timeout_s), Index(database, args.timeout_s), args)

    def start(self) -> None:
        """Migrate and sweep in the background (call from the event loop): the gateway starts serving images at
        once, even with the database down; saves report why until it is back."""
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self._warm()), loop.create_task(self.sweeper.run_forever())]

    async def _warm(self) -> None:
        try:
            await self.ready()
        except StorageUnavailable as exc:
            logger.warning("storage index not ready at start: %s", exc)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._objects.shutdown(wait=False, cancel_futures=True)
        self._rows.shutdown(wait=False, cancel_futures=True)
        self.index.close()

    # --- plumbing -------------------------------------------------------------------------------------------

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))

    async def bounded(self, what: str, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on `pool` within timeout_s; StorageUnavailable naming `what` otherwise."""
        try:
            return await asyncio.wait_for(self._in(pool, fn, *args), self.args.timeout_s)
        except asyncio.TimeoutError:
            raise StorageUnavailable(f"{what} did not answer within {self.args.timeout_s:g} s") from None
        except (ObjectMissing, NotModified, RangeNotSatisfiable):
            raise
        except Exception as exc:
            logger.warning("%s failed", what, exc_info=True)
            raise StorageUnavailable(f"{what}: {describe(exc)}") from None

    async def ready(self) -> str:
        """The index at the newest schema revision (migrating it the first time); StorageUnavailable until then."""
        if self._revision is not None:
            return self._revision
        if self._migrating is None:
            self._migrating = asyncio.Lock()
        async with self._migrating:
            if self._revision is not None:
                return self._revision
            if time.monotonic() < self._retry_at:
                raise StorageUnavailable(f"index not ready: {self._migration_error}")
            try:
                # Waiting for another replica's migration may take longer than one request's timeout.
                migrate = self._in(self._rows, self.index.migrate)
                self._revision = await asyncio.wait_for(migrate, max(60.0, self.args.timeout_s))
            except Exception as exc:
                self._migration_error = (
                    "migration timed out" if isinstance(exc, asyncio.TimeoutError) else describe(exc)
                )
                self._retry_at = time.monotonic() + _RETRY_MIGRATION_S
                logger.warning("index migration failed: %s", self._migration_error)
                raise StorageUnavailable(f"index not ready: {self._migration_error}") from None
            self._migration_error = None
            return self._revision

    # --- writes ---------------------------------------------------------------------------------------------

    def _put(self, name: str, data: bytes, mime: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.store.put(name, data, mime, digest)
        return digest

    async def save(self, image: NewImage) -> SaveOutcome:
        """Object first, then its row, within timeout_s; never raises. A row therefore never points at nothing; an
        object whose row never came is swept later (see Sweeper)."""
        try:
            name = new_key(image.backend, image.mime)
        except ValueError as exc:
            return self._failed(str(exc))
        ident, stage = uuid.uuid4(), ["index"]

        async def steps() -> None:
            await self.ready()
            stage[0] = "object store"
            digest = await self._in(self._objects, self._put, name, image.data, image.mime)
            stage[0] = "index"
            await self._in(self._rows, self.index.insert, self._row(ident, name, digest, image))

        try:
            await asyncio.wait_for(steps(), self.args.timeout_s)
        except asyncio.TimeoutError:
            return self._failed(f"{stage[0]} did not answer within {self.args.timeout_s:g} s")
        except StorageUnavailable as exc:
            return self._failed(str(exc))
        except Exception as exc:
            logger.warning("saving %s failed at the %s", name, stage[0], exc_info=True)
            return self._failed(f"{stage[0]}: {describe(exc)}")
        self.saved += 1
        return SaveOutcome(name=name, id=ident)

    def _row(self, ident: uuid.UUID, name: str, digest: str, image: NewImage) -> Generation:
        return Generation(
            id=ident,
            created=datetime.now(timezone.utc),
            prompt=image.prompt,
            negative_prompt=image.negative_prompt,
            width=image.width,
            height=image.height,
            seed=image.seed,
            backend=image.backend,
            provider=image.provider,
            attempts=image.attempts,
            object_key=name,
            mime=image.mime,
            sha256=digest,
            bytes=len(image.data),
            request_id=image.request_id or None,
            # A backend's meta may hold values JSON has no type for: kept as their text.
            meta=json.loads(json.dumps(dict(image.meta), default=str)),
            api_key_id=image.api_key_id,
        )

    def _failed(self, reason: str) -> SaveOutcome:
        self.failed += 1
        error = f"image not saved: {reason}"
        self.last_error = (datetime.now(timezone.utc), error)
        logger.warning(error)
        return SaveOutcome(error=error)

    async def delete(self, ident: uuid.UUID, owner: str | None = None) -> bool:
        """Row hidden, object removed, row removed; False when there was no such image (made with `owner`'s key, when
        given). Safe to repeat: a delete that failed half-way is finished by the next one (or by the sweep)."""
        await self.ready()
        key = await self.bounded("index", self._rows, self.index.begin_delete, ident, owner)
        if key is None:
            return False
        await self.bounded("object store", self._objects, self.store.delete, key)
        await self.bounded("index", self._rows, self.index.finish_delete, ident)
        return True

    # --- reads ----------------------------------------------------------------------------------------------

    async def get(self, ident: uuid.UUID, owner: str | None = None) -> Generation | None:
        await self.ready()
        return await self.bounded("index", self._rows, self.index.get, ident, owner)

    async def page(
        self, limit: int, after: Cursor | None, backend: str | None, q: str | None, owner: str | None = None
    ) -> Page:
        await self.ready()
        return await self.bounded("index", self._rows, self.index.page, limit, after, backend, q, owner)

    async def open_object(self, name: str, byte_range: ByteRange | None, if_none_match: str | None) -> Opened:
        return await self.bounded("object store", self._objects, self.store.open, name, byte_range, if_none_match)

    async def chunks(self, opened: Opened) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await self.bounded("object store", self._objects, opened.body.read, CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            await self._in(self._objects, opened.body.close)

    async def close_object(self, opened: Opened) -> None:
        await self._in(self._objects, opened.body.close)

    async def presign(self, name: str) -> str | None:
        return await self.bounded("object store", self._objects, self.store.presign, name, self.args.presign_ttl_s)

    def mime(self, name: str) -> str:
        return mime_of(name)

    # --- health ---------------------------------------------------------------------------------------------

    async def _probe(self, pool: ThreadPoolExecutor, fn: Callable[[], object]) -> str | None:
        try:
            await asyncio.wait_for(self._in(pool, fn), min(self.args.timeout_s, 3.0))
        except asyncio.TimeoutError:
            return f"did not answer within {min(self.args.timeout_s, 3.0):g} s"
        except Exception as exc:
            return describe(exc)
        return None

    async def health(self) -> dict[str, Any]:
        objects_error, index_error = await asyncio.gather(
            self._probe(self._objects, self.store.check), self._probe(self._rows, self.index.ping)
        )
        index_error = index_error or (f"not migrated: {self._migration_error}" if self._migration_error else None)
        last = self.last_error
        return {
            "ok": objects_error is None and index_error is None,
            "objects": {**self.store.describe(), "ok": objects_error is None, "error": objects_error},
            "index": {
                "url": self.index.url,
                "ok": index_error is None,
                "error": index_error,
                "revision": self._revision,
            },
            "saves": {
                "saved": self.saved,
                "failed": self.failed,
                "last_error": last[1] if last else None,
                "last_error_at": last[0].isoformat() if last else None,
            },
            "sweep": self.sweeper.report(),
        }
