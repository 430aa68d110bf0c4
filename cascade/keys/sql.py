"""`KeyStore` in the metadata index (SQLite or PostgreSQL, table `api_keys`, migration 0002).

The same four methods as `MemoryKeyStore`, async outside and blocking SQLAlchemy inside, on a small thread pool of
its own so that a slow database cannot hold up image rows (and the other way round). Every call is bounded by
`timeout_s`; a database that fails or does not answer is `StorageUnavailable` (503 with Retry-After), never a 500:
a key that cannot be checked is not a client error, and it is not a key that may pass either.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from cascade.errors import StorageUnavailable
from cascade.index.schema import api_keys
from cascade.keys.store import DuplicateKey, KeyRecord
from cascade.limits.quota import Quota

logger = logging.getLogger("cascade.keys")
T = TypeVar("T")
_QUOTA = ("rate_per_s", "burst", "max_concurrency", "daily_images", "daily_spend_usd")


def _record(row: Row[Any]) -> KeyRecord:
    v = row._mapping
    backends = v["allowed_backends"]
    return KeyRecord(
        id=v["id"],
        name=v["name"],
        key_hash=v["key_hash"],
        allowed_backends=None if backends is None else frozenset(backends),
        quota=Quota(**{name: v[name] for name in _QUOTA}),
        admin=bool(v["admin"]),
        created_at=v["created_at"],
        revoked_at=v["revoked_at"],
    )


def _values(record: KeyRecord) -> dict[str, Any]:
    backends = record.allowed_backends
    return {
        "id": record.id,
        "name": record.name,
        "key_hash": record.key_hash,
        "allowed_backends": None if backends is None else sorted(backends),
        **{name: getattr(record.quota, name) for name in _QUOTA},
        "admin": record.admin,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


class SqlKeyStore:
    def __init__(
        self,
        engine: Engine,
        *,
        timeout_s: float = 5.0,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`ready`: awaited before each call (the gateway passes its index's "migrated yet?" check)."""
        self.engine, self.timeout_s, self._ready = engine, timeout_s, ready
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="cascade-keys")

    # --- the KeyStore protocol ------------------------------------------------------------------------------

    async def create(self, record: KeyRecord) -> None:
        await self._run("create", self._create, record)

    async def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        return await self._run("list", self._list, include_revoked)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        return await self._run("revoke", self._revoke, key_id)

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        return await self._run("lookup", self._lookup, key_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- blocking halves ------------------------------------------------------------------------------------

    def _create(self, record: KeyRecord) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.insert().values(**_values(record)))
        except IntegrityError:
            raise DuplicateKey(record.id) from None

    def _list(self, include_revoked: bool) -> list[KeyRecord]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def _revoke(self, key_id: str) -> KeyRecord | None:
        c = api_keys.c
        with self.engine.begin() as conn:
            # Only a live key gets a time: a second revoke keeps the first one.
            conn.execute(update(api_keys).where(c.id == key_id, c.revoked_at.is_(None)).values(revoked_at=_now()))
            row = conn.execute(select(api_keys).where(c.id == key_id)).first()
        return None if row is None else _record(row)

    def _lookup(self, key_hash: str) -> KeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _record(row)

    # --- plumbing -------------------------------------------------------------------------------------------

    async def _run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._ready is not None:
            await self._ready()
        call = asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))
        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except DuplicateKey:
            raise
        except asyncio.TimeoutError:
            raise StorageUnavailable(f"key store: no answer within {self.timeout_s:g} s") from None
        except Exception as exc:
            logger.warning("key store %s failed", what, exc_info=True)
            # The driver's message may quote the statement: the client hears the type only.
            raise StorageUnavailable(f"key store unavailable ({type(exc).__name__})") from None


def _now() -> datetime:
    return datetime.now(timezone.utc)
