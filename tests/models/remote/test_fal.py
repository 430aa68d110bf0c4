from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from models.remote import fal
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderNetworkError,
    ProviderQuotaExhausted,
    ProviderRefused,
    ProviderServerError,
)
from models.remote.retry import RetryPolicy
from tests.fakes.providers import (
    RESET,
    FakeProviders,
    fal_infra_error,
    fal_locked,
    fal_refusal,
    fal_toolkit_error,
    no_image,
    rate_limited,
    reply,
    server_error,
)
from tests.models.remote.helpers import RecordingSleep, config_for, deadline_in, quick_timing, run


async def _generate(
    fake: FakeProviders,
    width: int,
    height: int,
    seed: int | None = 11,
    sleeper: RecordingSleep | None = None,
    **kw: object,
):
    cfg = config_for(fake, "fal", **kw)
    timing = quick_timing(sleeper or RecordingSleep())
    async with httpx.AsyncClient() as client:
        return await fal.generate(client, cfg, "a tiny robot", width, height, seed, deadline_in(10), timing=timing)


def test_sync_mode_data_uri_result_and_request(fake: FakeProviders) -> None:
    image = run(_generate(fake, 1024, 576))

    [req] = fake.received()
    assert req.path == "/fal-ai/flux/schnell"
    assert req.headers["authorization"] == f"Key {fake.keys['fal']}"
    assert req.body == {
        "prompt": "a tiny robot",
        "image_size": "landscape_16_9",
        "num_images": 1,
        "output_format": "png",
        "sync_mode": True,
        "seed": 11,
    }
    assert image.seed == 11
    assert image.served_by == "fal:fal-ai/flux/schnell"
    assert image.native_size == (1024, 576)
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.size == (1024, 576)


def test_url_result_fetched_from_allowed_http_host(fake: FakeProviders) -> None:
    image = run(_generate(fake, 333, 777, options={"sync_mode": False, "output_format": "jpeg"}))

    assert [r.provider for r in fake.received()] == ["fal", "files"]
    req = fake.received("fal")[0]
    assert req.body["sync_mode"] is False
    # Off-menu sizes go as explicit dimensions on flux's 16-pixel grid, never smaller than asked.
    assert req.body["image_size"] == {"width": 336, "height": 784}
    assert "authorization" not in fake.received("files")[0].headers
    assert image.native_size == (336, 784)
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.format == "PNG" and img.size == (333, 777)


def test_url_result_refused_when_http_host_not_allowed(fake: FakeProviders) -> None:
    with pytest.raises(ProviderBadResponse, match="plain-http"):
        run(_generate(fake, 64, 64, options={"sync_mode": False}, allow_http_hosts=()))

    assert [r.provider for r in fake.received()] == ["fal"]


def test_no_seed_means_none_sent(fake: FakeProviders) -> None:
    image = run(_generate(fake, 512, 512, seed=None))

    assert "seed" not in fake.received("fal")[0].body
    assert fake.received("fal")[0].body["image_size"] == "square"
    assert image.seed == 424242  # what the fake reports it used


def test_refusal_422_not_retried(fake: FakeProviders) -> None:
    fake.always("fal", fal_refusal("a tiny robot"))

    with pytest.raises(ProviderRefused, match="content checker"):
        run(_generate(fake, 64, 64))

    assert len(fake.received("fal")) == 1


def test_nsfw_flagged_200_is_a_refusal(fake: FakeProviders) -> None:
    body = {
        "images": [{"url": "data:image/png;base64,AAAA", "width": 1, "height": 1, "content_type": "image/png"}],
        "seed": 1,
        "has_nsfw_concepts": [True],
        "timings": {},
        "prompt": "",
    }
    fake.always("fal", reply(200, body))

    with pytest.raises(ProviderRefused):
        run(_generate(fake, 64, 64))

    assert len(fake.received("fal")) == 1


def test_other_422_is_a_bad_request_not_retried(fake: FakeProviders) -> None:
    detail = [{"loc": ["body", "num_inference_steps"], "msg": "must be <= 12", "type": "less_than_equal"}]
    fake.always("fal", reply(422, {"detail": detail}))

    with pytest.raises(Exception, match="must be <= 12") as info:
        run(_generate(fake, 64, 64))

    assert not info.value.retryable  # type: ignore[attr-defined]
    assert len(fake.received("fal")) == 1


def test_200_without_an_image_is_a_bad_response(fake: FakeProviders) -> None:
    fake.always("fal", no_image("fal"))

    with pytest.raises(ProviderBadResponse):
        run(_generate(fake, 64, 64))

    assert len(fake.received("fal")) == 1


def test_503_runner_failure_then_success(fake: FakeProviders) -> None:
    fake.script("fal", server_error("fal", 503))

    assert run(_generate(fake, 64, 64)).width == 64
    assert len(fake.received("fal")) == 2


def test_persistent_504_startup_timeout(fake: FakeProviders) -> None:
    fake.always("fal", fal_infra_error(504, "startup_timeout", "Application startup timed out"))

    with pytest.raises(ProviderServerError, match="startup_timeout"):
        run(_generate(fake, 64, 64, retry=RetryPolicy(max_tries=2, base_delay_s=0.01)))

    assert len(fake.received("fal")) == 2


def test_429_retry_after_honoured(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("fal", rate_limited("fal", retry_after="1"))

    run(_generate(fake, 64, 64, sleeper=sleeper))

    assert sleeper.waits[0] >= 1.0
    assert len(fake.received("fal")) == 2


def test_persistent_reset(fake: FakeProviders) -> None:
    fake.always("fal", RESET)

    with pytest.raises(ProviderNetworkError):
        run(_generate(fake, 64, 64, retry=RetryPolicy(max_tries=2, base_delay_s=0.01)))

    assert len(fake.received("fal")) == 2


def test_wrong_key_401_not_retried_not_echoed(fake: FakeProviders) -> None:
    wrong = "fal-wrong-0123456789abcdef:deadbeef"

    with pytest.raises(ProviderAuthError) as info:
        run(_generate(fake, 64, 64, api_key=wrong))

    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert len(fake.received("fal")) == 1


@pytest.mark.parametrize(
    "reason",
    [
        "Exhausted balance. Top up your balance at fal.ai/dashboard/billing.",
        "TOP_UP.",
        "Admin lock. Please contact support@fal.ai",
    ],
)
def test_a_locked_account_is_quota_not_auth(fake: FakeProviders, reason: str) -> None:
    fake.always("fal", fal_locked(reason))

    with pytest.raises(ProviderQuotaExhausted, match="User is locked"):
        run(_generate(fake, 64, 64))

    assert len(fake.received("fal")) == 1


def test_x_fal_retryable_false_stops_a_retry_the_status_would_allow(fake: FakeProviders) -> None:
    fake.always("fal", fal_toolkit_error(504, "generation_timeout", retryable=False))

    with pytest.raises(ProviderServerError) as info:
        run(_generate(fake, 64, 64))

    assert not info.value.retryable
    assert len(fake.received("fal")) == 1


def test_x_fal_retryable_true_retries(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("fal", fal_toolkit_error(504, "downstream_service_unavailable", retryable=True))

    assert run(_generate(fake, 64, 64, sleeper=sleeper)).width == 64
    assert len(fake.received("fal")) == 2


def test_url_result_on_a_host_off_the_allowlist_is_refused(fake: FakeProviders) -> None:
    with pytest.raises(ProviderBadResponse, match="not an allowed image host"):
        run(_generate(fake, 64, 64, options={"sync_mode": False}, image_hosts=("fal.media", "*.fal.media")))

    assert [r.provider for r in fake.received()] == ["fal"]


def test_url_result_on_loopback_is_refused_without_the_test_allowance(fake: FakeProviders) -> None:
    with pytest.raises(ProviderBadResponse, match="loopback"):
        run(_generate(fake, 64, 64, options={"sync_mode": False}, allow_private_networks=()))

    assert [r.provider for r in fake.received()] == ["fal"]
