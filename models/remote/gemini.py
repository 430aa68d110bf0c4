"""Gemini native image generation: `POST {base}/models/{model}:generateContent`, image as `inlineData` base64."""

from __future__ import annotations

import re
from typing import Any

import httpx

from models.remote.common import REAL_TIME, ProviderImage, Timing, b64_image, finish, post_with_retries, without_secrets
from models.remote.config import ProviderConfig
from models.remote.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRefused,
    error_for_status,
    hinted,
    shorten,
)
from models.remote.sizes import gemini_image_size, nearest_aspect_ratio
from models.remote.transport import Reply

NAME = "gemini"
# Finish reasons that mean "will not draw this": the prompt or the picture tripped a policy
# (google-genai `types.FinishReason`).
REFUSAL_FINISH = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
# "The model was expected to generate an image, but none was generated" (NO_IMAGE), or stopped "for a reason not
# otherwise specified" (IMAGE_OTHER): no policy said no, so the next provider may well draw it.
NO_IMAGE_FINISH = frozenset({"NO_IMAGE", "IMAGE_OTHER"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
# A free tier with no allowance for this model says so in words: "... limit: 0, model: ...".
_ZERO_LIMIT = re.compile(r"\blimit:\s*0\b")


def request_body(cfg: ProviderConfig, prompt: str, width: int, height: int) -> dict[str, Any]:
    sizes = cfg.model_spec.sizes
    options = cfg.request_options
    image_config: dict[str, Any] = {"aspectRatio": nearest_aspect_ratio(width, height, sizes.aspect_ratios)}
    image_size = options.get("image_size") or gemini_image_size(width, height, sizes.image_sizes)
    if image_size:
        image_config["imageSize"] = image_size
    return {
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {
            "responseModalities": list(options.get("response_modalities", ["IMAGE"])),
            "imageConfig": image_config,
        },
    }


def _details(error: dict[str, Any]) -> list[dict[str, Any]]:
    details = error.get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _of_type(error: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [d for d in _details(error) if str(d.get("@type", "")).endswith(f"google.rpc.{name}")]


def retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "23s"`), if any."""
    for detail in _of_type(error, "RetryInfo"):
        match = _DURATION.match(str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


def daily_quota_exhausted(error: dict[str, Any]) -> bool:
    """A 429 no wait within the request can fix: a per-day quota (a `QuotaFailure` violation whose quotaId names
    a day, as gemini-cli's `classifyGoogleError` reads it) or a quota of zero (the free tier's `limit: 0`:
    `quotaValue` "0" in the violation, google/rpc/error_details.proto, or the same in the message)."""
    for detail in _of_type(error, "QuotaFailure"):
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else []:
            if not isinstance(violation, dict):
                continue
            quota_id = str(violation.get("quotaId") or "")
            if "PerDay" in quota_id or "Daily" in quota_id:
                return True
            if str(violation.get("quotaValue", "")).strip() == "0":
                return True
    return bool(_ZERO_LIMIT.search(str(error.get("message") or "")))


def classify(reply: Reply) -> ProviderError:
    payload = reply.json()
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    status_name = str(error.get("status") or "")
    message = shorten(str(error.get("message") or reply.text()))
    label = f"{status_name}: {message}" if status_name else message
    # A wrong key is a 400 INVALID_ARGUMENT carrying ErrorInfo reason API_KEY_INVALID, not a 401.
    if any(d.get("reason") == "API_KEY_INVALID" for d in _details(error)):
        return ProviderAuthError(label, NAME, reply.status)
    if reply.status == 429 and daily_quota_exhausted(error):
        return ProviderQuotaExhausted(label, NAME, reply.status)
    return hinted(error_for_status(reply.status, label, NAME, retry_after=retry_delay(error)), reply.headers)


def _image(part: dict[str, Any]) -> dict[str, Any] | None:
    # The REST API speaks camelCase; snake_case shows up behind some proxies that re-serialise protos.
    inline = part.get("inlineData") or part.get("inline_data")
    if isinstance(inline, dict) and str(inline.get("mimeType") or inline.get("mime_type") or "").startswith("image/"):
        return inline
    return None


def read(reply: Reply) -> bytes:
    if reply.status != 200:
        raise classify(reply)
    payload = reply.json()
    if not isinstance(payload, dict):
        raise ProviderBadResponse("200 whose body is not a JSON object", NAME, reply.status)
    feedback = payload.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise ProviderRefused(f"prompt blocked: {feedback['blockReason']}", NAME, reply.status)
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise ProviderBadResponse("200 without candidates", NAME, reply.status)
    candidate = candidates[0]
    finish_reason = str(candidate.get("finishReason") or "")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    parts = [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []
    # Gemini 3 image models think in pictures: interim drafts come first as parts marked `"thought": true`
    # (google-genai `types.Part.thought`); the answer is the last image that is not a thought.
    finals = [image for part in parts if part.get("thought") is not True and (image := _image(part)) is not None]
    if finals:
        return b64_image(finals[-1].get("data"), NAME)
    if finish_reason in REFUSAL_FINISH:
        raise ProviderRefused(f"no image: finishReason {finish_reason}", NAME, reply.status)
    drafts = sum(1 for part in parts if part.get("thought") is True and _image(part) is not None)
    if finish_reason in NO_IMAGE_FINISH or drafts:
        what = f"{drafts} interim (thought) image(s) but no final one" if drafts else "no image"
        raise ProviderBadResponse(f"{what} (finishReason {finish_reason or 'none'})", NAME, reply.status)
    said = " ".join(str(p["text"]) for p in parts if isinstance(p.get("text"), str) and p.get("thought") is not True)
    if said.strip() and finish_reason in ("", "STOP"):
        # The model answered in words instead of drawing: in practice it is declining the prompt.
        raise ProviderRefused(f"no image, the model replied: {shorten(said, 200)}", NAME, reply.status)
    raise ProviderBadResponse(f"200 without an image part (finishReason {finish_reason or 'none'})", NAME, reply.status)


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
    """One image from Gemini, `width`x`height` PNG. The request carries no seed: `seed` is ignored."""
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
    model = cfg.model.removeprefix("models/")
    data = await post_with_retries(
        client,
        cfg,
        f"{cfg.url}/models/{model}:generateContent",
        headers={"x-goog-api-key": cfg.api_key or ""},
        body=request_body(cfg, prompt, width, height),
        read=read,
        deadline=deadline,
        timing=timing,
    )
    png, native = await finish(client, cfg, data, width, height, deadline, timing)
    return ProviderImage(png, "image/png", width, height, NAME, cfg.model, native, None, None)
