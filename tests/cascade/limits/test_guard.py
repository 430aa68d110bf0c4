"""What the gateway gets from the limits: 429s with their headers, slots, spend held and settled; over the
in-process store and a real Redis alike, and what happens when Redis is gone."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from cascade.errors import RateLimited, http_headers, http_status
from cascade.limits.guard import Caller, Guard, LimitPolicy
from cascade.limits.prices import PriceTable
from cascade.limits.quota import Quota
from cascade.limits.redis_store import RedisLimitStore
from tests.cascade.limits.conftest import OpenStore
from tests.services.redis_server import RedisServer, free_port

PRICES = PriceTable.from_usd({"openai:gpt-image-1.5": 0.04, "fal:*": 0.003})


def caller(**quota: float) -> Caller:
    return Caller(key_id=uuid.uuid4().hex[:12], quota=Quota(**quota))  # type: ignore[arg-type]


def policy(**kw: object) -> LimitPolicy:
    # A prefix per test keeps tests that share one Redis apart.
    return LimitPolicy(prefix=f"t{uuid.uuid4().hex[:8]}", prices=PRICES, **kw)  # type: ignore[arg-type]


def test_past_its_rate_a_key_gets_429_with_retry_after_and_the_rate_headers(open_store: OpenStore) -> None:
    who = caller(rate_per_s=0.01, burst=2)

    async def main() -> tuple[list[dict[str, str]], RateLimited]:
        guard = Guard(open_store(), policy())
        try:
            ok = [(await guard.admit(who)).headers for _ in range(2)]
            with pytest.raises(RateLimited) as refused:
                await guard.admit(who)
            return ok, refused.value
        finally:
            await guard.store.aclose()

    ok, refused = asyncio.run(main())
    assert [h["x-ratelimit-remaining"] for h in ok] == ["1", "0"]
    assert http_status(refused) == 429 and refused.limit == "rate"
    headers = http_headers(refused)
    assert 90 <= int(headers["retry-after"]) <= 100
    assert headers["x-ratelimit-limit"] == "2" and headers["x-ratelimit-remaining"] == "0"
    assert who.key_id in str(refused)


def test_concurrency_is_a_slot_per_request_given_back_by_finish(open_store: OpenStore) -> None:
    who = caller(max_concurrency=2, daily_images=4)

    async def main() -> None:
        guard = Guard(open_store(), policy())
        try:
            first, second = await guard.admit(who), await guard.admit(who)
            with pytest.raises(RateLimited) as refused:
                await guard.admit(who)
            assert refused.value.limit == "concurrency" and refused.value.headers["retry-after"] == "1"
            await guard.finish(first, images_made=1)
            await guard.finish(second, images_made=1)
            # The refused request took no image from the day: two more fit in the 4, then none.
            for _ in range(2):
                await guard.finish(await guard.admit(who), images_made=1)
            with pytest.raises(RateLimited) as used_up:
                await guard.admit(who)
            assert used_up.value.limit == "daily_images"
        finally:
            await guard.store.aclose()

    asyncio.run(main())


def test_daily_images_run_out_until_midnight_utc_and_unmade_images_are_given_back(open_store: OpenStore) -> None:
    who = caller(daily_images=2)

    async def main() -> RateLimited:
        guard = Guard(open_store(), policy())
        try:
            await guard.finish(await guard.admit(who), images_made=1)
            await guard.finish(await guard.admit(who), images_made=0)  # every backend failed: not counted
            await guard.finish(await guard.admit(who), images_made=1)
            with pytest.raises(RateLimited) as refused:
                await guard.admit(who)
            return refused.value
        finally:
            await guard.store.aclose()

    refused = asyncio.run(main())
    assert refused.limit == "daily_images" and refused.status == 429
    to_midnight = 86_400 - time.time() % 86_400
    assert abs(int(refused.headers["retry-after"]) - to_midnight) < 5
    assert refused.headers["x-ratelimit-limit"] == "2"


def test_a_backend_cap_holds_across_callers_and_a_full_backend_is_busy(open_store: OpenStore) -> None:
    async def main() -> None:
        guard = Guard(open_store(), policy(backend_caps={"qwen_image": 1}))
        try:
            slot = await guard.backend_slot("qwen_image")
            assert slot is not None and slot.lease is not None
            assert await guard.backend_slot("qwen_image") is None
            uncapped = await guard.backend_slot("pillow")
            assert uncapped is not None and uncapped.lease is None
            await guard.release_slot(slot)
            assert await guard.backend_slot("qwen_image") is not None
        finally:
            await guard.store.aclose()

    asyncio.run(main())


def test_spend_holds_the_dearest_price_and_charges_what_was_bought(open_store: OpenStore) -> None:
    who = caller(daily_spend_usd=0.1)

    async def main() -> list[int]:
        guard = Guard(open_store(), policy())
        try:
            charges = []
            for provider in ("openai:gpt-image-1.5", "fal:fal-ai/flux/schnell", None, "openai:gpt-image-1.5"):
                hold = await guard.hold_spend(who)
                assert hold is not None and hold.held == 40_000
                charges.append(await guard.settle_spend(hold, provider))
            # 0.083 spent: one more image could cost 0.04, past the 0.1 budget.
            with pytest.raises(RateLimited) as refused:
                await guard.hold_spend(who)
            assert refused.value.limit == "daily_spend" and refused.value.status == 429
            assert "$0.017 left" in str(refused.value)
            assert int(refused.value.headers["retry-after"]) > 0
            assert await guard.hold_spend(caller()) is None  # no spend limit: nothing held
            return charges
        finally:
            await guard.store.aclose()

    assert asyncio.run(main()) == [40_000, 3_000, 0, 40_000]


def test_an_unpriced_model_is_charged_the_dearest_price() -> None:
    assert PRICES.charge("gemini:gemini-3-pro-image") == 40_000
    assert PRICES.charge("fal:anything") == 3_000
    assert PriceTable.from_usd({"openai:*": 0.02}, unknown_usd=0.5).charge("gemini:x") == 500_000


def test_with_no_prices_a_spend_limited_key_cannot_buy() -> None:
    from cascade.limits.memory import MemoryLimitStore

    guard = Guard(MemoryLimitStore(), LimitPolicy())
    with pytest.raises(RateLimited) as refused:
        asyncio.run(guard.hold_spend(caller(daily_spend_usd=5)))
    assert refused.value.status == 403 and "no image prices" in str(refused.value)


def test_two_guards_on_one_redis_keep_one_limit(redis: RedisServer) -> None:
    """Two guards with their own clients stand for two gateway replicas."""
    who = caller(rate_per_s=0.01, burst=3, daily_images=100)
    shared = policy()

    async def main() -> list[bool]:
        replicas = [Guard(RedisLimitStore.from_url(redis.url, timeout_s=2.0), shared) for _ in range(2)]
        try:
            allowed = []
            for i in range(8):
                try:
                    await replicas[i % 2].admit(who)
                    allowed.append(True)
                except RateLimited:
                    allowed.append(False)
            return allowed
        finally:
            for guard in replicas:
                await guard.store.aclose()

    assert asyncio.run(main()) == [True] * 3 + [False] * 5


def _dead_guard(on_store_error: str) -> Guard:
    store = RedisLimitStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    return Guard(store, policy(on_store_error=on_store_error, backend_caps={"qwen_image": 1}))


def test_redis_down_fail_open_lets_requests_through_but_never_spend() -> None:
    who = caller(rate_per_s=1, max_concurrency=1, daily_images=1, daily_spend_usd=10)

    async def main() -> None:
        guard = _dead_guard("fail_open")
        try:
            admitted = await guard.admit(who)
            assert admitted.headers == {} and admitted.lease is None
            await guard.finish(admitted, images_made=1)  # no error on the way out either
            slot = await guard.backend_slot("qwen_image")
            assert slot is not None and slot.lease is None
            with pytest.raises(RateLimited) as refused:
                await guard.hold_spend(who)
            assert refused.value.status == 503 and refused.value.headers["retry-after"] == "1"
        finally:
            await guard.store.aclose()

    asyncio.run(main())


def test_redis_down_fail_closed_answers_503_and_capped_backends_are_busy() -> None:
    async def main() -> None:
        guard = _dead_guard("fail_closed")
        try:
            with pytest.raises(RateLimited) as refused:
                await guard.admit(caller(rate_per_s=1))
            assert refused.value.status == 503 and refused.value.headers == {"retry-after": "1"}
            assert await guard.backend_slot("qwen_image") is None
            # A caller with no limits needs no store: it still gets in.
            await guard.admit(caller())
        finally:
            await guard.store.aclose()

    asyncio.run(main())
