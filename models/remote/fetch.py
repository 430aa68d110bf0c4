"""Fetch an image a provider (or a script) returned as a URL, without opening a door into our own network.

Every hop (the first URL and each redirect) is checked the same way before anything is sent: https (plain http
only to hosts the config names), a host on the allowlist, then the name resolved by us and every address it has
checked: loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses are refused, in IPv4,
IPv6 and the IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo), and in the numeric
spellings the C resolver accepts (`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1`). The request then goes to
the address that was checked, never to a second lookup (DNS rebinding), with the real host name as Host header
and TLS server name, so the certificate is verified for the name the URL gave. Data URIs are decoded in place.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx

from models.datauri import decode_data_uri
from models.remote.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderNetworkError,
    ProviderTimeout,
    error_for_status,
)
from models.remote.transport import network_error, read_capped

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# CDNs redirect to signed blob URLs at most once or twice; more is a loop or a trick.
MAX_REDIRECTS = 3
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# What inet_aton would read as an IPv4 address: decimal, octal or hex parts, 1 to 4 of them.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class UrlPolicy:
    """Where image URLs may lead. The default refuses every URL but data URIs; providers and the script backend
    build theirs from config."""

    # "cdn.example.com", "*.example.com" (its subdomains) or "*" (any public host).
    hosts: tuple[str, ...] = ()
    # Hosts (or host:port) whose URLs may be plain http: test servers and local proxies only.
    allow_http_hosts: tuple[str, ...] = ()
    # Networks (CIDR) exempt from the address checks: tests and in-cluster proxies only, never a default.
    allow_networks: tuple[str, ...] = ()
    resolver: Resolver = system_resolver

    def __post_init__(self) -> None:
        for cidr in self.allow_networks:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"allow_private_networks: {cidr!r} is not a network (CIDR)") from None

    def exempt(self, ip: IPAddress) -> bool:
        nets = [ipaddress.ip_network(cidr, strict=False) for cidr in self.allow_networks]
        return any(ip.version == net.version and ip in net for net in nets)


def host_allowed(host: str, patterns: Collection[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def literal_address(host: str) -> IPAddress | None:
    """The address a host name spells by itself (IPv4 in any inet_aton form, or IPv6), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated by RFC 4291); :: and ::1 are themselves below.
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why an address must not be fetched from, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = refusal(inner)
            if why is not None:
                return f"{why} (as {ip})"
        if ip.is_site_local:
            return "site-local"
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _check_address(ip: IPAddress, policy: UrlPolicy, host: str, provider: str) -> None:
    if policy.exempt(ip):
        return
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if inner is not None and policy.exempt(inner):
        return
    why = refusal(ip)
    if why is not None:
        raise ProviderBadResponse(f"refusing image URL to {host}: {why} address {ip}", provider)


@dataclass(frozen=True)
class _Hop:
    parts: SplitResult
    host: str
    port: int
    address: IPAddress


def check_url(url: str, policy: UrlPolicy, provider: str = "") -> tuple[SplitResult, str, int]:
    """Scheme, host allowlist and form: ProviderBadResponse unless the URL may be fetched (addresses come next)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProviderBadResponse("image URL is malformed", provider) from None
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ProviderBadResponse("image URL has no host", provider)
    if parts.username is not None or parts.password is not None:
        raise ProviderBadResponse("refusing image URL that carries credentials", provider)
    if parts.scheme == "http":
        allowed = {h.lower() for h in policy.allow_http_hosts}
        if host not in allowed and not (port is not None and f"{host}:{port}" in allowed):
            raise ProviderBadResponse(f"refusing plain-http image URL to {host}", provider)
    elif parts.scheme != "https":
        raise ProviderBadResponse(f"unsupported image URL scheme {parts.scheme!r}", provider)
    if not host_allowed(host, policy.hosts):
        raise ProviderBadResponse(f"refusing image URL to {host}: not an allowed image host", provider)
    return parts, host, port or (443 if parts.scheme == "https" else 80)


async def _resolve(url: str, policy: UrlPolicy, provider: str) -> _Hop:
    parts, host, port = check_url(url, policy, provider)
    literal = literal_address(host)
    if literal is not None:
        _check_address(literal, policy, host, provider)
        return _Hop(parts, host, port, literal)
    try:
        found = await policy.resolver(host, port)
    except OSError as exc:
        raise ProviderNetworkError(f"could not resolve image host {host} ({type(exc).__name__})", provider) from None
    addresses = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise ProviderBadResponse(f"image host {host} resolved to {text!r}", provider) from None
    if not addresses:
        raise ProviderBadResponse(f"image host {host} has no address", provider)
    # Every address must pass: a name with one public and one private record is a trick, not a CDN.
    for ip in addresses:
        _check_address(ip, policy, host, provider)
    return _Hop(parts, host, port, addresses[0])


def _pinned(hop: _Hop) -> tuple[str, dict[str, str], dict[str, object]]:
    """URL aimed at the checked address, and the Host header and TLS server name of the real host."""
    ip = str(hop.address)
    netloc = f"[{ip}]:{hop.port}" if hop.address.version == 6 else f"{ip}:{hop.port}"
    url = urlunsplit((hop.parts.scheme, netloc, hop.parts.path or "/", hop.parts.query, ""))
    default_port = 443 if hop.parts.scheme == "https" else 80
    host_header = hop.host if hop.port == default_port else f"{hop.host}:{hop.port}"
    if ":" in hop.host:  # an IPv6 literal
        host_header = f"[{hop.host}]" if hop.port == default_port else f"[{hop.host}]:{hop.port}"
    # `Connection: close` keeps this connection (keyed by address, not name) out of the pool for other hosts.
    headers = {"Host": host_header, "Connection": "close"}
    extensions: dict[str, object] = {}
    if hop.parts.scheme == "https" and literal_address(hop.host) is None:
        extensions["sni_hostname"] = hop.host
    return url, headers, extensions


async def fetch_image(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    provider: str = "",
    policy: UrlPolicy | None = None,
) -> tuple[str, bytes]:
    """(mime, data) of the image at `url`; errors in the provider vocabulary. `policy` says where URLs may lead
    (default: nowhere; data URIs need no policy)."""
    policy = policy or UrlPolicy()
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
        return await asyncio.wait_for(_follow(client, url, max_bytes, policy, timeout_s, provider), timeout_s)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        err: ProviderError = ProviderTimeout(f"image not fetched in {timeout_s:.1f} s", provider)
    except httpx.TransportError as exc:
        err = network_error(exc, provider)
    raise err


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    policy: UrlPolicy,
    timeout_s: float,
    provider: str,
) -> tuple[str, bytes]:
    # Redirects are followed by hand so that every hop passes the same checks as the first URL.
    for _ in range(MAX_REDIRECTS + 1):
        hop = await _resolve(url, policy, provider)
        target, headers, extensions = _pinned(hop)
        request = client.build_request(
            "GET", target, headers=headers, extensions=extensions, timeout=httpx.Timeout(timeout_s)
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
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
        finally:
            await response.aclose()
    raise ProviderBadResponse("too many redirects fetching the image", provider)
