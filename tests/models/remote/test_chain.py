from __future__ import annotations

import base64
import io
import pickle
import time
from dataclasses import replace

import httpx
import pytest
from PIL import Image

from cascade.errors import BackendFailed, Refused
from cascade.types import ImageResult
from models.remote.chain import configs_from_env, generate_chain, keys_from_env, new_client
from models.remote.config import ProviderConfig
from models.remote.retry import RetryPolicy
from tests.fakes.providers import (
    HANG,
    FakeProviders,
    gemini_daily_quota,
    gemini_no_image,
    openai_error,
    refusal,
    reply,
    server_error,
)
from tests.models.remote.helpers import RecordingSleep, config_for, deadline_in, quick_timing, run


def _chain(
    fake: FakeProviders,
    providers: list[ProviderConfig],
    width: int = 64,
    height: int = 64,
    *,
    within: float = 10.0,
    **kw: object,
) -> ImageResult:
    async def go() -> ImageResult:
        async with new_client() as client:
            return await generate_chain(
                client,
                providers,
                "a cat",
                width,
                height,
                5,
                deadline_in(within),
                timing=quick_timing(RecordingSleep()),
                **kw,  # type: ignore[arg-type]
            )

    return run(go())


def test_missing_key_is_skipped_with_reason_then_next_serves(fake: FakeProviders) -> None:
    providers = [
        config_for(fake, "openai", api_key=None),
        config_for(fake, "gemini"),
        config_for(fake, "fal"),
    ]

    result = _chain(fake, providers, 101, 77)

    assert result.provider == "gemini:gemini-nano-banana-2.1"
    assert (result.width, result.height) == (101, 77)
    with Image.open(io.BytesIO(result.data)) as img:
        assert img.size == (101, 77)
    skipped, ok = result.attempts
    assert (skipped.backend, skipped.outcome, skipped.error) == ("remote:openai", "skipped", "no OPENAI_API_KEY set")
    assert skipped.elapsed_ms < 50
    assert (ok.backend, ok.outcome, ok.error) == ("remote:gemini", "ok", None)
    # 101x77 is nearest 4:3, which Gemini 3 image models draw at 1200x896 (1K).
    assert result.meta == {
        "model": "gemini-nano-banana-2.1",
        "native_width": 1200,
        "native_height": 896,
        "revised_prompt": None,
    }
    assert fake.received("openai") == [] and fake.received("fal") == []


def test_hung_provider_times_out_at_its_attempt_deadline_and_next_is_tried(fake: FakeProviders) -> None:
    fake.always("openai", HANG)
    providers = [config_for(fake, "openai", attempt_timeout_s=1.0), config_for(fake, "fal")]

    started = time.monotonic()
    result = _chain(fake, providers)
    elapsed = time.monotonic() - started

    assert result.provider == "fal:fal-ai/flux/schnell"
    timeout, ok = result.attempts
    assert timeout.outcome == "timeout" and timeout.backend == "remote:openai"
    assert 900 <= timeout.elapsed_ms < 3000
    assert ok.outcome == "ok"
    assert elapsed < 5.0
    assert len(fake.received("openai")) == 1


def test_hung_provider_cannot_eat_the_request_deadline(fake: FakeProviders) -> None:
    fake.always("openai", HANG)
    providers = [config_for(fake, "openai", attempt_timeout_s=60.0), config_for(fake, "fal")]

    started = time.monotonic()
    with pytest.raises(BackendFailed) as info:
        _chain(fake, providers, within=1.0)

    assert time.monotonic() - started < 3.0
    assert [a.outcome for a in info.value.attempts] == ["timeout", "skipped"]
    assert info.value.attempts[1].error == "no time left before the deadline"


def test_refusal_stops_the_chain_by_default(fake: FakeProviders) -> None:
    fake.always("openai", refusal("openai"))
    providers = [config_for(fake, "openai"), config_for(fake, "gemini")]

    with pytest.raises(Refused) as info:
        _chain(fake, providers)

    assert "openai:gpt-image-2.6-flare" in str(info.value)
    [attempt] = info.value.attempts
    assert attempt.outcome == "error" and attempt.error is not None and attempt.error.startswith("refused")
    assert len(fake.received("openai")) == 1
    assert fake.received("gemini") == []


def test_no_image_from_gemini_moves_on_to_the_next_provider(fake: FakeProviders) -> None:
    fake.always("gemini", gemini_no_image())

    result = _chain(fake, [config_for(fake, "gemini"), config_for(fake, "fal")])

    assert result.provider == "fal:fal-ai/flux/schnell"
    first, second = result.attempts
    assert (first.backend, first.outcome) == ("remote:gemini", "error") and "NO_IMAGE" in (first.error or "")
    assert (second.backend, second.outcome) == ("remote:fal", "ok")
    assert len(fake.received("gemini")) == 1


def test_a_spent_daily_quota_is_asked_once_then_the_next_provider_serves(fake: FakeProviders) -> None:
    fake.always("gemini", gemini_daily_quota())

    result = _chain(fake, [config_for(fake, "gemini"), config_for(fake, "fal")])

    assert result.provider == "fal:fal-ai/flux/schnell"
    assert result.attempts[0].error is not None and result.attempts[0].error.startswith("quota: HTTP 429")
    assert len(fake.received("gemini")) == 1


def test_a_decompression_bomb_is_refused_before_decoding(fake: FakeProviders, bomb: bytes) -> None:
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(bomb).decode()}}
    fake.always("gemini", reply(200, {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}))

    result = _chain(fake, [config_for(fake, "gemini"), config_for(fake, "fal")], 512, 512)

    assert result.provider == "fal:fal-ai/flux/schnell"
    assert "7999x7999 is too large" in (result.attempts[0].error or "")


def test_refusal_with_continue_policy_tries_the_next(fake: FakeProviders) -> None:
    fake.always("openai", refusal("openai"))
    providers = [config_for(fake, "openai"), config_for(fake, "gemini")]

    result = _chain(fake, providers, on_refusal="continue")

    assert result.provider.startswith("gemini:")
    assert [a.outcome for a in result.attempts] == ["error", "ok"]


def test_every_provider_refusing_is_a_refusal_even_when_continuing(fake: FakeProviders) -> None:
    for name in ("openai", "gemini", "fal"):
        fake.always(name, refusal(name))  # type: ignore[arg-type]
    providers = [config_for(fake, n) for n in ("openai", "gemini", "fal")]

    with pytest.raises(Refused) as info:
        _chain(fake, providers, on_refusal="continue")

    assert len(info.value.attempts) == 3


def test_all_fail_carries_every_attempt(fake: FakeProviders) -> None:
    fake.always("gemini", server_error("gemini", 503))
    providers = [
        config_for(fake, "openai", api_key="sk-not-the-right-one-123456"),
        config_for(fake, "gemini", retry=RetryPolicy(max_tries=2, base_delay_s=0.01)),
        config_for(fake, "fal", api_key=None),
    ]

    with pytest.raises(BackendFailed) as info:
        _chain(fake, providers)

    assert not isinstance(info.value, Refused)
    outcomes = [(a.backend, a.outcome) for a in info.value.attempts]
    assert outcomes == [("remote:openai", "error"), ("remote:gemini", "error"), ("remote:fal", "skipped")]
    assert info.value.attempts[0].error.startswith("auth: HTTP 401")  # type: ignore[union-attr]
    assert info.value.attempts[1].error.startswith("server: HTTP 503")  # type: ignore[union-attr]
    assert info.value.attempts[2].error == "no FAL_KEY or FAL_API_KEY set"
    # It crosses process boundaries intact.
    again = pickle.loads(pickle.dumps(info.value))
    assert again.attempts == info.value.attempts


def test_no_keys_at_all(fake: FakeProviders) -> None:
    providers = configs_from_env({}, overrides={n: {"base_url": fake.base_url} for n in ("openai", "gemini", "fal")})

    with pytest.raises(BackendFailed, match="could be tried") as info:
        _chain(fake, providers)

    assert [a.error for a in info.value.attempts] == [
        "no OPENAI_API_KEY set",
        "no GOOGLE_API_KEY or GEMINI_API_KEY set",
        "no FAL_KEY or FAL_API_KEY set",
    ]
    assert fake.received() == []


def test_api_keys_never_appear_in_errors_attempts_or_reprs() -> None:
    keys = {
        "openai": "sk-proj-SECRETopenai0123456789",
        "gemini": "AIzaSECRETgemini0123456789xyz",
        "fal": "abcd-1234:SECRETfal0123456789",
    }
    # The server expects different keys, so each provider answers its auth error, echoing the key it got.
    with FakeProviders() as fake:
        providers = [config_for(fake, name, api_key=keys[name]) for name in ("openai", "gemini", "fal")]
        with pytest.raises(BackendFailed) as info:
            _chain(fake, providers)
        assert [r.headers.get("authorization", r.headers.get("x-goog-api-key")) for r in fake.received()] == [
            f"Bearer {keys['openai']}",
            keys["gemini"],
            f"Key {keys['fal']}",
        ]

    # A refusal whose message quotes the key back.
    with FakeProviders(keys=keys) as fake:
        echo = openai_error("moderation_blocked", "image_generation_user_error", f"rejected for {keys['openai']}")
        fake.always("openai", reply(400, echo))
        with pytest.raises(Refused) as refused:
            _chain(fake, [config_for(fake, "openai", api_key=keys["openai"])])

    texts = [str(info.value), repr(info.value), str(refused.value), repr(refused.value)]
    texts += [repr(a) for a in (*info.value.attempts, *refused.value.attempts)]
    texts += [str(pickle.loads(pickle.dumps(info.value)).args)]
    texts += [repr(cfg) for cfg in providers]
    for text in texts:
        for key in keys.values():
            assert key not in text, text
    assert all("auth" in (a.error or "") for a in info.value.attempts)


def test_keys_from_env_precedence_and_aliases() -> None:
    assert keys_from_env({}) == {}
    env = {"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "G", "FAL_API_KEY": "f2"}
    assert keys_from_env(env) == {"openai": "o", "gemini": "G", "fal": "f2"}
    assert keys_from_env({"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "  ", "FAL_KEY": "f", "FAL_API_KEY": "f2"}) == {
        "gemini": "g",
        "fal": "f",
    }


def test_configs_from_env_order_base_urls_and_overrides() -> None:
    env = {"FAL_KEY": "fal-key-0123456789", "OPENAI_BASE_URL": "http://proxy.local/v1"}

    configs = configs_from_env(env, order=("fal", "openai"), overrides={"openai": {"model": "gpt-image-2.6-sunburst"}})

    assert [c.served_by for c in configs] == ["fal:fal-ai/flux/schnell", "openai:gpt-image-2.6-sunburst"]
    assert configs[0].api_key == "fal-key-0123456789" and configs[1].api_key is None
    assert configs[1].base_url == "http://proxy.local/v1"
    assert configs[0].base_url == "https://fal.run"
    assert "fal-key-0123456789" not in repr(configs)
    assert replace(configs[0], api_key="other") == configs[0]  # the key is not part of a config's identity


def test_unknown_provider_rejected() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        configs_from_env({}, order=("openai", "midjourney"))


def test_default_client_is_plain() -> None:
    async def go() -> httpx.AsyncClient:
        async with new_client() as client:
            return client

    client = run(go())
    assert "authorization" not in client.headers and not client.follow_redirects
