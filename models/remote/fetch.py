"""Fetch an image a provider returned as a URL: https only, size-capped, image/* only; data URIs decoded in place."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from urllib.parse import urljoin, urlsplit

import httpx

from models.datauri import decode_data_uri
from models.remote.errors import ProviderBadResponse, ProviderError, ProviderTimeout, error_for_status
from models.remote.transport import network_error, read_capped

# CDNs redirect to signed blob URLs at most once or twice; more is a loop or a trick.
MAX_REDIRECTS = 3


def check_url(url: str, allow_http_hosts: Collection[str] = (), provider: str = "") -> None:
    """Raise ProviderBadResponse unless `url` is https, or http to a host (or host:port) explicitly allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProviderBadResponse("image URL is malformed", provider) from None
    host = (parts.hostname or "").lower()
    if not host:
        raise ProviderBadResponse("image URL has no host", provider)
    if parts.scheme == "https":
        return
    if parts.scheme == "http":
        allowed = {h.lower() for h in allow_http_hosts}
        if host in allowed or (port is not None and f"{host}:{port}" in allowed):
            return
        raise ProviderBadResponse(f"refusing plain-http image URL to {host}", provider)
    raise ProviderBadResponse(f"unsupported image URL scheme {parts.scheme!r}", provider)


async def fetch_image(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    allow_http_hosts: Collection[str] = (),
    timeout_s: float,
    provider: str = "",
) -> tuple[str, bytes]:
    """(mime, data) of the image at `url`; errors in the provider vocabulary."""
    if url.startswith("data:"):
        try:
            mime, data = decode_data_uri(url)
        except ValueError as exc:
            raise ProviderBadResponse(f"bad data URI: {exc}", provider) from None
        if not mime.startswith("image/"):
            raise ProviderBadResponse(f"data URI holds {mime}, not an image", provider)
        if len(data) > max_bytes:
            raise ProviderBadResponse(f"image is over the {max_bytes}-byte cap", provider)
        return mime, data
    if timeout_s <= 0:
        raise ProviderTimeout("no time left to fetch the image", provider)
    try:
        return await asyncio.wait_for(_follow(client, url, max_bytes, allow_http_hosts, timeout_s, provider), timeout_s)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        err: ProviderError = ProviderTimeout(f"image not fetched in {timeout_s:.1f} s", provider)
    except httpx.TransportError as exc:
        err = network_error(exc, provider)
    raise err


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    allow_http_hosts: Collection[str],
    timeout_s: float,
    provider: str,
) -> tuple[str, bytes]:
    # Redirects are followed by hand so that every hop passes the same scheme check as the first URL.
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_http_hosts, provider)
        async with client.stream("GET", url, timeout=httpx.Timeout(timeout_s), follow_redirects=False) as response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                raise error_for_status(status, "fetching the image URL failed", provider)
            if status != 200:
                # An expired signed URL answers 403: a bad result, not a problem with our key.
                raise ProviderBadResponse("fetching the image URL failed", provider, status)
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not mime.startswith("image/"):
                raise ProviderBadResponse(f"image URL served {mime or 'no content type'}, not an image", provider)
            return mime, await read_capped(response, max_bytes, provider)
    raise ProviderBadResponse("too many redirects fetching the image", provider)
