from __future__ import annotations

import base64

import httpx
import pytest

from models.datauri import encode_data_uri
from models.remote.errors import ProviderBadResponse, ProviderServerError
from models.remote.fetch import check_url, fetch_image
from tests.fakes.providers import FakeProviders, png_bytes
from tests.models.remote.helpers import run


def _fetch(url: str, *, max_bytes: int = 1 << 20, allow: tuple[str, ...] = ()) -> tuple[str, bytes]:
    async def go() -> tuple[str, bytes]:
        async with httpx.AsyncClient() as client:
            return await fetch_image(client, url, max_bytes=max_bytes, allow_http_hosts=allow, timeout_s=5.0)

    return run(go())


def test_http_url_fetched_when_host_port_allowed(fake: FakeProviders) -> None:
    png = png_bytes(40, 30)
    url = fake.add_file("image/png", png)

    assert _fetch(url, allow=(fake.host,)) == ("image/png", png)


def test_bare_host_allows_any_port(fake: FakeProviders) -> None:
    url = fake.add_file("image/jpeg; charset=binary", b"\xff\xd8jpeg")

    assert _fetch(url, allow=("127.0.0.1",)) == ("image/jpeg", b"\xff\xd8jpeg")


def test_plain_http_refused_without_a_request(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", png_bytes(4, 4))

    with pytest.raises(ProviderBadResponse, match="plain-http"):
        _fetch(url, allow=("127.0.0.1:1",))

    assert fake.received() == []


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "https:///nohost", "not a url"])
def test_other_schemes_and_malformed_urls_refused(url: str) -> None:
    with pytest.raises(ProviderBadResponse):
        _fetch(url)


def test_https_passes_the_check() -> None:
    check_url("https://cdn.example.com/img.png")


def test_non_image_content_type_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("text/html", b"<html>login</html>")

    with pytest.raises(ProviderBadResponse, match="text/html"):
        _fetch(url, allow=(fake.host,))


def test_declared_size_over_cap_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", b"x" * 5000)

    with pytest.raises(ProviderBadResponse, match="cap"):
        _fetch(url, max_bytes=1000, allow=(fake.host,))


def test_streamed_size_over_cap_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", b"x" * 200_000, declare_length=False)

    with pytest.raises(ProviderBadResponse, match="cap"):
        _fetch(url, max_bytes=50_000, allow=(fake.host,))


def test_missing_or_expired_url_is_a_bad_response(fake: FakeProviders) -> None:
    with pytest.raises(ProviderBadResponse) as info:
        _fetch(f"{fake.base_url}/files/gone.png", allow=(fake.host,))

    assert info.value.status == 404


def test_redirect_followed_and_each_hop_checked(fake: FakeProviders) -> None:
    png = png_bytes(8, 8)
    hop = fake.add_redirect(fake.add_file("image/png", png))

    assert _fetch(hop, allow=(fake.host,)) == ("image/png", png)

    sneaky = fake.add_redirect("http://internal.invalid/secret.png")
    with pytest.raises(ProviderBadResponse, match="plain-http"):
        _fetch(sneaky, allow=(fake.host,))


def test_redirect_loop_stops(fake: FakeProviders) -> None:
    name = "loop"
    fake.redirects[name] = f"{fake.base_url}/files/{name}"

    with pytest.raises(ProviderBadResponse, match="redirects"):
        _fetch(f"{fake.base_url}/files/{name}", allow=(fake.host,))


def test_data_uri_decoded_directly() -> None:
    png = png_bytes(5, 5)

    assert _fetch(encode_data_uri("image/png", png)) == ("image/png", png)


@pytest.mark.parametrize(
    "uri",
    [
        "data:text/plain;base64," + base64.b64encode(b"hello").decode(),
        "data:image/png;base64,@@@",
        "data:image/png,rawbytes",
    ],
)
def test_bad_data_uris(uri: str) -> None:
    with pytest.raises(ProviderBadResponse):
        _fetch(uri)


def test_data_uri_over_cap() -> None:
    with pytest.raises(ProviderBadResponse, match="cap"):
        _fetch(encode_data_uri("image/png", b"x" * 100), max_bytes=10)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_from_the_cdn_is_a_retryable_server_error(fake: FakeProviders, status: int) -> None:
    url = fake.add_file("text/html", b"<h1>Service Unavailable</h1>", status=status)

    with pytest.raises(ProviderServerError) as info:
        _fetch(url, allow=(fake.host,))

    assert info.value.retryable and info.value.status == status
