from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from models.remote import openai
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderNetworkError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
)
from models.remote.retry import RetryPolicy
from tests.fakes.providers import (
    RESET,
    FakeProviders,
    no_image,
    openai_error,
    rate_limited,
    refusal,
    reply,
    server_error,
)
from tests.models.remote.helpers import RecordingSleep, config_for, deadline_in, quick_timing, run


async def _generate(fake: FakeProviders, width: int, height: int, sleeper: RecordingSleep | None = None, **kw: object):
    cfg = config_for(fake, "openai", **kw)
    timing = quick_timing(sleeper or RecordingSleep())
    async with httpx.AsyncClient() as client:
        return await openai.generate(client, cfg, "a red fox", width, height, 7, deadline_in(10), timing=timing)


def test_gpt_image_base64_result_request_and_exact_size(fake: FakeProviders) -> None:
    image = run(_generate(fake, 801, 449))

    assert (image.width, image.height) == (801, 449)
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.format == "PNG" and img.size == (801, 449)
    assert image.native_size == (1536, 1024)
    assert image.served_by == "openai:gpt-image-1"
    [req] = fake.received("openai")
    assert req.method == "POST" and req.path == "/v1/images/generations"
    assert req.headers["authorization"] == f"Bearer {fake.keys['openai']}"
    assert req.headers["content-type"] == "application/json"
    assert req.body == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": 1,
        "size": "1536x1024",
        "output_format": "png",
    }
    assert "response_format" not in req.body


def test_dalle3_sends_response_format_and_reports_revised_prompt(fake: FakeProviders) -> None:
    image = run(_generate(fake, 600, 1000, model="dall-e-3"))

    [req] = fake.received("openai")
    assert req.body["response_format"] == "b64_json"
    assert req.body["size"] == "1024x1792"
    assert "output_format" not in req.body
    assert image.revised_prompt == "revised: a red fox"
    assert (image.width, image.height) == (600, 1000)


def test_dalle_url_result_is_fetched(fake: FakeProviders) -> None:
    image = run(_generate(fake, 300, 300, model="dall-e-2", options={"response_format": "url"}))

    assert [r.provider for r in fake.received()] == ["openai", "files"]
    assert fake.received("openai")[0].body["size"] == "512x512"
    # The CDN fetch carries no credentials.
    assert "authorization" not in fake.received("files")[0].headers
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.size == (300, 300)


def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("openai", rate_limited("openai", retry_after="1"))

    image = run(_generate(fake, 256, 256, sleeper))

    assert image.width == 256
    assert len(fake.received("openai")) == 2
    assert sleeper.waits and sleeper.waits[0] >= 1.0


def test_retry_after_ms_wins_over_retry_after(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    body = openai_error("rate_limit_exceeded", "requests")
    fake.script("openai", reply(429, body, {"retry-after": "9", "retry-after-ms": "1500"}))

    run(_generate(fake, 256, 256, sleeper))

    assert sleeper.waits == [pytest.approx(1.5)]


def test_500_once_then_success(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("openai", server_error("openai", 500))

    image = run(_generate(fake, 512, 512, sleeper))

    assert image.width == 512
    assert len(fake.received("openai")) == 2
    assert len(sleeper.waits) == 1


def test_persistent_503_gives_up_after_max_tries(fake: FakeProviders) -> None:
    fake.always("openai", server_error("openai", 503))

    with pytest.raises(ProviderServerError) as info:
        run(_generate(fake, 512, 512, retry=RetryPolicy(max_tries=4, base_delay_s=0.01)))

    assert info.value.status == 503 and info.value.retryable
    assert len(fake.received("openai")) == 4


def test_persistent_429_gives_up_within_the_deadline(fake: FakeProviders) -> None:
    fake.always("openai", rate_limited("openai"))
    cfg = config_for(fake, "openai", retry=RetryPolicy(max_tries=100, base_delay_s=0.1, max_delay_s=0.2))

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await openai.generate(client, cfg, "x", 64, 64, None, deadline_in(1.5))

    started = time.monotonic()
    with pytest.raises(ProviderRateLimited):
        run(go())
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert 2 <= len(fake.received("openai")) < 100


def test_retry_after_beyond_the_deadline_gives_up_at_once(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.always("openai", rate_limited("openai", retry_after="30"))

    with pytest.raises(ProviderRateLimited) as info:
        run(_generate(fake, 64, 64, sleeper))

    assert info.value.retry_after_s == 30
    assert len(fake.received("openai")) == 1
    assert sleeper.waits == []


def test_connection_reset_is_retried(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("openai", RESET)

    image = run(_generate(fake, 64, 64, sleeper))

    assert image.width == 64
    assert len(fake.received("openai")) == 2


def test_persistent_reset_is_a_network_error(fake: FakeProviders) -> None:
    fake.always("openai", RESET)

    with pytest.raises(ProviderNetworkError):
        run(_generate(fake, 64, 64))

    assert len(fake.received("openai")) == 3


@pytest.mark.parametrize(
    "step",
    [
        refusal("openai"),
        reply(400, openai_error("content_policy_violation", "invalid_request_error", "Your request was rejected")),
    ],
)
def test_refusal_is_not_retried(fake: FakeProviders, step: object) -> None:
    fake.always("openai", step)  # type: ignore[arg-type]

    with pytest.raises(ProviderRefused) as info:
        run(_generate(fake, 64, 64))

    assert not info.value.retryable
    assert len(fake.received("openai")) == 1


def test_quota_exhausted_is_not_retried(fake: FakeProviders) -> None:
    body = openai_error("insufficient_quota", "insufficient_quota", "You exceeded your current quota.")
    fake.always("openai", reply(429, body))

    with pytest.raises(ProviderQuotaExhausted):
        run(_generate(fake, 64, 64))

    assert len(fake.received("openai")) == 1


def test_wrong_key_is_auth_not_retried_and_not_echoed(fake: FakeProviders) -> None:
    wrong = "sk-wrong-KEY-ffffffffffffffff"

    with pytest.raises(ProviderAuthError) as info:
        run(_generate(fake, 64, 64, api_key=wrong))

    assert len(fake.received("openai")) == 1
    assert info.value.status == 401
    for text in (str(info.value), repr(info.value), *map(str, info.value.args)):
        assert wrong not in text
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_200_without_an_image_is_a_bad_response(fake: FakeProviders) -> None:
    fake.always("openai", no_image("openai"))

    with pytest.raises(ProviderBadResponse):
        run(_generate(fake, 64, 64))

    assert len(fake.received("openai")) == 1


def test_200_with_garbage_image_is_a_bad_response(fake: FakeProviders) -> None:
    fake.always("openai", reply(200, {"created": 1, "data": [{"b64_json": "aGVsbG8="}]}))

    with pytest.raises(ProviderBadResponse, match="decoded"):
        run(_generate(fake, 64, 64))
