"""The limit tests run once over the in-process store and once over a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from cascade.limits.memory import MemoryLimitStore
from cascade.limits.redis_store import RedisLimitStore
from cascade.limits.store import LimitStore
from tests.services.redis_server import RedisServer, redis_server

# Opens one "replica's" store. Memory: every call returns the same store (one process is one replica).
# Redis: every call opens a new client, like another gateway replica would.
OpenStore = Callable[[], LimitStore]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def open_store(request: pytest.FixtureRequest) -> OpenStore:
    if request.param == "memory":
        store = MemoryLimitStore()
        return lambda: store
    server: RedisServer = request.getfixturevalue("redis")
    return lambda: RedisLimitStore.from_url(server.url, timeout_s=2.0)


@pytest.fixture
def name() -> str:
    """A fresh counter name per test, so tests sharing one Redis never see each other's state."""
    return f"test:{uuid.uuid4().hex}"
