"""Retry what can succeed on retry (rate limits, 5xx, resets), with full-jitter backoff, never past a deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from models.remote.errors import ProviderError, ProviderTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Rand = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, failures: int, rand: Rand) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(failures-1))], so herds of clients spread out."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, failures - 1))
        return rand() * ceiling


async def with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float,
    request_timeout_s: float,
    provider: str = "",
    sleep: Sleep = asyncio.sleep,
    rand: Rand = random.random,
    clock: Clock = time.time,
) -> T:
    """Run `call(timeout_s)` until it succeeds, fails for good, runs out of tries, or would pass `deadline`.

    Each call gets `min(request_timeout_s, time left)`. The wait before a retry is the larger of the backoff and the
    provider's retry-after hint; when that wait would end past the deadline the last error is raised at once
    rather than sleeping towards a certain timeout.
    """
    last: ProviderError | None = None
    for tries in range(1, policy.max_tries + 1):
        left = deadline - clock()
        if left <= 0:
            raise last or ProviderTimeout("the deadline passed before the request", provider)
        try:
            return await call(min(request_timeout_s, left))
        except ProviderError as exc:
            if not exc.retryable or tries == policy.max_tries:
                raise
            last = exc
        wait = policy.backoff(tries, rand)
        hint = last.retry_after_s
        if hint is not None:
            wait = max(wait, hint)
        if clock() + wait >= deadline:
            raise last
        # Kind and status only: a provider's message may echo what it was sent.
        log.info("%s %s (HTTP %s): try %d of %d in %.2f s", provider, last.kind, last.status, tries + 1,
                 policy.max_tries, wait)  # fmt: skip
        await sleep(wait)
    raise AssertionError("unreachable: the last try either returns or raises")
