"""`upgrade head` at start, safe when every replica of every node starts at once.

PostgreSQL: a transaction-scoped advisory lock taken in the very transaction that runs the migrations (Alembic's
DDL is transactional there), so the lock also holds through a transaction-mode pooler (Neon's, Supavisor) where a
session-level lock could land on another backend. SQLite: an exclusive `flock` on a file beside the database.
Whoever waits for the lock then finds the version table at head and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from cascade.index.schema import VERSION_TABLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number, the same in every replica: "cascade" in ASCII.
_PG_LOCK_KEY = 0x63617363616465


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_postgres(conn: Connection) -> None:
    """Serialise migrations until this transaction ends (a no-op elsewhere)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def upgrade(engine: Engine) -> str:
    """Bring the database to the newest revision; returns it."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            lock_postgres(conn)
            command.upgrade(_config(conn), "head")
            revision = current(conn)
    else:
        database = engine.url.database or ""
        with _file_lock(Path(database + ".migrate.lock")), engine.connect() as conn:
            command.upgrade(_config(conn), "head")
            conn.commit()
            revision = current(conn)
    if revision != head():
        raise RuntimeError(f"database at revision {revision}, expected {head()}")
    return revision
