"""The model catalogue, and every shipped config's remote timeout derived from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.remote import RemoteArgs
from models.remote.catalogue import (
    PROVIDERS,
    REPORT_MARGIN_S,
    RETRY_ROOM_S,
    UnknownModel,
    load_catalogue,
    parse_catalogue,
    remote_timeout_s,
)
from models.remote.config import provider_config

ROOT = Path(__file__).resolve().parents[3]
CATALOGUE = load_catalogue()


def _remote_configs() -> list[tuple[str, dict[str, Any], float]]:
    """(file, the remote backend's args, the gateway's request timeout) for every config we ship."""
    found = []
    for name in ("serve_config.yaml", "serve_config.gpu.yaml"):
        args = yaml.safe_load((ROOT / name).read_text())["applications"][0]["args"]
        found.append((name, args["backends"]["remote"], float(args["request_timeout_s"])))
    service = yaml.safe_load((ROOT / "cluster/rayservice.yaml").read_text())
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]
    found.append(("cluster/rayservice.yaml", embedded["backends"]["remote"], float(embedded["request_timeout_s"])))
    return found


@pytest.mark.parametrize(("name", "remote", "request_timeout_s"), _remote_configs(), ids=lambda v: str(v)[:30])
def test_each_configs_remote_timeout_is_derived_from_the_catalogue(
    name: str, remote: dict[str, Any], request_timeout_s: float
) -> None:
    stated = remote["timeout_s"]
    derived = RemoteArgs.model_validate({k: v for k, v in remote.items() if k != "timeout_s"}).timeout_s

    assert stated == derived, f"{name}: remote.timeout_s should be {derived:g} (python -m models.remote.catalogue)"
    # The gateway must leave the remote backend its whole chain when it is the step that runs.
    assert request_timeout_s >= stated, f"{name}: request_timeout_s {request_timeout_s:g} < remote {stated:g}"


def test_the_default_remote_timeout_is_every_providers_try_plus_the_report_margin() -> None:
    tries = [provider_config(name).attempt_timeout_s for name in PROVIDERS]

    assert RemoteArgs().timeout_s == remote_timeout_s(t or 0 for t in tries)
    assert RemoteArgs().timeout_s >= sum(t or 0 for t in tries) + REPORT_MARGIN_S


def test_a_slower_model_or_option_lengthens_the_derived_timeout() -> None:
    base = RemoteArgs().timeout_s
    slow = RemoteArgs.model_validate({"overrides": {"openai": {"options": {"quality": "high"}}}}).timeout_s
    stated = RemoteArgs.model_validate({"timeout_s": 30}).timeout_s

    assert slow > base
    assert stated == 30  # a config may still say otherwise


def test_every_default_model_is_current_and_its_timeouts_fit_its_latency() -> None:
    for provider in PROVIDERS:
        spec = CATALOGUE.spec(provider, CATALOGUE.default_model(provider))
        assert spec.deprecated is None
        latency = spec.latency_for({})
        assert latency.typical_s < latency.max_s == spec.exchange_timeout_s({})
        assert spec.attempt_timeout_s({}) == latency.max_s + RETRY_ROOM_S
    # gpt-image generations often pass a minute, and high quality two: no 40 s cap throws a paid image away.
    openai = CATALOGUE.spec("openai", CATALOGUE.default_model("openai"))
    assert openai.exchange_timeout_s({}) >= 60 and openai.exchange_timeout_s({"quality": "high"}) > 120


@pytest.mark.parametrize(
    ("provider", "model", "text"),
    [
        ("openai", "dall-e-3", "retired"),
        ("openai", "gpt-image-1", "retired"),
        ("gemini", "gemini-2.5-flash-image", "retired"),
        ("gemini", "models/gemini-3-pro-image-preview", "retired"),
        ("openai", "gpt-image-9", "not in the catalogue"),
    ],
)
def test_retired_and_unknown_models_are_refused_with_what_to_use(provider: str, model: str, text: str) -> None:
    with pytest.raises(UnknownModel, match=text) as info:
        CATALOGUE.spec(provider, model)

    assert "use " in str(info.value) or "known:" in str(info.value)


def test_a_remote_config_naming_a_retired_model_fails_when_loaded() -> None:
    with pytest.raises(ValueError, match="dall-e-3"):
        RemoteArgs.model_validate({"overrides": {"openai": {"model": "dall-e-3"}}})
    with pytest.raises(ValueError, match="style"):
        RemoteArgs.model_validate({"overrides": {"openai": {"options": {"style": "vivid"}}}})


def test_option_rules() -> None:
    flare = CATALOGUE.spec("openai", "gpt-image-2.6-flare")
    schnell = CATALOGUE.spec("fal", "fal-ai/flux/schnell")
    banana = CATALOGUE.spec("gemini", "gemini-nano-banana-2.1")

    flare.check_options({"quality": "high", "output_compression": 80})
    schnell.check_options({"sync_mode": False, "num_inference_steps": 4})
    banana.check_options({"response_modalities": ["TEXT", "IMAGE"]})
    for spec, options in [
        (flare, {"output_compression": 101}),
        (flare, {"quality": True}),
        (schnell, {"sync_mode": "yes"}),
        (schnell, {"num_inference_steps": 0}),
        (banana, {"response_modalities": ["AUDIO"]}),
    ]:
        with pytest.raises(ValueError, match="not accepted"):
            spec.check_options(options)


BY_LOW = {"typical": 1, "max": 2}


def _minimal() -> dict[str, Any]:
    model = {"sizes": {"grid": 16}, "latency": {"typical": 1, "max": 2}}
    return {p: {"default": "m", "models": {"m": dict(model)}} for p in PROVIDERS}


@pytest.mark.parametrize(
    ("patch", "text"),
    [
        (lambda d: d["openai"].update(default="x"), "default"),
        (lambda d: d["fal"]["models"]["m"].update(latency={"typical": 5, "max": 1}), "typical <= max"),
        (lambda d: d["fal"]["models"]["m"].update(sizes={"grid": 16, "bogus": 1}), "unknown size fields"),
        (lambda d: d["gemini"]["models"]["m"].update(options={"q": "anything"}), "an option is"),
        (lambda d: d["gemini"]["models"]["m"].update(defaults={"q": 1}), "takes no option"),
        (
            lambda d: d["openai"]["models"]["m"].update(latency={"by": "quality", "low": {"typical": 1, "max": 2}}),
            "not an option",
        ),
    ],
)
def test_a_malformed_catalogue_names_what_is_wrong(patch: Any, text: str) -> None:
    data = _minimal()
    parse_catalogue(data)
    patch(data)

    with pytest.raises(ValueError, match=text):
        parse_catalogue(data)
