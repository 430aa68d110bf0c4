"""Config for who may call and how much: `auth`, `limits` (with the price table) and `sentry`.

Validated when the serve config is loaded; secrets (`SENTRY_DSN`, `CASCADE_REDIS_URL` with its password) come
from the environment, never from here.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cascade.keys.store import KeyRecord
from cascade.limits.guard import Caller, LimitPolicy
from cascade.limits.memory import MemoryLimitStore
from cascade.limits.prices import PriceTable
from cascade.limits.quota import Quota
from cascade.limits.store import LimitStore

logger = logging.getLogger("cascade.access")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuotaConfig(_Strict):
    """Unset = no limit (for `key_defaults`: the key's own number, or none)."""

    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)
    daily_images: int | None = Field(default=None, ge=0)
    daily_spend_usd: float | None = Field(default=None, ge=0)

    def quota(self) -> Quota:
        return Quota(**self.model_dump())


class LimitsConfig(_Strict):
    # Numbers a key leaves unset; `anonymous` applies to every request while auth is off.
    key_defaults: QuotaConfig = Field(default_factory=QuotaConfig)
    anonymous: QuotaConfig = Field(default_factory=QuotaConfig)
    # Backend name -> calls in flight across every gateway replica; past it the backend counts as busy.
    backend_caps: dict[str, int] = Field(default_factory=dict)
    # "provider:model" (as `ImageResult.provider` says it) or "provider:*" -> USD per image bought.
    prices_usd: dict[str, float] = Field(default_factory=dict)
    # Charged for a provider/model the table does not name; unset: the table's dearest price.
    unknown_price_usd: float | None = Field(default=None, ge=0)
    # When Redis does not answer: rate, concurrency, daily images and backend caps let requests through
    # (`fail_open`, logged) or refuse them with 503 (`fail_closed`). Spend limits always fail closed.
    on_redis_error: Literal["fail_open", "fail_closed"] = "fail_open"
    redis_timeout_s: float = Field(default=0.25, gt=0)
    # After a Redis failure, requests skip Redis (and take the policy above) for this long.
    redis_retry_s: float = Field(default=1.0, ge=0)
    # How long a concurrency slot outlives a replica that died holding it; unset: request timeout + 60 s.
    lease_ttl_s: float | None = Field(default=None, gt=0)
    # Namespace of every Redis key, so several deployments can share one Redis.
    redis_prefix: str = Field(default="cascade", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("backend_caps")
    @classmethod
    def _caps_positive(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = [name for name, cap in caps.items() if cap < 1]
        if bad:
            raise ValueError(f"backend caps must be >= 1 (leave a backend out for no cap): {', '.join(bad)}")
        return caps

    @field_validator("prices_usd")
    @classmethod
    def _prices_named(cls, prices: dict[str, float]) -> dict[str, float]:
        for name, usd in prices.items():
            vendor, colon, model = name.partition(":")
            if not (vendor and colon and model):
                raise ValueError(f"price key {name!r} must read 'provider:model' or 'provider:*'")
            if not usd >= 0:
                raise ValueError(f"price of {name!r} must be >= 0")
        return prices

    def caller(self, record: KeyRecord | None) -> Caller:
        """Who a request is, for the limits: its key with `key_defaults` filling the gaps, or (auth off, no key)
        the shared `anonymous` caller."""
        if record is None:
            return Caller("anonymous", self.anonymous.quota())
        return Caller(record.id, record.quota.over(self.key_defaults.quota()))

    def open_store(self, redis_url: str | None) -> LimitStore:
        """The shared store when `CASCADE_REDIS_URL` is set, else this process's own (right for one gateway
        replica only: with more, each would keep its own count)."""
        if not redis_url:
            return MemoryLimitStore()
        from cascade.limits.redis_store import RedisLimitStore

        return RedisLimitStore.from_url(redis_url, timeout_s=self.redis_timeout_s, retry_s=self.redis_retry_s)

    def policy(self, request_timeout_s: float) -> LimitPolicy:
        return LimitPolicy(
            on_store_error=self.on_redis_error,
            lease_ttl_s=self.lease_ttl_s or request_timeout_s + 60,
            backend_caps=dict(self.backend_caps),
            prices=PriceTable.from_usd(self.prices_usd, self.unknown_price_usd),
            prefix=self.redis_prefix,
        )


class SentryConfig(_Strict):
    """Sentry is on when `SENTRY_DSN` is set; these say what it sends."""

    sample_rate: float = Field(default=1.0, ge=0, le=1)  # errors
    traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # Also turns on request bodies and stack frames' local variables in events: both carry prompts.
    send_prompts: bool = False
    environment: str | None = None


class AccessConfig(_Strict):
    # YAML reads a bare `off` as false: both spellings mean off.
    auth: Literal["off", "required"] = "off"
    # Auth off on a host other than loopback refuses to start unless this is true (then it logs loudly).
    auth_off_on_public_host: bool = False
    # How long a replica trusts a looked-up key: a revocation takes effect within this.
    key_cache_s: float = Field(default=5.0, ge=0)
    # While the key database does not answer, keys a replica saw valid within this long stay valid.
    key_stale_s: float = Field(default=300.0, ge=0)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    sentry: SentryConfig = Field(default_factory=SentryConfig)

    @field_validator("auth", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value

    def check_host(self, host: str) -> None:
        """Refuse auth off on a public address unless forced; raises ValueError naming the fix."""
        if self.auth == "required" or is_loopback(host):
            return
        if not self.auth_off_on_public_host:
            raise ValueError(
                f"auth is off but the HTTP host {host!r} is not loopback: anyone who reaches the port could spend "
                "GPU time and provider credit. Set auth: required (and make keys with python -m cascade.keys), "
                "bind 127.0.0.1, or set auth_off_on_public_host: true to accept that"
            )
        logger.error(
            "AUTH IS OFF ON PUBLIC HOST %s (auth_off_on_public_host: true): every caller is anonymous and unlimited "
            "but for limits.anonymous",
            host,
        )


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere
