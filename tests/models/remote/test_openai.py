from __future__ import annotations

import email.utils
import io
import time

import httpx
import pytest
from PIL import Image

from models.remote import openai
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadRequest,
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
    http_date,
    no_image,
    openai_error,
    openai_with_verdict,
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
    # The request's ratio on the model's 16-pixel grid, with at least the model's minimum pixels.
    assert image.native_size == (1088, 608)
    assert image.served_by == "openai:gpt-image-2.6-flare"
    [req] = fake.received("openai")
    assert req.method == "POST" and req.path == "/v1/images/generations"
    assert req.headers["authorization"] == f"Bearer {fake.keys['openai']}"
    assert req.headers["content-type"] == "application/json"
    assert req.body == {
        "model": "gpt-image-2.6-flare",
        "prompt": "a red fox",
        "n": 1,
        "size": "1088x608",
        "quality": "medium",
        "output_format": "png",
    }
    assert "response_format" not in req.body


def test_configured_options_replace_the_catalogue_defaults(fake: FakeProviders) -> None:
    run(_generate(fake, 64, 64, model="gpt-image-2.6-sunburst", options={"quality": "high", "background": "opaque"}))

    [req] = fake.received("openai")
    assert req.body["model"] == "gpt-image-2.6-sunburst"
    assert (req.body["quality"], req.body["background"], req.body["output_format"]) == ("high", "opaque", "png")


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1", "gpt-image-1.5"])
def test_retired_models_are_refused_when_configured(fake: FakeProviders, model: str) -> None:
    with pytest.raises(ValueError, match="retired"):
        config_for(fake, "openai", model=model)


def test_options_the_model_does_not_take_are_refused_when_configured(fake: FakeProviders) -> None:
    with pytest.raises(ValueError, match="response_format"):
        config_for(fake, "openai", options={"response_format": "url"})
    with pytest.raises(ValueError, match="quality"):
        config_for(fake, "openai", options={"quality": "hd"})


def test_the_per_try_timeout_fits_the_models_latency(fake: FakeProviders) -> None:
    flare = config_for(fake, "openai", timeout_s=None, attempt_timeout_s=None)
    high = config_for(fake, "openai", timeout_s=None, attempt_timeout_s=None, options={"quality": "high"})

    # A medium-quality gpt-image generation often takes a minute; high quality over two.
    assert flare.timeout_s is not None and flare.timeout_s >= 60
    assert high.timeout_s is not None and high.timeout_s > 120
    assert high.attempt_timeout_s is not None and high.attempt_timeout_s > high.timeout_s


def test_a_retired_model_named_by_a_proxy_config_is_a_404(fake: FakeProviders) -> None:
    # The fake answers as OpenAI does after a shutdown; we never send such a request, but a config that bypasses
    # the catalogue (a spec handed in directly) would meet this.
    from models.remote.catalogue import load_catalogue

    spec = load_catalogue().spec("openai", "gpt-image-2")
    with pytest.raises(ProviderBadRequest) as info:
        run(_generate(fake, 64, 64, model="dall-e-3", spec=spec))

    assert info.value.status == 404 and "model_not_found" in info.value.message


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

    # Timed from when the deadline is set to when the call gives up: making the client (loading CA certificates)
    # and the event loop around it are not the call's to bound, and take over a second on a loaded machine.
    elapsed: list[float] = []

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            try:
                await openai.generate(client, cfg, "x", 64, 64, None, deadline_in(1.5))
            finally:
                elapsed.append(time.monotonic() - started)

    with pytest.raises(ProviderRateLimited):
        run(go())

    assert elapsed[0] < 2.5
    assert 2 <= len(fake.received("openai")) < 100


def test_retry_after_as_an_http_date_is_honoured(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    date = http_date(3)
    fake.script("openai", rate_limited("openai", retry_after=date))

    image = run(_generate(fake, 64, 64, sleeper))

    assert image.width == 64
    assert len(fake.received("openai")) == 2
    # The retry waits until that date, however long the request took to come back (a loaded machine may take
    # over a second): only the few statements between reading the header and sleeping separate the two.
    assert len(sleeper.until) == 1 and sleeper.until[0] == pytest.approx(
        email.utils.parsedate_to_datetime(date).timestamp(), abs=0.25
    )


def test_x_should_retry_false_stops_a_retry_the_status_would_allow(fake: FakeProviders) -> None:
    fake.always("openai", openai_with_verdict(503, should_retry=False))

    with pytest.raises(ProviderServerError) as info:
        run(_generate(fake, 64, 64))

    assert not info.value.retryable
    assert len(fake.received("openai")) == 1


def test_x_should_retry_true_retries_a_status_that_would_not_be(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("openai", openai_with_verdict(400, should_retry=True, code="invalid_request_error"))

    image = run(_generate(fake, 64, 64, sleeper))

    assert image.width == 64
    assert len(fake.received("openai")) == 2


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
