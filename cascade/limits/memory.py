"""`LimitStore` in this process: the embedded default (one gateway replica, no Redis).

Each method runs to completion without awaiting, so on one event loop it is as atomic as a Redis script;
the lock covers callers on other threads. Expired entries are swept as the store is used.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from cascade.limits.store import Decision

_SWEEP_EVERY = 1024


class MemoryLimitStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}  # gcra: theoretical arrival time
        self._leases: dict[str, dict[str, float]] = {}  # name -> lease -> expiry
        self._counters: dict[str, tuple[int, float]] = {}  # name -> (value, expiry)
        self._ops = 0

    async def gcra(self, name: str, interval_s: float, burst: int) -> Decision:
        with self._lock:
            now = self._tick()
            tolerance = interval_s * burst
            tat = max(self._tat.get(name, now), now)
            new_tat = tat + interval_s
            allow_at = new_tat - tolerance
            if now < allow_at:
                return Decision(False, burst, 0, reset_s=tat - now, retry_after_s=allow_at - now)
            self._tat[name] = new_tat
            remaining = math.floor((tolerance - (new_tat - now)) / interval_s + 1e-9)
            return Decision(True, burst, remaining, reset_s=new_tat - now)

    async def acquire(self, name: str, lease: str, limit: int, ttl_s: float) -> Decision:
        with self._lock:
            now = self._tick()
            held = self._live_leases(name, now)
            if lease not in held and len(held) >= limit:
                # A slot frees when some request ends, which nobody can predict: "soon".
                return Decision(False, limit, 0, reset_s=1.0, retry_after_s=1.0)
            held[lease] = now + ttl_s
            self._leases[name] = held
            return Decision(True, limit, limit - len(held), reset_s=0.0)

    async def release(self, name: str, lease: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None:
                held.pop(lease, None)
                if not held:
                    del self._leases[name]

    async def reserve(self, name: str, amount: int, limit: int, ttl_s: float) -> Decision:
        with self._lock:
            now = self._tick()
            value, expiry = self._counter(name, now, ttl_s)
            if value + amount > limit:
                return Decision(False, limit, limit - value, reset_s=expiry - now, retry_after_s=expiry - now)
            self._counters[name] = (value + amount, expiry)
            return Decision(True, limit, limit - value - amount, reset_s=expiry - now)

    async def adjust(self, name: str, amount: int, ttl_s: float) -> int:
        with self._lock:
            now = self._tick()
            value, expiry = self._counter(name, now, ttl_s)
            self._counters[name] = (value + amount, expiry)
            return value + amount

    async def aclose(self) -> None:
        return None

    def _counter(self, name: str, now: float, ttl_s: float) -> tuple[int, float]:
        value, expiry = self._counters.get(name, (0, 0.0))
        return (value, expiry) if expiry > now else (0, now + ttl_s)

    def _live_leases(self, name: str, now: float) -> dict[str, float]:
        return {k: exp for k, exp in self._leases.get(name, {}).items() if exp > now}

    def _tick(self) -> float:
        now = self._clock()
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._tat = {k: t for k, t in self._tat.items() if t > now}
            self._leases = {k: live for k in list(self._leases) if (live := self._live_leases(k, now))}
            self._counters = {k: c for k, c in self._counters.items() if c[1] > now}
        return now
