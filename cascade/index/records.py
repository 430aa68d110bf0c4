"""What the index stores and hands back: small frozen values, no SQLAlchemy in sight."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Generation:
    """One saved image: its request, who made it, and where its bytes are."""

    id: uuid.UUID
    created: datetime
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    seed: int | None
    backend: str
    provider: str
    attempts: Sequence[Mapping[str, Any]]
    object_key: str
    mime: str
    sha256: str
    bytes: int
    request_id: str | None
    meta: Mapping[str, Any] = field(default_factory=dict)
    api_key_id: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last row's (created, id). Keyset pages stay right while rows are added."""

    created: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.created.isoformat()}|{self.id.hex}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError for anything this class did not make."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            when, _, ident = raw.partition("|")
            created = datetime.fromisoformat(when)
            if created.tzinfo is None:
                raise ValueError("no time zone")
            return cls(created, uuid.UUID(hex=ident))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("not a cursor this service made") from None


@dataclass(frozen=True)
class Page:
    items: list[Generation]
    next: Cursor | None
