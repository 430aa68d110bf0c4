"""Key records and where they live: the `KeyStore` protocol and its in-memory implementation.

The SQL implementation lives beside the metadata database; both keep only the key's hash.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol

from cascade.keys import tokens
from cascade.limits.quota import Quota


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    key_hash: str = field(repr=False)
    # None: every backend. Otherwise only these (a request naming another one gets 403; the chain skips them).
    allowed_backends: frozenset[str] | None = None
    quota: Quota = field(default_factory=Quota)
    # An operator's key: reads and deletes every key's history, sees /healthz in full.
    admin: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def may_use(self, backend: str) -> bool:
        return self.allowed_backends is None or backend in self.allowed_backends


class DuplicateKey(Exception):
    """A key with this id or hash is already stored (a 48-bit id collision: make another key)."""


class KeyStore(Protocol):
    async def create(self, record: KeyRecord) -> None:
        """Store a new record; raises DuplicateKey if its id or hash is taken."""
        ...

    async def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        """Every key, oldest first."""
        ...

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Mark the key revoked (once: a second call keeps the first time). None if no such key."""
        ...

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        """The record with this hash, revoked or not; None if there is none."""
        ...


async def create_key(
    store: KeyStore,
    name: str,
    *,
    allowed_backends: Iterable[str] | None = None,
    quota: Quota | None = None,
    admin: bool = False,
) -> tuple[KeyRecord, str]:
    """Make a key, store its record, and return the record with the key (the only time the key exists in clear)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("a key's name must be 1..200 characters")
    backends = None if allowed_backends is None else frozenset(b.strip() for b in allowed_backends if b.strip())
    if backends is not None and not backends:
        raise ValueError("allowed_backends is empty: the key could use nothing (omit it to allow every backend)")
    new = tokens.generate()
    record = KeyRecord(
        id=new.key_id,
        name=name,
        key_hash=new.key_hash,
        allowed_backends=backends,
        quota=quota or Quota(),
        admin=admin,
    )
    await store.create(record)
    return record, new.key


class MemoryKeyStore:
    """Keys for one process (tests, and a one-replica gateway fed keys by code)."""

    def __init__(self) -> None:
        self._by_id: dict[str, KeyRecord] = {}
        # Nothing awaits while holding it: a thread lock, not bound to any one event loop.
        self._lock = threading.Lock()

    async def create(self, record: KeyRecord) -> None:
        with self._lock:
            if record.id in self._by_id or any(r.key_hash == record.key_hash for r in self._by_id.values()):
                raise DuplicateKey(record.id)
            self._by_id[record.id] = record

    async def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        records = sorted(self._by_id.values(), key=lambda r: r.created_at)
        return [r for r in records if include_revoked or not r.revoked]

    async def revoke(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            record = self._by_id.get(key_id)
            if record is None or record.revoked:
                return record
            record = self._by_id[key_id] = replace(record, revoked_at=datetime.now(timezone.utc))
            return record

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        return next((r for r in self._by_id.values() if r.key_hash == key_hash), None)
