"""Alembic's entry point. Cascade runs it itself at start (cascade.index.migrate, on a connection it passes in
and holds a lock on); `alembic upgrade head` / `alembic revision --autogenerate -m ...` from the project root work
too, against CASCADE_DATABASE_URL (see alembic.ini)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from cascade.index.schema import VERSION_TABLE, metadata
from cascade.index.urls import engine_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: later migrations' ALTERs become copy-and-swap batches there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from cascade.index.migrate import lock_postgres

    url = os.environ.get("CASCADE_DATABASE_URL") or "sqlite:///generated_images/cascade.sqlite3"
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        lock_postgres(conn)
        _run(conn)
    engine.dispose()
