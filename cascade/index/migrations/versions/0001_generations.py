"""generations: one row per saved image.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration must not change when cascade/index/schema.py does.
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text()),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger()),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("attempts", _JSON, nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.Column("object_key", sa.String(255), nullable=False),
        sa.Column("mime", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("api_key_id", sa.String(64)),
        sa.CheckConstraint("status IN ('stored', 'deleting')", name="ck_generations_status"),
    )
    op.create_index("uq_generations_object_key", "generations", ["object_key"], unique=True)
    op.create_index("ix_generations_created_id", "generations", ["created", "id"])
    op.create_index("ix_generations_backend_created_id", "generations", ["backend", "created", "id"])
    op.create_index("ix_generations_api_key_id", "generations", ["api_key_id"])


def downgrade() -> None:
    op.drop_table("generations")
