"""The shared-state primitives every limit is built from, and the answer each gives.

Two implementations keep the same semantics: `MemoryLimitStore` (one gateway replica, no service) and
`RedisLimitStore` (every replica shares one Redis; each primitive is one atomic server-side script, and the
clock is Redis's own so replicas with skewed clocks still agree). The same test suite runs over both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailable(Exception):
    """The shared store did not answer (down, unreachable, timed out). The caller applies its failure policy."""


@dataclass(frozen=True)
class Decision:
    """One limit's answer, with what a 429 (or a 200) tells the client about it."""

    allowed: bool
    limit: int
    remaining: int
    # Seconds until the limit is whole again (every token back, the day over).
    reset_s: float
    # Seconds until a retry can succeed; 0 when allowed.
    retry_after_s: float = 0.0

    def headers(self) -> dict[str, str]:
        out = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(0, self.remaining)),
            "x-ratelimit-reset": str(max(0, math.ceil(self.reset_s))),
        }
        if not self.allowed:
            # Whole seconds (RFC 9110 delay-seconds), never 0: "retry now" would only be refused again.
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
        return out


class LimitStore(Protocol):
    """Names are opaque strings; the caller puts the key id, backend or day in them."""

    async def gcra(self, name: str, interval_s: float, burst: int) -> Decision:
        """Generic cell rate: one request per `interval_s` on average, up to `burst` at once. A refused
        request costs nothing."""
        ...

    async def acquire(self, name: str, lease: str, limit: int, ttl_s: float) -> Decision:
        """Take one of `limit` slots for `lease` until `ttl_s` from now (taking a lease already held renews
        it). An expired lease frees its slot by itself: a replica that dies cannot leak slots forever."""
        ...

    async def release(self, name: str, lease: str) -> None: ...

    async def reserve(self, name: str, amount: int, limit: int, ttl_s: float) -> Decision:
        """Add `amount` to a counter only if it stays <= `limit`. A new counter expires after `ttl_s`
        (its reset: the caller names counters by day)."""
        ...

    async def adjust(self, name: str, amount: int, ttl_s: float) -> int:
        """Add `amount` (may be negative: a refund or a settled price) unconditionally; the new value."""
        ...

    async def aclose(self) -> None: ...
