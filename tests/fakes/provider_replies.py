"""Canned replies of the fake providers (tests/fakes/providers.py), each in the vendor's documented wire format.

A `Step` says what the fake does with one request; the builders below make the replies each vendor sends for a
fault, with the source of the format beside each.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "gemini", "fal"]


@dataclass(frozen=True)
class Step:
    """What the fake does with one request: answer normally, send a canned reply, reset the socket, or hang."""

    action: Literal["ok", "reply", "reset", "hang"]
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


OK = Step("ok")
RESET = Step("reset")
HANG = Step("hang")


def reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Step:
    return Step("reply", status, body, dict(headers or {}))


def openai_error(code: str | None, type_: str, message: str = "error", param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def gemini_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def gemini_retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


FAL_REFUSAL_DETAIL = "The content could not be processed because it contained material flagged by a content checker."


def fal_refusal(prompt: str = "") -> Step:
    detail = {
        "loc": ["body", "prompt"],
        "msg": FAL_REFUSAL_DETAIL,
        "type": "content_policy_violation",
        "url": "https://docs.fal.ai/errors#content_policy_violation",
        "ctx": {},
        "input": prompt,
    }
    return reply(422, {"detail": [detail]})


def fal_infra_error(status: int, error_type: str, detail: str) -> Step:
    return reply(status, {"detail": detail, "error_type": error_type}, {"X-Fal-Error-Type": error_type})


# Canned faults for the common cases, per provider.
def refusal(provider: Provider) -> Step:
    if provider == "openai":
        return reply(
            400,
            openai_error(
                "moderation_blocked", "image_generation_user_error", "Your request was rejected by the safety system."
            ),
        )
    if provider == "gemini":
        return reply(200, {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}], "modelVersion": "x"})
    return fal_refusal()


def no_image(provider: Provider) -> Step:
    if provider == "openai":
        return reply(200, {"created": int(time.time()), "data": []})
    if provider == "gemini":
        candidate = {"content": {"role": "model", "parts": []}, "finishReason": "OTHER", "index": 0}
        return reply(200, {"candidates": [candidate]})
    return reply(200, {"images": [], "seed": 1, "has_nsfw_concepts": [], "timings": {}, "prompt": ""})


def rate_limited(provider: Provider, retry_after: str | None = None) -> Step:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    if provider == "openai":
        body = openai_error("rate_limit_exceeded", "requests", "Rate limit reached for images per minute.")
        return reply(429, body, headers)
    if provider == "gemini":
        details = [gemini_retry_info(f"{retry_after}s")] if retry_after is not None else []
        return reply(429, gemini_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", details))
    return reply(429, {"detail": "Rate limit exceeded"}, headers)


def server_error(provider: Provider, status: int = 500) -> Step:
    if provider == "openai":
        return reply(status, openai_error(None, "server_error", "The server had an error processing your request."))
    if provider == "gemini":
        return reply(status, gemini_error(status, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    return fal_infra_error(status, "runner_scheduling_failure", "No runner available")


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (RFC 9110 IMF-fixdate), as servers put in `Retry-After`."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def openai_with_verdict(status: int, should_retry: bool, code: str | None = None) -> Step:
    """An OpenAI error carrying `x-should-retry`, the header openai-python obeys before the status
    (`_base_client.py: _should_retry`)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = openai_error(code, kind, "The server had an error while processing your request.")
    return reply(status, body, {"x-should-retry": "true" if should_retry else "false"})


def gemini_quota_failure(quota_id: str, quota_value: str | None = None) -> dict[str, Any]:
    """A `google.rpc.QuotaFailure` detail as the Gemini API sends it on a 429 (violation fields: quotaMetric,
    quotaId, quotaDimensions, quotaValue; google/rpc/error_details.proto, and the replies quoted in
    google-gemini/gemini-cli#8437)."""
    violation: dict[str, Any] = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": "gemini-nano-banana-2.1"},
    }
    if quota_value is not None:
        violation["quotaValue"] = quota_value
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}


GEMINI_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


def gemini_daily_quota(zero_limit: bool = False) -> Step:
    """429 RESOURCE_EXHAUSTED that no wait fixes: a per-day quota spent, or (`zero_limit`) a free tier with no
    allowance for the model at all ("limit: 0" in the message, quotaValue "0"; continuedev/continue#12744). Both
    still carry a RetryInfo, which only applies to per-minute limits."""
    if zero_limit:
        details = [gemini_quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "0")]
        message = (
            GEMINI_QUOTA_MESSAGE + " \n* Quota exceeded for metric: generativelanguage.googleapis.com/"
            "generate_content_free_tier_requests, limit: 0, model: gemini-nano-banana-2.1\nPlease retry in 5.2s."
        )
    else:
        details = [gemini_quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier")]
        message = GEMINI_QUOTA_MESSAGE
    details.append(gemini_retry_info("5s"))
    return reply(429, gemini_error(429, "RESOURCE_EXHAUSTED", message, details))


def gemini_no_image() -> Step:
    """200 whose candidate drew nothing: finishReason NO_IMAGE, "the model was expected to generate an image, but
    none was generated" (google-genai `types.FinishReason`), with no policy block."""
    candidate = {
        "content": {"role": "model", "parts": [{"text": "I couldn't render that.", "thoughtSignature": "c2lnbg=="}]},
        "finishReason": "NO_IMAGE",
        "index": 0,
    }
    return reply(200, {"candidates": [candidate], "modelVersion": "gemini-nano-banana-2.1"})


def fal_locked(reason: str = "Exhausted balance. Top up your balance at fal.ai/dashboard/billing.") -> Step:
    """fal's 403 for a locked account (bodies quoted in fal-ai/fal issues #1147, #1163, #1168)."""
    return reply(403, {"detail": f"User is locked. Reason: {reason}"})


def fal_toolkit_error(status: int, error_type: str, retryable: bool) -> Step:
    """An error from a fal app, as fal's toolkit raises it: `detail` list, `X-Fal-Retryable` always set
    (fal-ai/fal projects/fal/src/fal/toolkit/exceptions.py, ToolkitHTTPException)."""
    detail = [{"loc": ["body"], "msg": error_type.replace("_", " "), "type": error_type, "input": None, "ctx": None}]
    return reply(status, {"detail": detail}, {"x-fal-retryable": "true" if retryable else "false"})
