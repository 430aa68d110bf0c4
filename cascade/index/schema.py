"""The index's tables as the running code sees them (migrations/versions/ holds how they came to be)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    false,
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
    # The API key that asked for it (None: auth off, or an in-cluster caller). No foreign key: keys are revoked, never
    # deleted, so the id always resolves, and saving an image must not hinge on the key's row.
    Column("api_key_id", String(64)),
    CheckConstraint(f"status IN ('{STORED}', '{DELETING}')", name="ck_generations_status"),
)
Index("uq_generations_object_key", generations.c.object_key, unique=True)
Index("ix_generations_created_id", generations.c.created, generations.c.id)
Index("ix_generations_backend_created_id", generations.c.backend, generations.c.created, generations.c.id)
Index("ix_generations_api_key_id", generations.c.api_key_id)

# API keys (cascade.keys): only the SHA-256 of a key is kept. Unset limits are NULL (the config's key_defaults apply).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("allowed_backends", JSONType),  # a sorted list of names; NULL: every backend
    Column("rate_per_s", Float),
    Column("burst", Integer),
    Column("max_concurrency", Integer),
    Column("daily_images", Integer),
    Column("daily_spend_usd", Float),
    # May read and delete every key's history and see /healthz in full.
    Column("admin", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)
Index("uq_api_keys_key_hash", api_keys.c.key_hash, unique=True)
