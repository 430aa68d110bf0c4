"""OpenAI Images: `POST {base}/images/generations`. GPT image models always answer base64 (`b64_json`)."""

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
    hinted,
    shorten,
)
from models.remote.sizes import openai_size
from models.remote.transport import Reply

NAME = "openai"
REFUSAL_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def request_body(cfg: ProviderConfig, prompt: str, width: int, height: int) -> dict[str, Any]:
    # The catalogue has already checked every option against the model; GPT image models reject
    # `response_format` (400 unknown_parameter), so the catalogue does not offer it.
    body: dict[str, Any] = {"model": cfg.model, "prompt": prompt, "n": 1}
    body["size"] = openai_size(cfg.model_spec.sizes, width, height)
    body.update(cfg.request_options)
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
        error: ProviderError = ProviderRefused(label, NAME, reply.status)
    elif code in QUOTA_CODES or kind in QUOTA_CODES:
        error = ProviderQuotaExhausted(label, NAME, reply.status)
    else:
        error = error_for_status(reply.status, label, NAME)
    # `x-should-retry` and `retry-after(-ms)`, as openai-python reads them.
    return hinted(error, reply.headers)


def read(reply: Reply) -> tuple[bytes, str | None]:
    """(image bytes, revised prompt) from a 200, else the classified error."""
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
    # Only the retired dall-e models answered with URLs; a URL here is not something we asked for.
    raise ProviderBadResponse("200 without b64_json", NAME, reply.status)


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
    data, revised = await post_with_retries(
        client,
        cfg,
        f"{cfg.url}/images/generations",
        headers={"Authorization": f"Bearer {cfg.api_key}"},
        body=request_body(cfg, prompt, width, height),
        read=read,
        deadline=deadline,
        timing=timing,
    )
    png, native = await finish(client, cfg, data, width, height, deadline, timing)
    return ProviderImage(png, "image/png", width, height, NAME, cfg.model, native, revised, None)
