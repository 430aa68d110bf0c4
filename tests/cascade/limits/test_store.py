"""The limit primitives, over the in-process store and a real redis-server alike (see conftest)."""

from __future__ import annotations

import asyncio
import time

import pytest

from cascade.limits.redis_store import RedisLimitStore
from cascade.limits.store import Decision, StoreUnavailable
from tests.cascade.limits.conftest import OpenStore
from tests.services.redis_server import RedisServer, free_port

SLOW = 100.0  # seconds per request: nothing refills while a test runs


def test_gcra_allows_the_burst_then_refuses_with_retry_after(open_store: OpenStore, name: str) -> None:
    async def main() -> list[Decision]:
        store = open_store()
        try:
            return [await store.gcra(name, SLOW, 3) for _ in range(5)]
        finally:
            await store.aclose()

    got = asyncio.run(main())
    assert [d.allowed for d in got] == [True, True, True, False, False]
    assert [d.remaining for d in got] == [2, 1, 0, 0, 0]
    refused = got[3]
    # The next slot opens one interval after the first request.
    assert SLOW - 5 < refused.retry_after_s <= SLOW
    assert 3 * SLOW - 5 < refused.reset_s <= 3 * SLOW
    headers = refused.headers()
    assert headers["x-ratelimit-limit"] == "3" and headers["x-ratelimit-remaining"] == "0"
    assert int(headers["retry-after"]) in (99, 100) and int(headers["x-ratelimit-reset"]) in (299, 300)
    assert "retry-after" not in got[0].headers()


def test_gcra_lets_one_more_through_after_retry_after_and_refusals_cost_nothing(
    open_store: OpenStore, name: str
) -> None:
    async def main() -> tuple[bool, list[Decision], bool]:
        store = open_store()
        try:
            first = (await store.gcra(name, 1.0, 1)).allowed
            # Hammering while refused must not push the next slot further away.
            refusals = [await store.gcra(name, 1.0, 1) for _ in range(6)]
            await asyncio.sleep(refusals[-1].retry_after_s + 0.01)
            return first, refusals, (await store.gcra(name, 1.0, 1)).allowed
        finally:
            await store.aclose()

    first, refusals, after = asyncio.run(main())
    assert first and after
    assert not any(d.allowed for d in refusals)
    waits = [d.retry_after_s for d in refusals]
    assert waits == sorted(waits, reverse=True) and 0 < waits[-1] <= 1.0


def test_leases_cap_what_is_in_flight_and_release_frees_a_slot(open_store: OpenStore, name: str) -> None:
    async def main() -> None:
        store = open_store()
        try:
            a, b = await store.acquire(name, "a", 2, 60), await store.acquire(name, "b", 2, 60)
            assert (a.allowed, a.remaining, b.allowed, b.remaining) == (True, 1, True, 0)
            c = await store.acquire(name, "c", 2, 60)
            assert not c.allowed and c.headers()["retry-after"] == "1"
            # Taking a lease already held renews it; it does not take a second slot.
            assert (await store.acquire(name, "a", 2, 60)).allowed
            await store.release(name, "a")
            assert (await store.acquire(name, "c", 2, 60)).allowed
            assert not (await store.acquire(name, "d", 2, 60)).allowed
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_lease_nobody_releases_frees_its_slot_when_it_expires(open_store: OpenStore, name: str) -> None:
    async def main() -> None:
        store = open_store()
        try:
            assert (await store.acquire(name, "dead-replica", 1, 0.3)).allowed
            assert not (await store.acquire(name, "live", 1, 60)).allowed
            await asyncio.sleep(0.4)
            assert (await store.acquire(name, "live", 1, 60)).allowed
        finally:
            await store.aclose()

    asyncio.run(main())


def test_counters_stop_at_the_limit_and_refunds_give_room_back(open_store: OpenStore, name: str) -> None:
    async def main() -> None:
        store = open_store()
        try:
            first = await store.reserve(name, 2, 3, 3600)
            assert first.allowed and first.remaining == 1 and 3590 < first.reset_s <= 3600
            too_much = await store.reserve(name, 2, 3, 3600)
            assert not too_much.allowed and too_much.remaining == 1
            assert 3590 < too_much.retry_after_s <= 3600
            assert (await store.reserve(name, 1, 3, 3600)).allowed
            assert not (await store.reserve(name, 1, 3, 3600)).allowed
            assert await store.adjust(name, -2, 3600) == 1
            assert (await store.reserve(name, 2, 3, 3600)).allowed
        finally:
            await store.aclose()

    asyncio.run(main())


def test_more_than_the_limit_at_once_is_refused_until_the_counter_would_reset(open_store: OpenStore, name: str) -> None:
    async def main() -> Decision:
        store = open_store()
        try:
            return await store.reserve(name, 1, 0, 3600)  # e.g. daily_images: 0
        finally:
            await store.aclose()

    refused = asyncio.run(main())
    assert not refused.allowed and 3590 < refused.retry_after_s <= 3600


def test_a_counter_starts_again_from_zero_when_it_expires(open_store: OpenStore, name: str) -> None:
    async def main() -> None:
        store = open_store()
        try:
            assert (await store.reserve(name, 1, 1, 0.3)).allowed
            assert not (await store.reserve(name, 1, 1, 0.3)).allowed
            await asyncio.sleep(0.4)
            assert (await store.reserve(name, 1, 1, 0.3)).allowed
        finally:
            await store.aclose()

    asyncio.run(main())


def test_simultaneous_requests_never_exceed_a_limit(open_store: OpenStore, name: str) -> None:
    async def main() -> tuple[int, int, int]:
        stores = [open_store() for _ in range(4)]
        try:
            leases = await asyncio.gather(*(stores[i % 4].acquire(name, f"l{i}", 5, 60) for i in range(40)))
            counts = await asyncio.gather(*(stores[i % 4].reserve(name + ":n", 1, 7, 60) for i in range(40)))
            rates = await asyncio.gather(*(stores[i % 4].gcra(name + ":r", SLOW, 6) for i in range(40)))
            return sum(d.allowed for d in leases), sum(d.allowed for d in counts), sum(d.allowed for d in rates)
        finally:
            for store in {id(s): s for s in stores}.values():
                await store.aclose()

    assert asyncio.run(main()) == (5, 7, 6)


def test_two_redis_clients_share_one_limit_and_do_not_double_it(redis: RedisServer, name: str) -> None:
    """Two clients stand for two gateway replicas: the limit is global, not per replica."""

    async def main() -> list[bool]:
        one = RedisLimitStore.from_url(redis.url, timeout_s=2.0)
        two = RedisLimitStore.from_url(redis.url, timeout_s=2.0)
        try:
            allowed = []
            for i in range(10):
                allowed.append((await (one if i % 2 else two).gcra(name, SLOW, 4)).allowed)
            return allowed
        finally:
            await one.aclose()
            await two.aclose()

    assert asyncio.run(main()) == [True] * 4 + [False] * 6


def test_an_unreachable_redis_is_unavailable_fast_and_not_retried_at_once() -> None:
    async def main() -> tuple[float, float]:
        store = RedisLimitStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5, retry_s=30)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.gcra("x", 1, 1)
            first = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="not retried yet"):
                await store.acquire("x", "l", 1, 1)
            return first, time.monotonic() - started
        finally:
            await store.aclose()

    first, second = asyncio.run(main())
    assert first < 5 and second < 0.05


def test_a_redis_that_dies_midway_is_unavailable_and_its_url_stays_out_of_the_error(name: str) -> None:
    from tests.services.redis_server import redis_server

    async def main() -> None:
        with redis_server() as server:
            store = RedisLimitStore.from_url(server.url, timeout_s=1.0, retry_s=0)
            try:
                assert (await store.reserve(name, 1, 5, 60)).allowed
                server.stop()
                with pytest.raises(StoreUnavailable) as caught:
                    await store.reserve(name, 1, 5, 60)
                assert server.url not in str(caught.value)
            finally:
                await store.aclose()

    asyncio.run(main())
