"""API keys: made with `python -m cascade.keys`, presented as `Authorization: Bearer <key>` or `x-api-key`."""

from __future__ import annotations

from cascade.keys.auth import Authenticator, presented_key, require_backend
from cascade.keys.store import DuplicateKey, KeyRecord, KeyStore, MemoryKeyStore, create_key

__all__ = [
    "Authenticator",
    "DuplicateKey",
    "KeyRecord",
    "KeyStore",
    "MemoryKeyStore",
    "create_key",
    "presented_key",
    "require_backend",
]
