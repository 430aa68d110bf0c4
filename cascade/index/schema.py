"""The index's tables as the running code sees them (migrations/versions/ holds how they came to be)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

# Alembic's own table, named so that it cannot collide with another app's migrations in a shared database
# (a Supabase or Neon project often holds more than one app).
VERSION_TABLE = "cascade_alembic_version"

STORED, DELETING = "stored", "deleting"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out: `timestamptz` on PostgreSQL, naive UTC text on SQLite (which has no time
    zones; its fixed-width text sorts in time order, which keyset pagination relies on)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

generations = Table(
    "generations",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True),
    Column("created", UTCDateTime(), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("negative_prompt", Text),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("seed", BigInteger),
    Column("backend", String(64), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("attempts", JSONType, nullable=False),
    Column("meta", JSONType, nullable=False),
    Column("object_key", String(255), nullable=False),
    Column("mime", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("request_id", String(128)),
    Column("status", String(16), nullable=False),
    # Filled by the access layer (API keys); no foreign key here, its migration adds one.
    Column("api_key_id", String(64)),
    CheckConstraint(f"status IN ('{STORED}', '{DELETING}')", name="ck_generations_status"),
)
Index("uq_generations_object_key", generations.c.object_key, unique=True)
Index("ix_generations_created_id", generations.c.created, generations.c.id)
Index("ix_generations_backend_created_id", generations.c.backend, generations.c.created, generations.c.id)
Index("ix_generations_api_key_id", generations.c.api_key_id)
