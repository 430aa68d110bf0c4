"""The metadata index (`CASCADE_DATABASE_URL`): SQLite by default, PostgreSQL on a cluster; Alembic migrations."""

from __future__ import annotations

from cascade.index.index import Index
from cascade.index.records import Cursor, Generation, Page

__all__ = ["Cursor", "Generation", "Index", "Page"]
