from __future__ import annotations

import logging

import pytest
import yaml
from pydantic import ValidationError

from cascade.access_config import AccessConfig, LimitsConfig, is_loopback
from cascade.keys.store import KeyRecord
from cascade.limits.quota import Quota

EXAMPLE = """
auth: required
key_cache_s: 2
limits:
  key_defaults: {rate_per_s: 2, burst: 5, max_concurrency: 4, daily_images: 500}
  anonymous: {rate_per_s: 1}
  backend_caps: {qwen_image: 8}
  prices_usd: {"openai:gpt-image-1.5": 0.04, "fal:*": 0.003}
  on_redis_error: fail_closed
sentry: {traces_sample_rate: 0.1, send_prompts: false}
"""


def test_a_yaml_config_loads_into_the_limits_the_gateway_uses() -> None:
    cfg = AccessConfig.model_validate(yaml.safe_load(EXAMPLE))
    assert cfg.auth == "required" and cfg.sentry.traces_sample_rate == 0.1
    policy = cfg.limits.policy(request_timeout_s=180)
    assert policy.on_store_error == "fail_closed" and policy.lease_ttl_s == 240
    assert policy.backend_caps == {"qwen_image": 8}
    assert policy.prices.charge("openai:gpt-image-1.5") == 40_000 and policy.prices.charge("fal:x") == 3_000


def test_yaml_off_means_auth_off() -> None:
    assert AccessConfig.model_validate(yaml.safe_load("auth: off")).auth == "off"
    with pytest.raises(ValidationError, match="auth"):
        AccessConfig.model_validate({"auth": "maybe"})


@pytest.mark.parametrize(
    "limits",
    [
        {"backend_caps": {"qwen_image": 0}},
        {"prices_usd": {"gpt-image-1.5": 0.04}},
        {"prices_usd": {"openai:x": -1}},
        {"key_defaults": {"rate_per_s": 0}},
        {"on_redis_error": "ignore"},
        {"redis_prefix": "a b"},
        {"unknown": 1},
    ],
)
def test_bad_limits_are_refused_with_the_field_named(limits: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        LimitsConfig.model_validate(limits)
    assert next(iter(limits)) in str(caught.value)


def test_a_key_own_numbers_win_and_defaults_fill_the_gaps() -> None:
    limits = LimitsConfig.model_validate(yaml.safe_load(EXAMPLE)["limits"])
    record = KeyRecord(id="0123456789ab", name="n", key_hash="h", quota=Quota(rate_per_s=10, daily_spend_usd=1.5))
    who = limits.caller(record)
    assert who.key_id == "0123456789ab"
    assert who.quota == Quota(rate_per_s=10, burst=5, max_concurrency=4, daily_images=500, daily_spend_usd=1.5)
    anonymous = limits.caller(None)
    assert anonymous.key_id == "anonymous" and anonymous.quota == Quota(rate_per_s=1)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.8.9.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_off_on_a_public_host_refuses_to_start_unless_forced(caplog: pytest.LogCaptureFixture) -> None:
    AccessConfig().check_host("127.0.0.1")
    AccessConfig(auth="required").check_host("0.0.0.0")
    with pytest.raises(ValueError, match=r"auth is off but the HTTP host '0\.0\.0\.0' is not loopback"):
        AccessConfig().check_host("0.0.0.0")
    with caplog.at_level(logging.ERROR, logger="cascade.access"):
        AccessConfig(auth_off_on_public_host=True).check_host("0.0.0.0")
    assert "AUTH IS OFF ON PUBLIC HOST 0.0.0.0" in caplog.text


def test_the_store_is_redis_only_when_a_url_is_given() -> None:
    import asyncio

    from cascade.limits.memory import MemoryLimitStore
    from cascade.limits.redis_store import RedisLimitStore

    limits = LimitsConfig()
    assert isinstance(limits.open_store(None), MemoryLimitStore) and isinstance(limits.open_store(""), MemoryLimitStore)
    store = limits.open_store("redis://:pw@127.0.0.1:1/0")
    assert isinstance(store, RedisLimitStore)
    asyncio.run(store.aclose())
