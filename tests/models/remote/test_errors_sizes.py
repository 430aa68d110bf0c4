from __future__ import annotations

import base64
import email.utils
import pickle
from urllib.parse import quote

import pytest

from models.remote.catalogue import load_catalogue
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderError,
    ProviderNetworkError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    ProviderTimeout,
    error_for_status,
    hinted,
    retry_after_from_headers,
    scrub,
    scrubbed,
    shorten,
    should_retry_from_headers,
)
from models.remote.sizes import fal_image_size, gemini_image_size, grid_size, nearest_aspect_ratio, openai_size

CATALOGUE = load_catalogue()
FLARE = CATALOGUE.spec("openai", "gpt-image-2.6-flare").sizes
BANANA = CATALOGUE.spec("gemini", "gemini-nano-banana-2.1").sizes
PRO_IMAGE = CATALOGUE.spec("gemini", "gemini-3-pro-image").sizes
SCHNELL = CATALOGUE.spec("fal", "fal-ai/flux/schnell").sizes


@pytest.mark.parametrize(
    "error",
    [
        ProviderRefused("no", "openai", 400),
        ProviderRateLimited("slow", "gemini", 429, 23.0),
        ProviderServerError("down", "fal", 503, None),
        ProviderNetworkError("tls", "fal", retry=False),
        ProviderBadResponse("empty", "openai", 200),
        ProviderBadRequest("no", "openai", 400, None, True),
    ],
)
def test_errors_pickle_with_their_fields(error: ProviderError) -> None:
    again = pickle.loads(pickle.dumps(error))

    assert type(again) is type(error)
    assert (again.message, again.provider, again.status) == (error.message, error.provider, error.status)
    assert again.retryable == error.retryable
    assert again.retry_after_s == error.retry_after_s
    assert str(again) == str(error)


def test_retryable_flags() -> None:
    assert ProviderRateLimited("x").retryable and ProviderServerError("x").retryable
    assert ProviderNetworkError("reset").retryable
    assert not ProviderNetworkError("tls", retry=False).retryable
    assert not ProviderRefused("x").retryable
    assert not isinstance(ProviderServerError("x"), ProviderRateLimited)


def test_retry_after_headers() -> None:
    assert retry_after_from_headers({"Retry-After": "2"}) == 2.0
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers({}) is None


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    # RFC 9110 §10.2.3 allows an HTTP-date; openai-python parses it with email.utils (`_parse_retry_after_header`).
    now = 1_700_000_000.0
    headers = {"Retry-After": email.utils.formatdate(now + 30, usegmt=True)}

    assert retry_after_from_headers(headers, now=lambda: now) == pytest.approx(30.0)
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=lambda: now) == 0.0


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        ({"x-should-retry": "true"}, True),
        ({"X-Should-Retry": "false"}, False),
        ({"X-Fal-Retryable": "false"}, False),
        ({"x-fal-retryable": "TRUE"}, True),
        ({"x-should-retry": "maybe"}, None),
        ({"x-should-retry": "yes"}, None),  # only "true" and "false" are verdicts
        ({"x-fal-retryable": "1"}, None),
        ({}, None),
    ],
)
def test_the_servers_retry_verdict(headers: dict[str, str], verdict: bool | None) -> None:
    assert should_retry_from_headers(headers) is verdict


def test_a_verdict_overrides_the_status_default_both_ways() -> None:
    assert not error_for_status(503, "down", "openai", retry=False).retryable
    assert error_for_status(400, "odd", "openai", retry=True).retryable
    assert not hinted(ProviderRateLimited("x", "openai", 429), {"x-should-retry": "false"}).retryable
    assert hinted(ProviderBadRequest("x", "openai", 400), {"x-should-retry": "true"}).retryable


def test_a_retry_verdict_never_makes_a_refusal_or_an_empty_account_retryable() -> None:
    assert not hinted(ProviderRefused("no", "openai", 400), {"x-should-retry": "true"}).retryable
    assert not hinted(ProviderQuotaExhausted("broke", "openai", 429), {"x-should-retry": "true"}).retryable
    assert not hinted(ProviderAuthError("who", "fal", 401), {}).retryable


def test_hinted_takes_the_delay_from_the_headers() -> None:
    err = hinted(ProviderServerError("x", "openai", 503), {"retry-after-ms": "1500"})

    assert type(err) is ProviderServerError and err.retry_after_s == 1.5


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (200, ProviderBadResponse, False),  # a status no error reading knows: the answer itself is unusable
        (399, ProviderBadResponse, False),
        (400, ProviderBadRequest, False),
        (401, ProviderAuthError, False),
        (402, ProviderBadRequest, False),
        (403, ProviderAuthError, False),
        (404, ProviderBadRequest, False),
        (407, ProviderBadRequest, False),
        # 408 and 409 are retried by openai-python (`_should_retry`) and fal-client: a timeout or a lock conflict.
        (408, ProviderServerError, True),
        (409, ProviderServerError, True),
        (410, ProviderBadRequest, False),
        (422, ProviderBadRequest, False),
        (428, ProviderBadRequest, False),
        (429, ProviderRateLimited, True),
        (430, ProviderBadRequest, False),
        (499, ProviderBadRequest, False),
        (500, ProviderServerError, True),
        (501, ProviderServerError, True),
        (503, ProviderServerError, True),
        (599, ProviderServerError, True),
    ],
)
def test_every_status_is_read_as_its_class_of_failure(status: int, kind: type[ProviderError], retryable: bool) -> None:
    error = error_for_status(status, "said no", "openai", retry_after=4.0)

    assert type(error) is kind and error.retryable is retryable
    assert (error.message, error.provider, error.status, error.retry_after_s) == ("said no", "openai", status, 4.0)


def test_retry_after_edges() -> None:
    # A negative wait means "now"; a fraction of a second is kept as it is; an unreadable retry-after-ms falls
    # back to retry-after, and an empty retry-after says nothing.
    assert retry_after_from_headers({"retry-after-ms": "-5"}) == 0.0
    assert retry_after_from_headers({"Retry-After": "-3"}) == 0.0
    assert retry_after_from_headers({"Retry-After": "0.5"}) == 0.5
    assert retry_after_from_headers({"Retry-After": "0"}) == 0.0
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    assert retry_after_from_headers({"RETRY-AFTER-MS": "1"}) == 0.001
    assert retry_after_from_headers({"retry-after": ""}) is None


def test_a_retry_after_date_out_of_any_calendar_is_no_hint_rather_than_a_crash() -> None:
    # A hostile or broken server's header: a year past what the platform's time functions take.
    assert retry_after_from_headers({"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT"}) is None  # ValueError
    assert retry_after_from_headers({"retry-after": "Mon, 01 Jan 10000000000 00:00:00"}) is None  # OverflowError


def test_an_error_built_with_keywords_keeps_every_field_when_scrubbed() -> None:
    # scrubbed() rebuilds the error from its args, so every field must be in them however the error was made.
    key = "sk-live-0123456789abcdef"
    for error in (
        ProviderNetworkError(f"tls to {key} failed", provider="fal", retry=False),
        ProviderRateLimited(f"slow {key}", provider="openai", status=429, retry_after=3.0),
    ):
        clean = scrubbed(error, [key])
        assert key not in str(clean) and type(clean) is type(error)
        assert (clean.provider, clean.status, clean.retryable, clean.retry_after_s) == (
            error.provider,
            error.status,
            error.retryable,
            error.retry_after_s,
        )


def test_openais_verdict_wins_over_fals_and_padding_or_case_do_not_matter() -> None:
    assert should_retry_from_headers({"x-should-retry": "false", "x-fal-retryable": "true"}) is False
    assert should_retry_from_headers({"x-should-retry": "true", "x-fal-retryable": "false"}) is True
    assert should_retry_from_headers({"x-should-retry": " True "}) is True
    assert should_retry_from_headers({"x-should-retry": "", "x-fal-retryable": "false"}) is False


def test_hinted_keeps_the_bodys_own_delay_and_everything_else() -> None:
    # Gemini's RetryInfo (in the body) is read first; a header's hint does not replace it.
    body_hint = ProviderRateLimited("wait", "gemini", 429, 23.0)
    assert hinted(body_hint, {"retry-after": "2"}) is body_hint
    err = hinted(ProviderServerError("down", "fal", 503), {"x-fal-retryable": "false", "retry-after": "7"})
    assert (type(err), err.message, err.provider, err.status) == (ProviderServerError, "down", "fal", 503)
    assert not err.retryable and err.retry_after_s == 7.0


def test_an_error_reads_as_provider_kind_status_and_message() -> None:
    assert str(ProviderRateLimited("slow down", "openai", 429)) == "openai rate_limited: HTTP 429 slow down"
    assert str(ProviderTimeout("no answer in 30 s")) == "timeout: no answer in 30 s"
    assert str(ProviderBadResponse("no image", "fal", 0)) == "fal bad_response: HTTP 0 no image"
    assert repr(ProviderAuthError("bad key", "fal", 401)) == "ProviderAuthError('bad key', provider='fal', status=401)"


def test_messages_are_cut_to_500_characters_on_one_line() -> None:
    assert shorten("a  b\n\tc") == "a b c"
    assert shorten("x" * 500) == "x" * 500
    assert shorten("x" * 501) == "x" * 499 + "…" and len(shorten("x" * 501)) == 500
    assert shorten("abcdef", 4) == "abc…"


def test_scrub_masks_keys_and_url_credentials() -> None:
    key = "AIzaSyD-SECRET-0123456789"
    text = f"GET https://host/v1beta/models/x?key={key}&alt=sse failed; Authorization: Bearer sk-abcdefghijklmnopqrst"

    clean = scrub(text, [key, None, ""])

    assert key not in clean and "sk-abcdefghijklmnopqrst" not in clean
    assert "alt=sse" in clean and "?key=***" in clean


def test_scrub_masks_url_encoded_and_base64_echoes_of_a_key() -> None:
    key = "sk-live/0123+abcdef=XYZ"
    plain_b64 = base64.b64encode(key.encode()).decode()
    echoes = [quote(key, safe=""), plain_b64, base64.b64encode(b"u:" + key.encode()).decode()]

    clean = scrub(" | ".join(echoes), [key])

    assert quote(key, safe="") not in clean and plain_b64[:-4] not in clean
    assert base64.b64encode(b"u:" + key.encode()).decode()[4:-4] not in clean


def test_scrubbed_copy_has_no_key_anywhere() -> None:
    key = "sk-live-0123456789abcdef"
    err = ProviderRateLimited(f"limit for {key}", f"openai {key}", 429, 3.0)

    clean = scrubbed(err, [key])

    assert type(clean) is ProviderRateLimited and clean.retry_after_s == 3.0
    assert key not in repr(clean.args) and key not in str(clean) and key not in repr(clean)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1024, 1024), "1024x1024"),
        ((1920, 1080), "1920x1088"),
        # Too few pixels for the model: scaled up to 655,360 on the 16-pixel grid, same ratio.
        ((800, 600), "944x704"),
        ((64, 64), "816x816"),
        # Past 3:1 the ratio is clamped.
        ((2048, 64), "1408x480"),
        ((700, 1200), "704x1200"),
    ],
)
def test_gpt_image_sizes(size: tuple[int, int], expected: str) -> None:
    text = openai_size(FLARE, *size)
    w, h = (int(v) for v in text.split("x"))

    assert text == expected
    assert w % 16 == 0 and h % 16 == 0 and 655_360 <= w * h <= 8_294_400 and max(w / h, h / w) <= 3


def test_grid_sizes_keep_within_the_bounds() -> None:
    for size in [(2048, 2048), (2048, 1024), (64, 2048), (1999, 1001), (333, 777)]:
        w, h = grid_size(*size, FLARE)
        assert w % 16 == 0 and h % 16 == 0 and w * h <= 8_294_400 and max(w, h) <= 3840


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ((1024, 1024), "1:1"),
        ((1920, 1080), "16:9"),
        ((1080, 1920), "9:16"),
        ((800, 600), "4:3"),
        ((2048, 880), "21:9"),
        ((2048, 512), "4:1"),
        ((2048, 256), "8:1"),
    ],
)
def test_gemini_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size, BANANA.aspect_ratios) == ratio


def test_gemini_pro_image_has_no_extreme_ratios() -> None:
    assert nearest_aspect_ratio(2048, 256, PRO_IMAGE.aspect_ratios) == "21:9"


def test_gemini_tier_is_the_smallest_holding_the_request() -> None:
    assert gemini_image_size(64, 64, BANANA.image_sizes) == "1K"
    assert gemini_image_size(1024, 1024, BANANA.image_sizes) == "1K"
    assert gemini_image_size(1920, 1080, BANANA.image_sizes) == "2K"
    assert gemini_image_size(2048, 2048, BANANA.image_sizes) == "2K"
    assert gemini_image_size(4000, 4000, BANANA.image_sizes) == "4K"
    assert gemini_image_size(4000, 4000, ("1K",)) == "1K"
    assert gemini_image_size(100, 100, ()) is None


def test_fal_sizes() -> None:
    assert fal_image_size(1024, 768, SCHNELL) == "landscape_4_3"
    assert fal_image_size(576, 1024, SCHNELL) == "portrait_16_9"
    assert fal_image_size(1000, 1000, SCHNELL) == {"width": 1008, "height": 1008}
    assert fal_image_size(64, 2048, SCHNELL) == {"width": 256, "height": 2048}


def test_nearest_aspect_ratio_needs_candidates() -> None:
    with pytest.raises(ValueError):
        nearest_aspect_ratio(10, 10, [])
