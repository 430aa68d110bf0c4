"""One HTTP exchange with a provider: a hard time bound, a cap on the body, transport failures in our vocabulary."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from models.remote.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderNetworkError,
    ProviderTimeout,
)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (HTML error pages from proxies, empty bodies)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", "replace")


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    timeout_s: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
) -> Reply:
    """Send one request and read the whole reply within `timeout_s` (connect, send, wait and read together)."""
    if timeout_s <= 0:
        raise ProviderTimeout("no time left for the request", provider)
    try:
        # httpx's timeout bounds each network operation, not the whole exchange: a server that trickles bytes
        # would outlive it, so the exchange as a whole runs under wait_for as well.
        return await asyncio.wait_for(
            _exchange(client, method, url, provider, timeout_s, max_bytes, headers, json_body), timeout_s
        )
    except (asyncio.TimeoutError, httpx.TimeoutException):
        err: ProviderError = ProviderTimeout(f"no answer in {timeout_s:.1f} s", provider)
    except httpx.TransportError as exc:
        err = network_error(exc, provider)
    raise err


async def _exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    provider: str,
    timeout_s: float,
    max_bytes: int,
    headers: Mapping[str, str] | None,
    json_body: Any,
) -> Reply:
    async with client.stream(
        method, url, headers=dict(headers or {}), json=json_body, timeout=httpx.Timeout(timeout_s)
    ) as response:
        body = await read_capped(response, max_bytes, provider)
        return Reply(response.status_code, response.headers, body)


async def read_capped(response: httpx.Response, max_bytes: int, provider: str) -> bytes:
    """The body, or ProviderBadResponse as soon as it is known to pass `max_bytes` (before reading it all)."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ProviderBadResponse(f"reply of {declared} bytes is over the {max_bytes}-byte cap", provider)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise ProviderBadResponse(f"reply is over the {max_bytes}-byte cap", provider)
        chunks.append(chunk)
    return b"".join(chunks)


def network_error(exc: httpx.TransportError, provider: str) -> ProviderNetworkError:
    """Name the failure without echoing the URL (it may carry a key); TLS failures will not heal on retry."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ProviderNetworkError("TLS certificate verification failed", provider, retry=False)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        what = "connection closed by the server"
    elif isinstance(exc, httpx.ReadError):
        what = "connection reset while reading"
    elif isinstance(exc, httpx.WriteError):
        what = "connection reset while sending"
    elif isinstance(exc, httpx.UnsupportedProtocol):
        return ProviderNetworkError("unsupported URL scheme", provider, retry=False)
    else:
        what = "transport failure"
    detail = str(exc).strip()
    return ProviderNetworkError(f"{what} ({type(exc).__name__}: {detail})" if detail else what, provider)
