"""What every provider client shares: the result type, injectable time, finishing an image, keeping keys out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from models.imaging import exact_png
from models.remote.config import ProviderConfig
from models.remote.errors import ProviderBadResponse, ProviderError, scrubbed
from models.remote.fetch import UrlPolicy, fetch_image
from models.remote.retry import Clock, Rand, Sleep, with_retries
from models.remote.transport import Reply, request

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """The clock, sleep and randomness a client uses; tests swap them to observe waits without waiting."""

    sleep: Sleep = asyncio.sleep
    rand: Rand = random.random
    clock: Clock = time.time


REAL_TIME = Timing()


@dataclass(frozen=True)
class ProviderImage:
    """A provider's image as PNG bytes of exactly `width`x`height`."""

    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int
    provider: str
    model: str
    native_size: tuple[int, int]
    revised_prompt: str | None = None
    seed: int | None = None

    @property
    def served_by(self) -> str:
        return f"{self.provider}:{self.model}"


async def post_with_retries(
    client: httpx.AsyncClient,
    cfg: ProviderConfig,
    url: str,
    *,
    headers: dict[str, str],
    body: object,
    read: Callable[[Reply], T],
    deadline: float,
    timing: Timing,
) -> T:
    """POST `body` and turn the reply into `T` with `read` (which raises our errors), retrying what is retryable."""

    async def once(timeout_s: float) -> T:
        reply = await request(
            client,
            "POST",
            url,
            provider=cfg.name,
            timeout_s=timeout_s,
            max_bytes=cfg.max_response_bytes,
            headers=headers,
            json_body=body,
        )
        return read(reply)

    return await _retrying(once, cfg, deadline, timing)


async def _retrying(call: Callable[[float], Awaitable[T]], cfg: ProviderConfig, deadline: float, timing: Timing) -> T:
    """`call` under the provider's retry policy, each try's timeout cut to the time left."""
    return await with_retries(
        call,
        policy=cfg.retry,
        deadline=deadline,
        request_timeout_s=cfg.timeout_s,
        provider=cfg.name,
        sleep=timing.sleep,
        rand=timing.rand,
        clock=timing.clock,
    )


def url_policy(cfg: ProviderConfig) -> UrlPolicy:
    return UrlPolicy(cfg.image_hosts, cfg.allow_http_hosts, cfg.allow_private_networks)


def b64_image(data: object, provider: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise ProviderBadResponse("reply has no image data", provider)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderBadResponse("image data is not valid base64", provider) from None


async def finish(
    client: httpx.AsyncClient,
    cfg: ProviderConfig,
    source: bytes | str,
    width: int,
    height: int,
    deadline: float,
    timing: Timing,
) -> tuple[bytes, tuple[int, int]]:
    """PNG of exactly the requested size from image bytes or a URL (fetched with the same retry rules).

    The image is refused before a pixel is decoded when its header declares more than the config's pixel cap.
    """
    if isinstance(source, str):
        policy = url_policy(cfg)

        async def get(timeout_s: float) -> tuple[str, bytes]:
            return await fetch_image(
                client, source, max_bytes=cfg.max_image_bytes, timeout_s=timeout_s, provider=cfg.name, policy=policy
            )

        # Retrying the fetch alone: generating again would pay for a second image.
        _, data = await _retrying(get, cfg, deadline, timing)
    else:
        data = source
    # Decoding and resampling a large image takes tens of milliseconds: off the event loop, other requests go on.
    try:
        return await asyncio.to_thread(exact_png, data, width, height, max_pixels=cfg.pixel_cap(width, height))
    except ValueError as exc:
        # Undecodable or oversized: the provider sent something that is not a usable image.
        raise ProviderBadResponse(str(exc), cfg.name) from None


async def without_secrets(cfg: ProviderConfig, work: Awaitable[T]) -> T:
    """Await `work`; a ProviderError comes out as a fresh copy with the key masked and no chained cause."""
    try:
        return await work
    except ProviderError as exc:
        clean = scrubbed(exc, (cfg.api_key,))
    # Raised outside the handler so the original (whose cause may quote a URL with the key) is not its context.
    raise clean
