"""`LimitStore` on Redis: every gateway replica sees the same limits.

Each primitive is one Lua script touching one key, so it is atomic on the server and works on Redis Cluster.
The scripts read Redis's own clock (`TIME`; allowed before writes since Redis 5 replicates effects), so
replicas whose clocks disagree still agree on every limit. Times inside the scripts are integer microseconds
written with `%.0f`: Lua's default number formatting would round them to 14 digits.

A Redis that does not answer within `timeout_s` raises `StoreUnavailable`; after a failure the store does not
try again for `retry_s`, so a dead Redis costs requests nothing but the caller's failure policy.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from cascade.limits.store import Decision, StoreUnavailable

T = TypeVar("T")
_US = 1_000_000

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS[1] theoretical arrival time; ARGV interval_us, burst -> {allowed, remaining, reset_us, retry_us}
_GCRA = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((tolerance - (new_tat - now)) / interval + 1e-9), new_tat - now, 0}
"""
)

# KEYS[1] sorted set lease -> expiry_us; ARGV lease, limit, ttl_us -> {allowed, remaining}
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local limit = tonumber(ARGV[2])
local held = redis.call('ZCARD', KEYS[1])
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not mine and held >= limit then
  return {0, 0}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.ceil(tonumber(last[2]) / 1000) + 1))
return {1, limit - redis.call('ZCARD', KEYS[1])}
"""
)

# KEYS[1] counter; ARGV amount, limit, ttl_ms -> {allowed, remaining, pttl_ms}
_RESERVE = """
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + amount > limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[3]) end  -- no counter yet: it would start now
  return {0, limit - used, ttl}
end
local value = redis.call('INCRBY', KEYS[1], amount)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, limit - value, redis.call('PTTL', KEYS[1])}
"""

# KEYS[1] counter; ARGV amount, ttl_ms -> value
_ADJUST = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""


class RedisLimitStore:
    def __init__(self, client: aioredis.Redis, *, retry_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._retry_s, self._clock = retry_s, clock
        self._down_until = 0.0
        self._gcra = client.register_script(_GCRA)
        self._acquire = client.register_script(_ACQUIRE)
        self._reserve = client.register_script(_RESERVE)
        self._adjust = client.register_script(_ADJUST)

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 0.25, retry_s: float = 1.0) -> RedisLimitStore:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )
        return cls(client, retry_s=retry_s)

    async def gcra(self, name: str, interval_s: float, burst: int) -> Decision:
        allowed, remaining, reset_us, retry_us = await self._call(
            self._gcra(keys=[name], args=[max(1, round(interval_s * _US)), burst])
        )
        return Decision(bool(allowed), burst, int(remaining), reset_s=reset_us / _US, retry_after_s=retry_us / _US)

    async def acquire(self, name: str, lease: str, limit: int, ttl_s: float) -> Decision:
        allowed, remaining = await self._call(self._acquire(keys=[name], args=[lease, limit, round(ttl_s * _US)]))
        if not allowed:
            return Decision(False, limit, 0, reset_s=1.0, retry_after_s=1.0)
        return Decision(True, limit, int(remaining), reset_s=0.0)

    async def release(self, name: str, lease: str) -> None:
        await self._call(self._client.zrem(name, lease))

    async def reserve(self, name: str, amount: int, limit: int, ttl_s: float) -> Decision:
        allowed, remaining, pttl = await self._call(
            self._reserve(keys=[name], args=[amount, limit, max(1, round(ttl_s * 1000))])
        )
        reset = max(0, int(pttl)) / 1000
        return Decision(bool(allowed), limit, int(remaining), reset_s=reset, retry_after_s=0.0 if allowed else reset)

    async def adjust(self, name: str, amount: int, ttl_s: float) -> int:
        return int(await self._call(self._adjust(keys=[name], args=[amount, max(1, round(ttl_s * 1000))])))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, pending: Awaitable[T]) -> T:
        if self._clock() < self._down_until:
            # Not awaited: close the coroutine so it does not warn as never awaited.
            close: Callable[[], Any] | None = getattr(pending, "close", None)
            if close is not None:
                close()
            raise StoreUnavailable("Redis failed a moment ago; not retried yet")
        try:
            return await pending
        except (RedisError, OSError) as exc:
            self._down_until = self._clock() + self._retry_s
            # The exception's text may quote the URL with its password: name the type only.
            raise StoreUnavailable(f"Redis did not answer ({type(exc).__name__})") from None
