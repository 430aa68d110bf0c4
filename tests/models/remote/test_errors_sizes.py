from __future__ import annotations

import pickle

import pytest

from models.remote.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderNetworkError,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    retry_after_from_headers,
    scrub,
    scrubbed,
)
from models.remote.sizes import fal_image_size, nearest_aspect_ratio, nearest_size, openai_size


@pytest.mark.parametrize(
    "error",
    [
        ProviderRefused("no", "openai", 400),
        ProviderRateLimited("slow", "gemini", 429, 23.0),
        ProviderServerError("down", "fal", 503, None),
        ProviderNetworkError("tls", "fal", None, False),
        ProviderBadResponse("empty", "openai", 200),
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
    assert not ProviderNetworkError("tls", "", None, False).retryable
    assert not ProviderRefused("x").retryable
    assert not isinstance(ProviderServerError("x"), ProviderRateLimited)


def test_retry_after_headers() -> None:
    assert retry_after_from_headers({"Retry-After": "2"}) == 2.0
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_from_headers({}) is None


def test_scrub_masks_keys_and_url_credentials() -> None:
    key = "AIzaSyD-SECRET-0123456789"
    text = f"GET https://host/v1beta/models/x?key={key}&alt=sse failed; Authorization: Bearer sk-abcdefghijklmnopqrst"

    clean = scrub(text, [key, None, ""])

    assert key not in clean and "sk-abcdefghijklmnopqrst" not in clean
    assert "alt=sse" in clean and "?key=***" in clean


def test_scrubbed_copy_has_no_key_anywhere() -> None:
    key = "sk-live-0123456789abcdef"
    err = ProviderRateLimited(f"limit for {key}", f"openai {key}", 429, 3.0)

    clean = scrubbed(err, [key])

    assert type(clean) is ProviderRateLimited and clean.retry_after_s == 3.0
    assert key not in repr(clean.args) and key not in str(clean) and key not in repr(clean)


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        ("gpt-image-1", (1024, 1024), "1024x1024"),
        ("gpt-image-1", (1920, 1080), "1536x1024"),
        ("gpt-image-1", (700, 1200), "1024x1536"),
        ("gpt-image-1.5", (64, 64), "1024x1024"),
        ("dall-e-3", (1920, 1080), "1792x1024"),
        ("dall-e-3", (600, 1000), "1024x1792"),
        ("dall-e-2", (200, 200), "256x256"),
        ("dall-e-2", (300, 300), "512x512"),
        ("dall-e-2", (2048, 1024), "1024x1024"),
    ],
)
def test_openai_sizes(model: str, size: tuple[int, int], expected: str) -> None:
    assert openai_size(model, *size) == expected


@pytest.mark.parametrize(
    ("size", "ratio"),
    [((1024, 1024), "1:1"), ((1920, 1080), "16:9"), ((1080, 1920), "9:16"), ((800, 600), "4:3"), ((2048, 880), "21:9")],
)
def test_gemini_aspect_ratio(size: tuple[int, int], ratio: str) -> None:
    assert nearest_aspect_ratio(*size) == ratio


def test_fal_sizes() -> None:
    assert fal_image_size(1024, 768) == "landscape_4_3"
    assert fal_image_size(576, 1024) == "portrait_16_9"
    assert fal_image_size(1000, 1000) == {"width": 1008, "height": 1008}
    assert fal_image_size(64, 2048) == {"width": 256, "height": 2048}


def test_nearest_size_needs_candidates() -> None:
    with pytest.raises(ValueError):
        nearest_size(10, 10, [])
