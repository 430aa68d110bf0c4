"""Shared by the remote-provider tests: configs aimed at the fake server, observable time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from models.remote.common import Timing
from models.remote.config import ProviderConfig, provider_config
from models.remote.retry import RetryPolicy
from tests.fakes.providers import FakeProviders


class RecordingSleep:
    """Records each wait and waits only a token amount, so retry tests see the delays without paying them."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.until: list[float] = []  # when each wait would have ended, by the wall clock

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.until.append(time.time() + seconds)
        await asyncio.sleep(0)


def quick_timing(sleep: RecordingSleep) -> Timing:
    # rand() = 1.0: the backoff is its ceiling, so waits are predictable.
    return Timing(sleep=sleep, rand=lambda: 1.0, clock=time.time)


def config_for(fake: FakeProviders, name: str, **overrides: Any) -> ProviderConfig:
    """A config pointing at the fake, with its accepted key and short timeouts."""
    base = {"openai": fake.openai_base, "gemini": fake.gemini_base, "fal": fake.fal_base}[name]
    fields: dict[str, Any] = {
        "base_url": base,
        "api_key": fake.keys[name],
        "timeout_s": 5.0,
        "attempt_timeout_s": 10.0,
        "retry": RetryPolicy(max_tries=3, base_delay_s=0.01, max_delay_s=0.05),
        "allow_http_hosts": (fake.host,),
        # The fake serves image URLs from loopback: an explicit allowance no production config has.
        "image_hosts": ("127.0.0.1",),
        "allow_private_networks": ("127.0.0.0/8",),
    }
    fields.update(overrides)
    return provider_config(name, **fields)


def deadline_in(seconds: float) -> float:
    return time.time() + seconds


def run(coro: Any) -> Any:
    return asyncio.run(coro)
