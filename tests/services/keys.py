"""An API key made straight in a gateway's metadata index, as `python -m cascade.keys create` would."""

from __future__ import annotations

import asyncio
from typing import Any

from cascade.index import Index
from cascade.keys import create_key
from cascade.keys.sql import SqlKeyStore
from cascade.limits.quota import Quota


def make_key(database: str, name: str, *, backends: list[str] | None = None, admin: bool = False, **quota: Any) -> str:
    async def make() -> str:
        index = Index(database)
        store = SqlKeyStore(index.engine)
        try:
            _, key = await create_key(store, name, allowed_backends=backends, quota=Quota(**quota), admin=admin)
            return key
        finally:
            store.close()
            index.close()

    return asyncio.run(make())
