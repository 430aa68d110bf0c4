"""Keys, limits and the chain's guards as the gateway uses them, on plain asyncio (the Serve-level tests are in
tests/deployments/test_access.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from cascade.access import INTERNAL, Access, Grant
from cascade.access_config import AccessConfig
from cascade.errors import BackendFailed, Forbidden, RateLimited, Unauthorized, http_headers, http_status
from cascade.fallback import Step, run_chain
from cascade.keys import MemoryKeyStore, create_key
from cascade.limits.memory import MemoryLimitStore
from cascade.limits.quota import Quota
from cascade.types import ImageResult

PRICED = {"prices_usd": {"openai:gpt-image-1.5": 0.04, "fal:*": 0.003}}


def access(auth: str = "required", **limits: object) -> tuple[Access, MemoryKeyStore, MemoryLimitStore]:
    keys, store = MemoryKeyStore(), MemoryLimitStore()
    config = AccessConfig.model_validate({"auth": auth, "limits": {**PRICED, **limits}})
    return Access.open(config, keys, store, request_timeout_s=30, remote={"remote": True}), keys, store


def image(provider: str) -> ImageResult:
    return ImageResult(b"png", "image/png", 8, 8, 1, provider)


def step(name: str, body: Callable[[], Awaitable[ImageResult]], timeout_s: float = 5) -> Step:
    return Step(name, timeout_s, lambda: asyncio.ensure_future(body()))


def test_auth_off_makes_every_caller_anonymous_with_the_anonymous_limits() -> None:
    async def main() -> None:
        gate, keys, _ = access("off", anonymous={"rate_per_s": 0.01, "burst": 1})
        _, key = await create_key(keys, "ignored")
        grant = await gate.admit({"x-api-key": key})
        assert grant.key is None and grant.caller.key_id == "anonymous"
        assert grant.headers["x-ratelimit-limit"] == "1"
        with pytest.raises(RateLimited):
            await gate.admit({})
        assert gate.sees_everything(grant) and gate.owner(grant) is None

    asyncio.run(main())


def test_with_auth_required_no_key_is_401_and_past_the_rate_is_429_with_retry_after() -> None:
    async def main() -> None:
        gate, keys, _ = access(key_defaults={"rate_per_s": 0.01, "burst": 2})
        with pytest.raises(Unauthorized) as missing:
            await gate.admit({})
        assert http_status(missing.value) == 401 and "www-authenticate" in http_headers(missing.value)
        record, key = await create_key(keys, "app")
        first = await gate.admit({"authorization": f"Bearer {key}"})
        assert first.key_id == record.id and first.caller.quota.rate_per_s == 0.01
        assert first.headers == {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "100"}
        await gate.admit({"x-api-key": key})
        with pytest.raises(RateLimited) as refused:
            await gate.admit({"x-api-key": key})
        assert refused.value.status == 429 and int(http_headers(refused.value)["retry-after"]) >= 99
        assert not gate.sees_everything(first) and gate.owner(first) == record.id

    asyncio.run(main())


def test_concurrency_is_held_until_finish() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "one at a time", quota=Quota(max_concurrency=1))
        held = await gate.admit({"x-api-key": key})
        with pytest.raises(RateLimited, match="1 requests already in flight"):
            await gate.admit({"x-api-key": key})
        await gate.finish(held)
        await gate.finish(await gate.admit({"x-api-key": key}))

    asyncio.run(main())


def test_a_key_limited_to_pillow_gets_403_for_qwen_image_and_the_chain_skips_it() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "pillow only", allowed_backends=["pillow", "svg"])
        grant = await gate.admit({"x-api-key": key})
        gate.check_backend(grant, "pillow")
        gate.check_backend(grant, None)
        with pytest.raises(Forbidden) as refused:
            gate.check_backend(grant, "qwen_image")
        assert http_status(refused.value) == 403
        called: list[str] = []

        async def qwen() -> ImageResult:
            called.append("qwen_image")
            return image("qwen_image")

        async def pillow() -> ImageResult:
            return image("pillow")

        guard = gate.chain(grant)
        steps = [guard.step(step("qwen_image", qwen)), guard.step(step("pillow", pillow))]
        chain = await run_chain(steps, time.monotonic() + 10)
        assert [(a.backend, a.outcome) for a in chain.attempts] == [("qwen_image", "skipped"), ("pillow", "ok")]
        assert chain.attempts[0].error == f"key {grant.key_id} may not use qwen_image" and called == []
        gate.check_backend(INTERNAL, "qwen_image")  # in-cluster callers are trusted

    asyncio.run(main())


def test_a_full_backend_cap_is_busy_for_everyone_and_frees_when_the_call_ends() -> None:
    async def main() -> None:
        gate, keys, _ = access(backend_caps={"qwen_image": 1})
        _, key = await create_key(keys, "app")
        grant = await gate.admit({"x-api-key": key})
        release = asyncio.Event()

        async def slow() -> ImageResult:
            await release.wait()
            return image("qwen_image")

        async def fallback() -> ImageResult:
            return image("pillow")

        first = asyncio.ensure_future(
            run_chain([gate.chain(grant).step(step("qwen_image", slow))], time.monotonic() + 10)
        )
        await asyncio.sleep(0.05)
        second = await run_chain(
            [gate.chain(INTERNAL).step(step("qwen_image", slow)), step("pillow", fallback)], time.monotonic() + 10
        )
        assert [(a.backend, a.outcome) for a in second.attempts] == [("qwen_image", "busy"), ("pillow", "ok")]
        assert "1 calls in flight" in (second.attempts[0].error or "")
        release.set()
        assert (await first).backend == "qwen_image"
        third = await run_chain([gate.chain(grant).step(step("qwen_image", slow))], time.monotonic() + 10)
        assert third.backend == "qwen_image"

    asyncio.run(main())


def spend(gate: Access, grant: Grant) -> float:
    """The key's spend so far today, in USD, read back from the limit store."""
    counter = gate.guard._name("spend", grant.caller.key_id, gate.guard._day())
    value, _ = gate.guard.store._counters.get(counter, (0, 0.0))  # type: ignore[attr-defined]
    return value / 1_000_000


def test_remote_spend_is_held_then_settled_at_the_price_of_what_was_bought() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "buyer", quota=Quota(daily_spend_usd=0.05))
        grant = await gate.admit({"x-api-key": key})

        async def fal() -> ImageResult:
            assert spend(gate, grant) == pytest.approx(0.04)  # the dearest price, held during the call
            return image("fal:fal-ai/flux/schnell")

        async def failing() -> ImageResult:
            raise BackendFailed("every provider said no")

        chain = await run_chain([gate.chain(grant).step(step("remote", fal))], time.monotonic() + 10)
        assert chain.backend == "remote" and spend(gate, grant) == pytest.approx(0.003)
        await run_chain([gate.chain(grant).step(step("remote", failing))], time.monotonic() + 10)
        assert spend(gate, grant) == pytest.approx(0.003)  # nothing bought, nothing charged

    asyncio.run(main())


def test_over_its_spend_the_chain_carries_on_locally_and_a_request_naming_remote_gets_the_429() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "broke", quota=Quota(daily_spend_usd=0.01))
        grant = await gate.admit({"x-api-key": key})
        bought: list[str] = []

        async def remote() -> ImageResult:
            bought.append("remote")
            return image("openai:gpt-image-1.5")

        async def pillow() -> ImageResult:
            return image("pillow")

        guard = gate.chain(grant)
        chain = await run_chain([guard.step(step("remote", remote)), step("pillow", pillow)], time.monotonic() + 10)
        assert [(a.backend, a.outcome) for a in chain.attempts] == [("remote", "skipped"), ("pillow", "ok")]
        assert "daily remote spend limit ($0.01) reached" in (chain.attempts[0].error or "") and bought == []
        assert guard.refusal(None) is None and guard.refusal("pillow") is None
        refused = guard.refusal("remote")
        assert refused is not None and refused.status == 429 and "retry-after" in refused.headers

    asyncio.run(main())


def test_a_remote_call_that_times_out_keeps_its_hold_charged() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "impatient", quota=Quota(daily_spend_usd=1))
        grant = await gate.admit({"x-api-key": key})

        async def hang() -> ImageResult:
            await asyncio.sleep(60)
            raise AssertionError("not reached")

        chain = await run_chain([gate.chain(grant).step(step("remote", hang, timeout_s=0.2))], time.monotonic() + 10)
        assert chain.attempts[0].outcome == "timeout"
        await asyncio.sleep(0.05)
        assert spend(gate, grant) == pytest.approx(0.04)  # the provider may have sold it: the safe side

    asyncio.run(main())


def test_daily_images_are_counted_per_image_and_given_back_when_none_came() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "two a day", quota=Quota(daily_images=2))
        grant = await gate.admit({"x-api-key": key})
        async with gate.images(grant):
            pass
        with pytest.raises(BackendFailed):
            async with gate.images(grant):
                raise BackendFailed("no image")
        async with gate.images(grant):
            pass
        with pytest.raises(RateLimited, match="daily image quota"):
            async with gate.images(grant):
                pass

    asyncio.run(main())


def test_auth_required_needs_a_key_store() -> None:
    config = AccessConfig(auth="required")
    with pytest.raises(ValueError, match="no key store"):
        Access.open(config, None, MemoryLimitStore(), request_timeout_s=30)


def test_a_grant_survives_pickling_so_it_can_travel_with_a_job_to_another_replica() -> None:
    import pickle

    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "jobs", allowed_backends=["pillow"], quota=Quota(rate_per_s=1))
        grant = await gate.admit({"x-api-key": key})
        again = pickle.loads(pickle.dumps(grant))
        assert again == grant and again.key_id == grant.key_id and not again.key.may_use("qwen_image")

    asyncio.run(main())


def test_a_job_keeps_its_concurrency_slot_and_its_image_until_it_ends_and_gets_the_image_back_if_none_came() -> None:
    async def main() -> None:
        gate, keys, _ = access()
        _, key = await create_key(keys, "jobs", quota=Quota(max_concurrency=1, daily_images=1))
        job = await gate.admit({"x-api-key": key})
        hold = await gate.hold_image(job)
        with pytest.raises(RateLimited, match="already in flight"):
            await gate.admit({"x-api-key": key})  # the job is still running
        await gate.end_job(job, hold, made=False)  # cancelled: nothing made
        again = await gate.admit({"x-api-key": key})
        kept = await gate.hold_image(again)  # the day's image came back
        await gate.end_job(again, kept, made=True)
        last = await gate.admit({"x-api-key": key})
        with pytest.raises(RateLimited, match="daily image quota"):
            await gate.hold_image(last)

    asyncio.run(main())
