"""fal.ai sync endpoint: `POST {base}/fal-ai/flux/schnell`; the image is a data URI (sync_mode) or a URL."""

from __future__ import annotations

from typing import Any

import httpx

from models.remote.common import REAL_TIME, ProviderImage, Timing, finish, post_with_retries, without_secrets
from models.remote.config import ProviderConfig
from models.remote.errors import (
    ProviderBadRequest,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRefused,
    error_for_status,
    hinted,
    shorten,
)
from models.remote.sizes import fal_image_size
from models.remote.transport import Reply

NAME = "fal"
# A locked account: "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.",
# "... Reason: TOP_UP.", "... Reason: Admin lock. Please contact support@fal.ai" (403 bodies quoted in fal-ai/fal
# issues #1147, #1163, #1168). A billing state: the key is fine and no wait within a request unlocks it.
_LOCKED = ("user is locked", "exhausted balance", "top_up", "balance", "billing")


def request_body(cfg: ProviderConfig, prompt: str, width: int, height: int, seed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": prompt,
        "image_size": fal_image_size(width, height, cfg.model_spec.sizes),
        "num_images": 1,
        # sync_mode (a catalogue default) returns the image inline as a data URI: no second request, nothing
        # stored on fal's CDN.
        **cfg.request_options,
    }
    if seed is not None:
        body["seed"] = seed
    return body


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return ""


def classify(reply: Reply) -> ProviderError:
    payload = reply.json()
    detail = payload.get("detail") if isinstance(payload, dict) else None
    error_type = str((payload.get("error_type") if isinstance(payload, dict) else None) or "")
    error_type = error_type or reply.headers.get("x-fal-error-type", "")
    message = shorten(_detail_text(detail) or reply.text())
    label = f"{error_type}: {message}" if error_type else message
    if isinstance(detail, list) and any(
        isinstance(d, dict) and d.get("type") == "content_policy_violation" for d in detail
    ):
        return ProviderRefused(label, NAME, reply.status)
    if reply.status in (402, 403) and any(word in message.lower() for word in _LOCKED):
        return ProviderQuotaExhausted(label, NAME, reply.status)
    error = ProviderBadRequest(label, NAME, reply.status) if reply.status == 422 else None
    # `X-Fal-Retryable: true|false` (and `Retry-After`) decide over the status's default.
    return hinted(error or error_for_status(reply.status, label, NAME), reply.headers)


def read(reply: Reply) -> tuple[str, int | None]:
    """(image URL or data URI, seed used) from a 200, else the classified error."""
    if reply.status != 200:
        raise classify(reply)
    payload = reply.json()
    if not isinstance(payload, dict):
        raise ProviderBadResponse("200 whose body is not a JSON object", NAME, reply.status)
    nsfw = payload.get("has_nsfw_concepts")
    # With the safety checker on, a flagged image still comes back 200, blacked out: that is a refusal.
    if isinstance(nsfw, list) and nsfw and nsfw[0] is True:
        raise ProviderRefused("the safety checker flagged the image", NAME, reply.status)
    images = payload.get("images")
    first = images[0] if isinstance(images, list) and images else None
    url = first.get("url") if isinstance(first, dict) else None
    if not isinstance(url, str) or not url:
        raise ProviderBadResponse("200 without images[0].url", NAME, reply.status)
    seed = payload.get("seed")
    return url, seed if isinstance(seed, int) and not isinstance(seed, bool) else None


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
    """One image from fal's flux, `width`x`height` PNG; `seed` is sent and the seed fal used is reported."""
    return await without_secrets(cfg, _generate(client, cfg, prompt, width, height, seed, deadline, timing))


async def _generate(
    client: httpx.AsyncClient,
    cfg: ProviderConfig,
    prompt: str,
    width: int,
    height: int,
    seed: int | None,
    deadline: float,
    timing: Timing,
) -> ProviderImage:
    source, used_seed = await post_with_retries(
        client,
        cfg,
        f"{cfg.url}/{cfg.model.strip('/')}",
        headers={"Authorization": f"Key {cfg.api_key}"},
        body=request_body(cfg, prompt, width, height, seed),
        read=read,
        deadline=deadline,
        timing=timing,
    )
    png, native = await finish(client, cfg, source, width, height, deadline, timing)
    return ProviderImage(png, "image/png", width, height, NAME, cfg.model, native, None, used_seed)
