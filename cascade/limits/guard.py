"""The limits a gateway enforces, composed from `LimitStore` primitives: what the gateway calls.

Per request: `admit` (rate, daily images, concurrency) before any work, `finish` after; `admit(images=0)` leaves the
daily image count to `hold_images`/`release_images` around each image (a request that asks for several, or that
turns out invalid, counts what it really makes). Per backend call:
`backend_slot` (a global cap that protects a GPU queue: None means "busy", go to the next backend) and, for
the paid remote backend, `hold_spend` before and `settle_spend` after with the provider that sold the image.

When the store fails: rate, concurrency, daily images and backend caps follow `on_store_error` (`fail_open`
lets the request through, logged; `fail_closed` answers 503 with Retry-After, or "busy" for a backend cap).
Spend always fails closed: money is not spent on a guess.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from cascade.errors import RateLimited
from cascade.limits.prices import PriceTable
from cascade.limits.quota import Quota
from cascade.limits.store import Decision, LimitStore, StoreUnavailable

logger = logging.getLogger("cascade.limits")

OnStoreError = Literal["fail_open", "fail_closed"]
_DAY_S = 86_400


@dataclass(frozen=True)
class LimitPolicy:
    on_store_error: OnStoreError = "fail_open"
    # A lease outlives the longest request, so it is never lost under a live one, and frees itself after a crash.
    lease_ttl_s: float = 300.0
    backend_caps: dict[str, int] = field(default_factory=dict)
    prices: PriceTable = field(default_factory=PriceTable)
    prefix: str = "cascade"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key id ("anonymous" when auth is off) and its quota with defaults applied."""

    key_id: str
    quota: Quota


@dataclass(frozen=True)
class Admission:
    caller: Caller
    # x-ratelimit-* of the caller's rate limit, for the response (empty when it has none).
    headers: dict[str, str]
    lease: str | None = None
    images_counter: str | None = None
    images: int = 0


@dataclass(frozen=True)
class ImageHold:
    counter: str
    images: int


@dataclass(frozen=True)
class Slot:
    backend: str
    lease: str | None  # None: no cap, or the store was down and the policy let it through


@dataclass(frozen=True)
class SpendHold:
    caller: Caller
    counter: str
    held: int  # micro-dollars


class Guard:
    def __init__(self, store: LimitStore, policy: LimitPolicy, clock: Callable[[], float] = time.time) -> None:
        self.store, self.policy, self._clock = store, policy, clock
        self._last_warning = -math.inf

    async def admit(self, caller: Caller, images: int = 1) -> Admission:
        """Raises RateLimited (429, or 503 when the store is down and limits fail closed)."""
        q, key = caller.quota, caller.key_id
        headers: dict[str, str] = {}
        if q.rate_per_s is not None:
            rate = await self._ask(
                "rate", self.store.gcra(self._name("rate", key), 1 / q.rate_per_s, q.effective_burst)
            )
            if rate is not None:
                if not rate.allowed:
                    raise RateLimited("rate", f"over {q.rate_per_s:g} requests/s for key {key}", rate.headers())
                headers = rate.headers()
        hold = await self.hold_images(caller, images) if images > 0 else None
        counter = hold.counter if hold is not None else None
        lease = None
        if q.max_concurrency is not None:
            lease = uuid.uuid4().hex
            try:
                slot = await self._ask(
                    "concurrency",
                    self.store.acquire(self._name("inflight", key), lease, q.max_concurrency, self.policy.lease_ttl_s),
                )
            except RateLimited:
                await self._refund(counter, images)
                raise
            if slot is None:
                lease = None
            elif not slot.allowed:
                await self._refund(counter, images)
                msg = f"{q.max_concurrency} requests already in flight for key {key}"
                raise RateLimited("concurrency", msg, slot.headers())
        return Admission(caller, headers, lease, counter, images if counter else 0)

    async def hold_images(self, caller: Caller, images: int = 1) -> ImageHold | None:
        """Count `images` against the caller's UTC day before making them; 429 when the day cannot cover them.
        None when the caller has no daily quota (or the store is down and the policy lets it through)."""
        limit = caller.quota.daily_images
        if limit is None:
            return None
        counter = self._name("images", caller.key_id, self._day())
        day = await self._ask("daily_images", self.store.reserve(counter, images, limit, self._day_left()))
        if day is None:
            return None
        if not day.allowed:
            raise RateLimited("daily_images", f"daily image quota ({limit}) used up", day.headers())
        return ImageHold(counter, images)

    async def release_images(self, hold: ImageHold | None, made: int) -> None:
        """Give back the held images that were not made. Never raises."""
        if hold is not None:
            await self._refund(hold.counter, hold.images - made)

    async def finish(self, admission: Admission, images_made: int) -> None:
        """Free the concurrency slot and give back images not made. Never raises: a lease the store missed
        expires by itself, a refund the store missed leaves the count on the safe side."""
        key = admission.caller.key_id
        if admission.lease is not None:
            await self._quietly(self.store.release(self._name("inflight", key), admission.lease))
        await self._refund(admission.images_counter, admission.images - images_made)

    async def backend_slot(self, backend: str) -> Slot | None:
        """A place in `backend`'s global cap, or None when it is full (treat the backend as busy)."""
        cap = self.policy.backend_caps.get(backend)
        if cap is None:
            return Slot(backend, None)
        lease = uuid.uuid4().hex
        try:
            got = await self.store.acquire(self._name("backend", backend), lease, cap, self.policy.lease_ttl_s)
        except StoreUnavailable:
            self._warn(f"backend cap {backend}")
            return Slot(backend, None) if self.policy.on_store_error == "fail_open" else None
        return Slot(backend, lease) if got.allowed else None

    async def release_slot(self, slot: Slot) -> None:
        if slot.lease is not None:
            await self._quietly(self.store.release(self._name("backend", slot.backend), slot.lease))

    async def hold_spend(self, caller: Caller) -> SpendHold | None:
        """Hold back the dearest image's price from the caller's daily spend before a remote call.
        None when the caller has no spend limit. Raises RateLimited when the day's budget cannot cover one
        more image, when nothing is priced, or when the store is down (always: spend fails closed)."""
        limit_usd = caller.quota.daily_spend_usd
        if limit_usd is None:
            return None
        ceiling = self.policy.prices.ceiling()
        if ceiling is None:
            raise RateLimited("daily_spend", "no image prices configured, so a spend limit cannot be kept", {}, 403)
        counter = self._name("spend", caller.key_id, self._day())
        limit = round(limit_usd * 1_000_000)
        try:
            got = await self.store.reserve(counter, ceiling, limit, self._day_left())
        except StoreUnavailable:
            self._warn("daily spend")
            unavailable = {"retry-after": "1"}
            raise RateLimited("daily_spend", "spend limits unavailable; retry shortly", unavailable, 503) from None
        if not got.allowed:
            left = max(0, got.remaining) / 1_000_000
            headers = {"retry-after": str(max(1, math.ceil(got.retry_after_s)))}
            raise RateLimited(
                "daily_spend", f"daily remote spend limit (${limit_usd:g}) reached: ${left:g} left", headers
            )
        return SpendHold(caller, counter, ceiling)

    async def settle_spend(self, hold: SpendHold, provider: str | None) -> int:
        """Charge what was bought (`ImageResult.provider`, None if nothing was) against the hold; the charge
        in micro-dollars. A settle the store misses leaves the full hold charged: the safe side."""
        charge = 0 if provider is None else self.policy.prices.charge(provider)
        if provider is not None and self.policy.prices.price(provider) is None:
            logger.warning("no price for %s: charged the dearest configured price", provider)
        if charge != hold.held:
            await self._quietly(self.store.adjust(hold.counter, charge - hold.held, self._day_left()))
        return charge

    async def _ask(self, limit: str, pending: Awaitable[Decision]) -> Decision | None:
        """The store's decision; None when the store is down and the policy lets the request through."""
        try:
            return await pending
        except StoreUnavailable:
            self._warn(limit)
            if self.policy.on_store_error == "fail_open":
                return None
            raise RateLimited(limit, "limits unavailable; retry shortly", {"retry-after": "1"}, 503) from None

    async def _refund(self, counter: str | None, images: int) -> None:
        if counter is not None and images > 0:
            await self._quietly(self.store.adjust(counter, -images, self._day_left()))

    async def _quietly(self, pending: Awaitable[object]) -> None:
        try:
            await pending
        except StoreUnavailable:
            self._warn("cleanup")

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 10:  # once per 10 s, not once per request
            self._last_warning = now
            logger.warning("limit store unavailable (%s): policy %s", what, self.policy.on_store_error)

    def _name(self, kind: str, *parts: str) -> str:
        return ":".join((self.policy.prefix, kind, *parts))

    def _day(self) -> str:
        return time.strftime("%Y%m%d", time.gmtime(self._clock()))

    def _day_left(self) -> float:
        return _DAY_S - self._clock() % _DAY_S
