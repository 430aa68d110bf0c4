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
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
)
from models.remote.retry import RetryPolicy
from tests.fakes.providers import (
    RESET,
    FakeProviders,
    Step,
    gemini_error,
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
    assert req.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert req.headers["x-goog-api-key"] == fake.keys["gemini"]
    assert "authorization" not in req.headers
    assert req.query == ""  # the key travels in the header, never in the URL
    assert req.body == {
        "contents": [{"parts": [{"text": "a lighthouse"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}},
    }
    assert image.native_size == (1344, 768)
    assert image.served_by == "gemini:gemini-2.5-flash-image"
    with Image.open(io.BytesIO(image.data)) as img:
        assert img.format == "PNG" and img.size == (1280, 720)


def test_text_and_image_modalities_pick_the_image_part(fake: FakeProviders) -> None:
    image = run(_generate(fake, 333, 501, options={"response_modalities": ["TEXT", "IMAGE"], "image_size": "1K"}))

    [req] = fake.received("gemini")
    assert req.body["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert req.body["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3", "imageSize": "1K"}
    assert (image.width, image.height) == (333, 501)


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
        reply(200, {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "NO_IMAGE"}]}),
        # Words instead of a picture: the model declining.
        reply(200, {"candidates": [{"content": {"parts": [{"text": "I can't draw that."}]}, "finishReason": "STOP"}]}),
    ],
    ids=["image_safety", "block_reason", "no_image", "text_only"],
)
def test_refusals_are_not_retried(fake: FakeProviders, step: Step) -> None:
    fake.always("gemini", step)

    with pytest.raises(ProviderRefused):
        run(_generate(fake, 64, 64))

    assert len(fake.received("gemini")) == 1


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
