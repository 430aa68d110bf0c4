"""What one caller may use: the numbers a key carries (or the config gives when auth is off)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Quota:
    """Per-caller limits. None means "no limit" once defaults are applied (see `over`)."""

    rate_per_s: float | None = None
    # Requests that may arrive at once after a quiet spell; None = one second's worth of `rate_per_s`.
    burst: int | None = None
    max_concurrency: int | None = None
    daily_images: int | None = None
    daily_spend_usd: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{f.name} must be a finite number >= 0, not {value!r}")
        if self.rate_per_s == 0:
            raise ValueError("rate_per_s must be > 0 (leave it unset for no rate limit)")
        if self.burst is not None and self.burst < 1:
            raise ValueError("burst must be >= 1")

    def over(self, defaults: Quota) -> Quota:
        """This quota with every unset field taken from `defaults` (a key's own numbers win)."""
        return replace(
            self, **{f.name: getattr(defaults, f.name) for f in fields(self) if getattr(self, f.name) is None}
        )

    @property
    def effective_burst(self) -> int:
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate_per_s or 1))
