"""OpenAI Images: `POST {base}/images/generations` (gpt-image-* answer base64; dall-e-* base64 or a URL)."""

from __future__ import annotations

from typing import Any

import httpx

from models.remote.common import REAL_TIME, ProviderImage, Timing, b64_image, finish, post_with_retries, without_secrets
from models.remote.config import ProviderConfig
from models.remote.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRefused,
    error_for_status,
    retry_after_from_headers,
    shorten,
)
from models.remote.sizes import openai_size
from models.remote.transport import Reply

NAME = "openai"
REFUSAL_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
# Passed through from `cfg.options` when set; anything else stays out so the API never sees an unknown field.
GPT_IMAGE_OPTIONS = ("quality", "background", "moderation", "output_compression")
DALLE_OPTIONS = ("quality", "style")


def is_dalle(model: str) -> bool:
    return model.startswith("dall-e")


def request_body(cfg: ProviderConfig, prompt: str, width: int, height: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": cfg.model, "prompt": prompt, "n": 1, "size": openai_size(cfg.model, width, height)}
    if is_dalle(cfg.model):
        # GPT image models reject response_format outright (400 unknown_parameter); dall-e defaults to a URL.
        body["response_format"] = cfg.options.get("response_format", "b64_json")
        names: tuple[str, ...] = DALLE_OPTIONS
    else:
        body["output_format"] = cfg.options.get("output_format", "png")
        names = GPT_IMAGE_OPTIONS
    body.update({k: cfg.options[k] for k in names if k in cfg.options})
    return body


def classify(reply: Reply) -> ProviderError:
    err = reply.json()
    detail = err.get("error") if isinstance(err, dict) else None
    detail = detail if isinstance(detail, dict) else {}
    code = str(detail.get("code") or "")
    kind = str(detail.get("type") or "")
    message = shorten(str(detail.get("message") or reply.text()))
    label = f"{code or kind}: {message}" if (code or kind) else message
    if code in REFUSAL_CODES or kind in REFUSAL_CODES:
        return ProviderRefused(label, NAME, reply.status)
    if code in QUOTA_CODES or kind in QUOTA_CODES:
        return ProviderQuotaExhausted(label, NAME, reply.status)
    return error_for_status(reply.status, label, NAME, retry_after=retry_after_from_headers(reply.headers))


def read(reply: Reply) -> tuple[bytes | str, str | None]:
    """(image bytes or URL, revised prompt) from a 200, else the classified error."""
    if reply.status != 200:
        raise classify(reply)
    payload = reply.json()
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ProviderBadResponse("200 without data[0]", NAME, reply.status)
    item = data[0]
    revised = item.get("revised_prompt") if isinstance(item.get("revised_prompt"), str) else None
    if item.get("b64_json"):
        return b64_image(item["b64_json"], NAME), revised
    if isinstance(item.get("url"), str) and item["url"]:
        return item["url"], revised
    raise ProviderBadResponse("200 without b64_json or url", NAME, reply.status)


async def generate(
    client: httpx.AsyncClient,
    cfg: ProviderConfig,
    prompt: str,
    width: int,
    height: int,
    seed: int | None,
    deadline: float,
    *,
    timing: Timing = REAL_TIME,
) -> ProviderImage:
    """One image from OpenAI, `width`x`height` PNG. The Images API takes no seed: `seed` is ignored."""
    return await without_secrets(cfg, _generate(client, cfg, prompt, width, height, deadline, timing))


async def _generate(
    client: httpx.AsyncClient,
    cfg: ProviderConfig,
    prompt: str,
    width: int,
    height: int,
    deadline: float,
    timing: Timing,
) -> ProviderImage:
    source, revised = await post_with_retries(
        client,
        cfg,
        f"{cfg.url}/images/generations",
        headers={"Authorization": f"Bearer {cfg.api_key}"},
        body=request_body(cfg, prompt, width, height),
        read=read,
        deadline=deadline,
        timing=timing,
    )
    png, native = await finish(client, cfg, source, width, height, deadline, timing)
    return ProviderImage(png, "image/png", width, height, NAME, cfg.model, native, revised, None)
