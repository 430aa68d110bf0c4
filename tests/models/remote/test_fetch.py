from __future__ import annotations

import base64
import ssl

import httpx
import pytest

from models.datauri import encode_data_uri
from models.remote.errors import ProviderBadResponse, ProviderError, ProviderNetworkError, ProviderServerError
from models.remote.fetch import UrlPolicy, check_url, fetch_image, literal_address, refusal
from tests.fakes.providers import FakeProviders, png_bytes
from tests.fakes.tls import TlsImages
from tests.models.remote.helpers import run

LOOPBACK = ("127.0.0.0/8",)


def _fetch(
    url: str,
    *,
    policy: UrlPolicy | None = None,
    max_bytes: int = 1 << 20,
    verify: ssl.SSLContext | bool = True,
) -> tuple[str, bytes]:
    # Without a policy the call is the one today's callers make, so the default's refusals are tested as is.
    extra = {"policy": policy} if policy is not None else {}

    async def go() -> tuple[str, bytes]:
        async with httpx.AsyncClient(verify=verify) as client:
            return await fetch_image(client, url, max_bytes=max_bytes, timeout_s=5.0, **extra)

    return run(go())


def _to_fake(fake: FakeProviders, **kw: object) -> UrlPolicy:
    """The explicit test allowance: plain http to the fake, on loopback."""
    fields: dict[str, object] = {"hosts": ("127.0.0.1",), "allow_http_hosts": (fake.host,), "allow_networks": LOOPBACK}
    fields.update(kw)
    return UrlPolicy(**fields)  # type: ignore[arg-type]


def _resolving(table: dict[str, list[str]], calls: list[str] | None = None):
    async def resolver(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolver


# The hostile URLs of issue 9, and the other spellings of the same places. None may be fetched by default: the
# refusal comes before any connection (nothing listens on these ports here, so a connection attempt would end as
# a network error instead).
PRIVATE_URLS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/x.png",
    "https://localhost:8265/api",
    "https://0x7f000001/x.png",
    "https://2130706433/x.png",
    "https://0177.0.0.1/x.png",
    "https://127.1/x.png",
    "https://0/x.png",
    "https://0.0.0.0/x.png",
    "https://100.64.0.1/x.png",
    "https://172.16.5.4/x.png",
    "https://192.168.1.1/x.png",
    "https://224.0.0.1/x.png",
    "https://240.0.0.1/x.png",
    "https://255.255.255.255/x.png",
    "https://[::1]/x.png",
    "https://[::]/x.png",
    "https://[::ffff:127.0.0.1]/x.png",
    "https://[::ffff:a9fe:a9fe]/x.png",
    "https://[::127.0.0.1]/x.png",
    "https://[64:ff9b::a00:5]/x.png",
    "https://[2002:a9fe:a9fe::]/x.png",
    "https://[fe80::1]/x.png",
    "https://[fc00::1]/x.png",
    "https://[fec0::1]/x.png",
    "https://[ff02::1]/x.png",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_loopback_and_special_addresses_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(ProviderBadResponse, match="refusing image URL"):
        _fetch(url, policy=UrlPolicy(hosts=("*",)))


@pytest.mark.parametrize("url", PRIVATE_URLS[:5])
def test_they_are_refused_by_the_default_fetch_too(url: str) -> None:
    with pytest.raises(ProviderBadResponse, match="refusing image URL"):
        _fetch(url)


def test_numeric_host_spellings_are_read_as_the_address_they_are() -> None:
    assert str(literal_address("0x7f000001")) == "127.0.0.1"
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0177.0.0.1")) == "127.0.0.1"
    assert str(literal_address("127.1")) == "127.0.0.1"
    assert literal_address("cdn.example.com") is None
    assert literal_address("deadbeef") is None


def test_public_addresses_pass_and_embedded_ones_are_judged_by_what_they_carry() -> None:
    import ipaddress

    assert refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111")) is None
    assert refusal(ipaddress.ip_address("::ffff:10.1.2.3")) == "private (as ::ffff:a01:203)"
    assert refusal(ipaddress.ip_address("100.64.1.1")) == "shared (CGNAT)"


def test_a_name_resolving_to_a_private_address_is_refused_without_a_request(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", png_bytes(4, 4)).replace("127.0.0.1", "evil.test")
    policy = UrlPolicy(hosts=("*",), allow_http_hosts=("evil.test",), resolver=_resolving({"evil.test": ["10.0.0.5"]}))

    with pytest.raises(ProviderBadResponse, match=r"private address 10\.0\.0\.5"):
        _fetch(url, policy=policy)

    assert fake.received() == []


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    policy = UrlPolicy(hosts=("*",), resolver=_resolving({"mixed.test": ["93.184.216.34", "127.0.0.1"]}))

    with pytest.raises(ProviderBadResponse, match="loopback"):
        _fetch("https://mixed.test/x.png", policy=policy)


def test_the_connection_goes_to_the_checked_address_with_the_real_host_name(fake: FakeProviders) -> None:
    # "cdn.test" exists only in this resolver: a second lookup by the HTTP client would fail, so an answer
    # proves the request went to the address we checked, once, and the Host header kept the name.
    png = png_bytes(6, 5)
    url = fake.add_file("image/png", png).replace("127.0.0.1", "cdn.test")
    calls: list[str] = []
    policy = UrlPolicy(
        hosts=("cdn.test",),
        allow_http_hosts=("cdn.test",),
        allow_networks=LOOPBACK,
        resolver=_resolving({"cdn.test": ["127.0.0.1"]}, calls),
    )

    assert _fetch(url, policy=policy) == ("image/png", png)
    assert calls == ["cdn.test"]
    assert fake.received("files")[-1].headers["host"] == f"cdn.test:{fake.host.split(':')[1]}"


def test_tls_is_verified_for_the_host_name_while_dialling_the_checked_address() -> None:
    with TlsImages("images.test") as server:
        policy = UrlPolicy(
            hosts=("*.test",), allow_networks=LOOPBACK, resolver=_resolving({"images.test": ["127.0.0.1"]})
        )
        mime, data = _fetch(f"https://images.test:{server.port}/a.png", policy=policy, verify=server.client_context())

        assert (mime, data) == ("image/png", server.png)
        assert server.server_names == ["images.test"]
        assert server.hosts == [f"images.test:{server.port}"]


def test_a_certificate_for_another_name_fails_verification() -> None:
    with TlsImages("images.test") as server:
        policy = UrlPolicy(
            hosts=("*.test",), allow_networks=LOOPBACK, resolver=_resolving({"other.test": ["127.0.0.1"]})
        )
        with pytest.raises(ProviderNetworkError, match="TLS") as info:
            _fetch(f"https://other.test:{server.port}/a.png", policy=policy, verify=server.client_context())

        assert not info.value.retryable


def test_hosts_outside_the_allowlist_are_refused_before_resolving() -> None:
    calls: list[str] = []
    policy = UrlPolicy(hosts=("fal.media", "*.fal.media"), resolver=_resolving({}, calls))

    for url in ["https://evil.example/x.png", "https://fal.media.evil.example/x.png", "https://xfal.media/x.png"]:
        with pytest.raises(ProviderBadResponse, match="not an allowed image host"):
            _fetch(url, policy=policy)
    assert calls == []
    check_url("https://v3.fal.media/files/x.png", policy)
    check_url("https://fal.media/files/x.png", policy)


def test_redirect_hops_are_checked_like_the_first_url(fake: FakeProviders) -> None:
    png = png_bytes(8, 8)
    hop = fake.add_redirect(fake.add_file("image/png", png))

    assert _fetch(hop, policy=_to_fake(fake)) == ("image/png", png)

    for target in ["http://169.254.169.254/latest/meta-data/", "https://10.0.0.5/x.png", "https://[::1]:8265/"]:
        before = len(fake.received())
        with pytest.raises(ProviderBadResponse, match="refusing"):
            _fetch(fake.add_redirect(target), policy=_to_fake(fake, hosts=("*",)))
        assert len(fake.received()) == before + 1  # the redirect itself, nothing after it

    with pytest.raises(ProviderBadResponse, match="not an allowed image host"):
        _fetch(fake.add_redirect("https://elsewhere.example/x.png"), policy=_to_fake(fake))


def test_http_url_fetched_when_host_port_allowed(fake: FakeProviders) -> None:
    png = png_bytes(40, 30)
    url = fake.add_file("image/png", png)

    assert _fetch(url, policy=_to_fake(fake)) == ("image/png", png)


def test_bare_host_allows_any_port(fake: FakeProviders) -> None:
    url = fake.add_file("image/jpeg; charset=binary", b"\xff\xd8jpeg")

    assert _fetch(url, policy=_to_fake(fake, allow_http_hosts=("127.0.0.1",))) == ("image/jpeg", b"\xff\xd8jpeg")


def test_plain_http_refused_without_a_request(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", png_bytes(4, 4))

    with pytest.raises(ProviderBadResponse, match="plain-http"):
        _fetch(url, policy=_to_fake(fake, allow_http_hosts=("127.0.0.1:1",)))

    assert fake.received() == []


def test_loopback_needs_the_explicit_allowance(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", png_bytes(4, 4))

    with pytest.raises(ProviderBadResponse, match="loopback"):
        _fetch(url, policy=_to_fake(fake, allow_networks=()))

    assert fake.received() == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "file:///etc/passwd", "https:///nohost", "not a url", "https://u:p@cdn.example/x.png"],
)
def test_other_schemes_credentials_and_malformed_urls_refused(url: str) -> None:
    with pytest.raises(ProviderBadResponse):
        _fetch(url, policy=UrlPolicy(hosts=("*",)))


def test_a_bad_network_in_the_allowance_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="CIDR"):
        UrlPolicy(allow_networks=("localhost",))


def test_non_image_content_type_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("text/html", b"<html>login</html>")

    with pytest.raises(ProviderBadResponse, match="text/html"):
        _fetch(url, policy=_to_fake(fake))


def test_declared_size_over_cap_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", b"x" * 5000)

    with pytest.raises(ProviderBadResponse, match="cap"):
        _fetch(url, max_bytes=1000, policy=_to_fake(fake))


def test_streamed_size_over_cap_rejected(fake: FakeProviders) -> None:
    url = fake.add_file("image/png", b"x" * 200_000, declare_length=False)

    with pytest.raises(ProviderBadResponse, match="cap"):
        _fetch(url, max_bytes=50_000, policy=_to_fake(fake))


def test_missing_or_expired_url_is_a_bad_response(fake: FakeProviders) -> None:
    with pytest.raises(ProviderBadResponse) as info:
        _fetch(f"{fake.base_url}/files/gone.png", policy=_to_fake(fake))

    assert info.value.status == 404


def test_redirect_loop_stops(fake: FakeProviders) -> None:
    name = "loop"
    fake.redirects[name] = f"{fake.base_url}/files/{name}"

    with pytest.raises(ProviderBadResponse, match="redirects"):
        _fetch(f"{fake.base_url}/files/{name}", policy=_to_fake(fake))


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
        _fetch(url, policy=_to_fake(fake))

    assert info.value.retryable and info.value.status == status


def test_an_unresolvable_host_is_a_network_error() -> None:
    with pytest.raises(ProviderError) as info:
        _fetch("https://nowhere.test/x.png", policy=UrlPolicy(hosts=("*",), resolver=_resolving({})))

    assert isinstance(info.value, ProviderNetworkError)
