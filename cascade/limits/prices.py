"""What one bought image costs, by `ImageResult.provider` ("openai:gpt-image-1.5"), in integer micro-dollars.

Integers so that a day of charges adds up exactly in a Redis counter (INCRBY) and in memory alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MICROS_PER_USD = 1_000_000


def usd_to_micros(usd: float) -> int:
    return round(usd * MICROS_PER_USD)


@dataclass(frozen=True)
class PriceTable:
    """`prices` maps "provider:model" or "provider:*" to micro-dollars per image. `unknown` prices a provider
    and model the table does not name; None means such an image is charged the table's dearest price."""

    prices: Mapping[str, int] = field(default_factory=dict)
    unknown: int | None = None

    @classmethod
    def from_usd(cls, prices: Mapping[str, float], unknown_usd: float | None = None) -> PriceTable:
        return cls(
            {k: usd_to_micros(v) for k, v in prices.items()},
            None if unknown_usd is None else usd_to_micros(unknown_usd),
        )

    def ceiling(self) -> int | None:
        """The most one image can be charged: what a spend limit holds back before the remote call.
        None when nothing is priced at all (then a spend-limited key cannot buy images)."""
        known = [*self.prices.values(), *([] if self.unknown is None else [self.unknown])]
        return max(known) if known else None

    def price(self, provider: str) -> int | None:
        """The charge for one image from `provider`; None if the table has no answer (see `charge`)."""
        if provider in self.prices:
            return self.prices[provider]
        vendor = provider.partition(":")[0]
        return self.prices.get(f"{vendor}:*", self.unknown)

    def charge(self, provider: str) -> int:
        """What to charge: the table's price, else the ceiling (never charge less than the worst case for an
        unpriced model: a missing entry must not become free spending)."""
        price = self.price(provider)
        if price is not None:
            return price
        return self.ceiling() or 0
