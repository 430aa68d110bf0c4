"""Per-backend circuit breaker: stop paying for a backend that keeps failing, probe it now and then."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from cascade.types import Outcome

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown_s` lets one probe through (half-open).

    The probe's success closes it, its failure opens it again for another cool-down. A probe that never
    reports (its request died) is given up after another cool-down so the breaker cannot stick half-open.
    Single-threaded by design: one per gateway replica, used from its event loop.
    """

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self.failures = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self.cooldown_s else "half_open"

    def skip_reason(self) -> str | None:
        """None when a call may go ahead now (and, half-open, reserves the single probe)."""
        if self._opened_at is None:
            return None
        now = self._clock()
        open_for = now - self._opened_at
        if open_for >= self.cooldown_s and (self._probe_at is None or now - self._probe_at >= self.cooldown_s):
            self._probe_at = now
            return None
        what = "probe in flight" if open_for >= self.cooldown_s else f"retry in {self.cooldown_s - open_for:.1f} s"
        return f"circuit open after {self.failures} consecutive failures ({what})"

    def record(self, outcome: Outcome) -> None:
        if outcome == "ok":
            self.failures, self._opened_at, self._probe_at = 0, None, None
        elif outcome in ("error", "timeout"):
            self.failures += 1
            if self._probe_at is not None or self.failures >= self.threshold:
                self._opened_at, self._probe_at = self._clock(), None
        elif outcome in ("busy", "declined", "skipped"):
            # Full, too slow for this request's deadline, or not this caller's to use (a limit) is not broken: free the
            # probe slot for the next request.
            self._probe_at = None
