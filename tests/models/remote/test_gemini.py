from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from models.remote import gemini
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
)
from models.remote.retry import RetryPolicy
from tests.fakes.providers import (
    FINAL_COLOUR,
    RESET,
    FakeProviders,
    Step,
    gemini_daily_quota,
    gemini_error,
    gemini_no_image,
    gemini_quota_failure,
    gemini_retry_info,
    no_image,
    png_bytes,
    rate_limited,
    refusal,
    reply,
    server_error,
)
from tests.models.remote.helpers import RecordingSleep, config_for, deadline_in, quick_timing, run


async def _generate(fake: FakeProviders, width: int, height: int, sleeper: RecordingSleep | None = None, **kw: object):
    cfg = config_for(fake, "gemini", **kw)
    timing = quick_timing(sleeper or RecordingSleep())
    async with httpx.AsyncClient() as client:
        return await gemini.generate(client, cfg, "a lighthouse", width, height, 3, deadline_in(10), timing=timing)


def test_inline_data_result_request_and_aspect_ratio(fake: FakeProviders) -> None:
    image = run(_generate(fake, 1280, 720))

    [req] = fake.received("gemini")
    assert req.path == "/v1beta/models/gemini-nano-banana-2.1:generateContent"
    assert req.headers["x-goog-api-key"] == fake.keys["gemini"]
    assert "authorization" not in req.headers
    assert req.query == ""  # the key travels in the header, never in the URL
    assert req.body == {
        "contents": [{"parts": [{"text": "a lighthouse"}]}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "1K"},
        },
    }
    assert image.native_size == (1376, 768)
    assert image.served_by == "gemini:gemini-nano-banana-2.1"
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.format == "PNG" and img.size == (1280, 720)


def test_the_final_image_is_taken_not_an_interim_thought(fake: FakeProviders) -> None:
    # The fake answers like a Gemini 3 image model: a thought, two half-size interim drafts marked
    # `"thought": true` (red), then the final image (blue) carrying the thought signature.
    image = run(_generate(fake, 512, 512))

    assert image.native_size == (1024, 1024)
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.convert("RGB").getpixel((500, 500)) == FINAL_COLOUR


def test_the_last_of_several_final_images_wins(fake: FakeProviders) -> None:
    def part(colour: tuple[int, int, int], **extra: object) -> dict[str, object]:
        data = base64.b64encode(png_bytes(64, 64, colour)).decode()
        return {"inlineData": {"mimeType": "image/png", "data": data}, **extra}

    parts = [part((1, 2, 3), thought=True), part((9, 9, 9)), part((7, 7, 7), thought=True), part((200, 100, 50))]
    fake.always("gemini", reply(200, {"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]}))

    image = run(_generate(fake, 64, 64))

    with Image.open(io.BytesIO(image.data)) as img:
        assert img.convert("RGB").getpixel((60, 60)) == (200, 100, 50)


def test_only_interim_images_is_an_error_for_the_next_provider(fake: FakeProviders) -> None:
    draft = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png_bytes(8, 8)).decode()}}
    candidate = {"content": {"parts": [{**draft, "thought": True}]}, "finishReason": "STOP"}
    fake.always("gemini", reply(200, {"candidates": [candidate]}))

    with pytest.raises(ProviderBadResponse, match="interim"):
        run(_generate(fake, 64, 64))


def test_image_size_tier_follows_the_request_and_options(fake: FakeProviders) -> None:
    image = run(_generate(fake, 1920, 1080))
    assert fake.received("gemini")[-1].body["generationConfig"]["imageConfig"] == {
        "aspectRatio": "16:9",
        "imageSize": "2K",
    }
    assert image.native_size == (2752, 1536)

    run(_generate(fake, 300, 1200, options={"image_size": "2K"}))
    assert fake.received("gemini")[-1].body["generationConfig"]["imageConfig"] == {
        "aspectRatio": "1:4",
        "imageSize": "2K",
    }


def test_text_and_image_modalities_pick_the_image_part(fake: FakeProviders) -> None:
    image = run(_generate(fake, 333, 501, options={"response_modalities": ["TEXT", "IMAGE"], "image_size": "1K"}))

    [req] = fake.received("gemini")
    assert req.body["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert req.body["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3", "imageSize": "1K"}
    assert (image.width, image.height) == (333, 501)


def test_retired_gemini_models_are_refused_when_configured(fake: FakeProviders) -> None:
    for model in ("gemini-2.5-flash-image", "gemini-3-pro-image-preview"):
        with pytest.raises(ValueError, match="retired"):
            config_for(fake, "gemini", model=model)


def test_429_retry_info_delay_is_honoured(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    fake.script("gemini", rate_limited("gemini", retry_after="1"))

    image = run(_generate(fake, 512, 512, sleeper))

    assert image.width == 512
    assert len(fake.received("gemini")) == 2
    assert sleeper.waits[0] >= 1.0


def test_fractional_retry_delay(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    body = gemini_error(429, "RESOURCE_EXHAUSTED", "quota", [gemini_retry_info("1.250s")])
    fake.script("gemini", reply(429, body))

    run(_generate(fake, 64, 64, sleeper))

    assert sleeper.waits == [pytest.approx(1.25)]


def test_503_once_then_success(fake: FakeProviders) -> None:
    fake.script("gemini", server_error("gemini", 503))

    image = run(_generate(fake, 64, 64))

    assert image.width == 64
    assert len(fake.received("gemini")) == 2


def test_persistent_503(fake: FakeProviders) -> None:
    fake.always("gemini", server_error("gemini", 503))

    with pytest.raises(ProviderServerError, match="overloaded"):
        run(_generate(fake, 64, 64, retry=RetryPolicy(max_tries=2, base_delay_s=0.01)))

    assert len(fake.received("gemini")) == 2


def test_reset_then_success(fake: FakeProviders) -> None:
    fake.script("gemini", RESET)

    assert run(_generate(fake, 64, 64)).width == 64


@pytest.mark.parametrize(
    "step",
    [
        refusal("gemini"),
        reply(200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
        # Words instead of a picture: the model declining.
        reply(200, {"candidates": [{"content": {"parts": [{"text": "I can't draw that."}]}, "finishReason": "STOP"}]}),
    ],
    ids=["image_safety", "block_reason", "text_only"],
)
def test_refusals_are_not_retried(fake: FakeProviders, step: Step) -> None:
    fake.always("gemini", step)

    with pytest.raises(ProviderRefused):
        run(_generate(fake, 64, 64))

    assert len(fake.received("gemini")) == 1


def test_no_image_is_an_error_not_a_refusal(fake: FakeProviders) -> None:
    fake.always("gemini", gemini_no_image())

    with pytest.raises(ProviderError) as info:
        run(_generate(fake, 64, 64))

    # Not a policy block: the chain goes on to the next provider instead of ending the request with 422.
    assert not isinstance(info.value, ProviderRefused)
    assert isinstance(info.value, ProviderBadResponse) and "NO_IMAGE" in info.value.message
    assert len(fake.received("gemini")) == 1


@pytest.mark.parametrize("zero_limit", [False, True], ids=["per_day", "limit_0"])
def test_a_daily_or_zero_quota_is_exhausted_not_retried(fake: FakeProviders, zero_limit: bool) -> None:
    fake.always("gemini", gemini_daily_quota(zero_limit=zero_limit))

    with pytest.raises(ProviderQuotaExhausted) as info:
        run(_generate(fake, 64, 64))

    assert not info.value.retryable
    assert len(fake.received("gemini")) == 1


def test_a_per_minute_quota_is_still_retried_after_its_delay(fake: FakeProviders, sleeper: RecordingSleep) -> None:
    details = [gemini_quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"), gemini_retry_info("2s")]
    fake.script("gemini", reply(429, gemini_error(429, "RESOURCE_EXHAUSTED", "quota", details)))

    assert run(_generate(fake, 64, 64, sleeper)).width == 64
    assert sleeper.waits == [pytest.approx(2.0)]


def test_200_without_an_image_part_is_a_bad_response(fake: FakeProviders) -> None:
    fake.always("gemini", no_image("gemini"))

    with pytest.raises(ProviderBadResponse, match="OTHER"):
        run(_generate(fake, 64, 64))

    assert len(fake.received("gemini")) == 1


def test_image_part_with_undecodable_data(fake: FakeProviders) -> None:
    junk = base64.b64encode(b"not a png").decode()
    part = {"inlineData": {"mimeType": "image/png", "data": junk}}
    fake.always("gemini", reply(200, {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}))

    with pytest.raises(ProviderBadResponse):
        run(_generate(fake, 64, 64))


def test_jpeg_inline_data_comes_back_as_png(fake: FakeProviders) -> None:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(300, 200))).save(buf, format="JPEG")
    part = {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(buf.getvalue()).decode()}}
    fake.always("gemini", reply(200, {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}))

    image = run(_generate(fake, 150, 100))

    assert image.mime == "image/png" and image.native_size == (300, 200)
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.format == "PNG" and img.size == (150, 100)


def test_invalid_key_400_is_auth_and_key_not_echoed(fake: FakeProviders) -> None:
    wrong = "AIzaWRONG-0000000000000000000"

    with pytest.raises(ProviderAuthError) as info:
        run(_generate(fake, 64, 64, api_key=wrong))

    assert info.value.status == 400
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert len(fake.received("gemini")) == 1


def test_403_permission_denied_is_auth(fake: FakeProviders) -> None:
    fake.always("gemini", reply(403, gemini_error(403, "PERMISSION_DENIED", "Permission denied.")))

    with pytest.raises(ProviderAuthError):
        run(_generate(fake, 64, 64))

    assert len(fake.received("gemini")) == 1


def test_429_without_hint_persistent(fake: FakeProviders) -> None:
    fake.always("gemini", rate_limited("gemini"))

    with pytest.raises(ProviderRateLimited):
        run(_generate(fake, 64, 64))

    assert len(fake.received("gemini")) == 3
