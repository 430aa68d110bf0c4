"""The metadata index: one row per saved image, in SQLite or PostgreSQL, through SQLAlchemy Core.

Blocking by design (callers run it in a thread): SQLite has no asynchronous driver, Alembic is synchronous, and a
handful of small statements per request cost less in a thread than a second code path would.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, or_, select, text, update
from sqlalchemy.engine import Row

from cascade.index import migrate
from cascade.index.records import Cursor, Generation, Page
from cascade.index.schema import DELETING, STORED, generations
from cascade.index.urls import engine_url, redacted

_COLUMNS = [c for c in generations.c if c.name not in ("status",)]


def _sqlite_setup(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer, so gateway replicas on one machine share the file.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    # SQLite's own lower() folds ASCII only; Python's folds every script, as PostgreSQL's does.
    dbapi_connection.create_function("lower", 1, lambda s: s.lower() if isinstance(s, str) else s, deterministic=True)


def make_engine(url: str, timeout_s: float) -> Engine:
    target = engine_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_engine(target, connect_args={"timeout": timeout_s})
        event.listen(engine, "connect", _sqlite_setup)
        return engine
    return create_engine(
        target,
        pool_pre_ping=True,  # serverless Postgres (Neon) closes idle connections when it scales to zero
        pool_recycle=1800,
        pool_size=4,
        max_overflow=4,
        pool_timeout=timeout_s,
        connect_args={
            "connect_timeout": max(1, math.ceil(timeout_s)),
            "application_name": "cascade",
            # Server-side prepared statements do not survive a transaction-mode pooler (PgBouncer, Supavisor).
            "prepare_threshold": None,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )


def _no_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold U+0000 (a prompt may): it is stored as U+FFFD, on SQLite too, so that
    both databases hold the same thing."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nul(v) for v in value]
    return value


def _generation(row: Row[Any]) -> Generation:
    values = row._mapping
    return Generation(**{c.name: values[c.name] for c in _COLUMNS})


class Index:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.engine = make_engine(url, timeout_s)
        self.url = redacted(self.engine.url)
        self.dialect = self.engine.dialect.name
        self._timeout_ms = max(1, int(timeout_s * 1000))

    def _bounded(self, conn: Connection) -> None:
        """Bound this transaction's statements on the server too. A write must never land long after its caller
        gave up: the sweep counts on an object's row arriving within seconds or never. (SQLite's busy timeout
        already bounds its waits.) LOCAL: it ends with the transaction, so it is safe behind a pooler."""
        if self.dialect == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {self._timeout_ms}"))
            conn.execute(text(f"SET LOCAL lock_timeout = {self._timeout_ms}"))

    def migrate(self) -> str:
        if self.dialect == "sqlite":
            # Here, not at construction: a folder that cannot be made is a reason saves fail, not a crash.
            Path(self.engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
        return migrate.upgrade(self.engine)

    def revision(self) -> str | None:
        """The schema revision, which also proves the database answers."""
        with self.engine.connect() as conn:
            return migrate.current(conn)

    def insert(self, generation: Generation) -> None:
        values = {c.name: _no_nul(getattr(generation, c.name)) for c in _COLUMNS}
        with self.engine.begin() as conn:
            self._bounded(conn)
            conn.execute(generations.insert().values(**values, status=STORED))

    def get(self, ident: uuid.UUID, owner: str | None = None) -> Generation | None:
        """`owner`: only a row made with this API key (None: any row)."""
        query = select(*_COLUMNS).where(generations.c.id == ident, generations.c.status == STORED)
        if owner is not None:
            query = query.where(generations.c.api_key_id == owner)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _generation(row) if row is not None else None

    def page(
        self,
        limit: int,
        after: Cursor | None = None,
        backend: str | None = None,
        q: str | None = None,
        owner: str | None = None,
    ) -> Page:
        """Newest first. `q`: case-insensitive substring of the prompt (`%` and `_` in it are plain characters).
        `owner`: only rows made with this API key."""
        c = generations.c
        query = select(*_COLUMNS).where(c.status == STORED)
        if owner is not None:
            query = query.where(c.api_key_id == owner)
        if after is not None:
            query = query.where(or_(c.created < after.created, (c.created == after.created) & (c.id < after.id)))
        if backend is not None:
            query = query.where(c.backend == backend)
        if q:
            query = query.where(c.prompt.icontains(_no_nul(q), autoescape=True))
        query = query.order_by(c.created.desc(), c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [_generation(r) for r in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, Cursor(rows[-1].created, rows[-1].id) if more else None)

    def begin_delete(self, ident: uuid.UUID, owner: str | None = None) -> str | None:
        """Hide the row from every read (status `deleting`) and return its object key; None if there is no row (made
        with `owner`'s key, when given). A row already `deleting` (an earlier delete that could not remove its object)
        is handed back again."""
        c = generations.c
        mine = c.id == ident if owner is None else (c.id == ident) & (c.api_key_id == owner)
        with self.engine.begin() as conn:
            self._bounded(conn)
            key = conn.execute(select(c.object_key).where(mine)).scalar_one_or_none()
            if key is not None:
                conn.execute(update(generations).where(c.id == ident).values(status=DELETING))
        return key

    def finish_delete(self, ident: uuid.UUID) -> None:
        with self.engine.begin() as conn:
            self._bounded(conn)
            conn.execute(delete(generations).where(generations.c.id == ident, generations.c.status == DELETING))

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` have a row (in any status)."""
        wanted = list(keys)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(
                    conn.execute(select(generations.c.object_key).where(generations.c.object_key.in_(chunk))).scalars()
                )
        return found

    def deleting(self, limit: int = 500) -> list[tuple[uuid.UUID, str]]:
        """Rows left half-deleted: their object could not be removed when the delete was asked for."""
        c = generations.c
        query = select(c.id, c.object_key).where(c.status == DELETING).limit(limit)
        with self.engine.connect() as conn:
            return [(row.id, row.object_key) for row in conn.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(generations)).scalar_one())

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
