"""Database URLs as people hand them out (Neon, Supabase, a local file) turned into what SQLAlchemy opens."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


def engine_url(raw: str) -> URL:
    """`postgresql://` / `postgres://` (any query, e.g. `?sslmode=require`) → psycopg 3; `sqlite:///path` → the
    stdlib driver. ValueError for anything else, naming what was given (without its password)."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("database URL: not a URL (expected postgresql://... or sqlite:///path)") from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("database URL: in-memory SQLite is not shared between connections; give a file")
        return url.set(drivername="sqlite")
    raise ValueError(f"database URL: unsupported scheme {url.drivername!r} (postgresql:// or sqlite:///)")


def redacted(url: URL) -> str:
    """For /healthz and logs: no password, wherever libpq would take one from."""
    query = {k: ("***" if "password" in k.lower() else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)
