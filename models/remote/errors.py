"""One error vocabulary for every remote provider, the server's own retry hints, and keeping API keys out of it.

Every constructor argument goes to `Exception.__init__` positionally, in the constructor's own order, so the
errors pickle (Ray ships them between processes) and `type(e)(*e.args)` rebuilds them.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from models.scrub import REDACTED, scrub

__all__ = ["REDACTED", "scrub"]  # re-exported: the providers' code and tests import them from here

# Longer than any message worth showing to a caller; provider bodies can be huge (echoed prompts, HTML pages).
MAX_MESSAGE_CHARS = 500


class ProviderError(Exception):
    """A provider call failed. `kind` names the class of failure; `retryable` says whether trying again can help.

    `retry` is the server's own verdict when it gave one (OpenAI's `x-should-retry`, fal's `X-Fal-Retryable`);
    it overrides the class default either way. `retry_after` is its hint of when, in seconds.
    """

    kind: ClassVar[str] = "error"
    _retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        retry: bool | None = None,
    ) -> None:
        super().__init__(message, provider, status, retry_after, retry)
        self.message, self.provider, self.status = message, provider, status
        self._retry_after, self._retry = retry_after, retry

    @property
    def retryable(self) -> bool:
        return self._retryable if self._retry is None else self._retry

    @property
    def retry_after_s(self) -> float | None:
        """The provider's own idea of when to try again, if it gave one."""
        return self._retry_after

    def __str__(self) -> str:
        where = f"{self.provider} " if self.provider else ""
        code = f"HTTP {self.status} " if self.status is not None else ""
        return f"{where}{self.kind}: {code}{self.message}".strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, status={self.status!r})"


class ProviderRefused(ProviderError):
    """Content policy: the provider will not make this image. Never retried."""

    kind = "refused"


class ProviderQuotaExhausted(ProviderError):
    """Out of credit or quota: waiting seconds will not help."""

    kind = "quota"


class ProviderAuthError(ProviderError):
    """The key is missing, wrong or lacks permission."""

    kind = "auth"


class ProviderBadRequest(ProviderError):
    """The provider rejected the request itself (unknown parameter, bad size...): a bug or a config mistake."""

    kind = "bad_request"


class ProviderBadResponse(ProviderError):
    """The provider answered but the answer holds no usable image."""

    kind = "bad_response"


class ProviderTimeout(ProviderError):
    """No answer within the time this attempt had."""

    kind = "timeout"


class _Transient(ProviderError):
    """A failure that may well be gone on the next try."""

    _retryable = True


class ProviderRateLimited(_Transient):
    """429: too many requests now."""

    kind = "rate_limited"


class ProviderServerError(_Transient):
    """5xx (or 408/409, which the vendors' SDKs retry too): the provider's trouble, often gone on the next try."""

    kind = "server"


class ProviderNetworkError(_Transient):
    """The connection failed (reset, refused, DNS, TLS). Resets and refusals are worth another try; TLS is not
    (built with `retry=False`)."""

    kind = "network"


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrubbed(exc: ProviderError, secrets: Iterable[str | None]) -> ProviderError:
    """A copy of `exc` whose text holds no secret, with no traceback or cause that could hold one either."""
    secrets = tuple(secrets)
    args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
    return type(exc)(*args)


def retry_after_from_headers(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI), else `retry-after` as seconds or as an HTTP date (RFC 9110 §10.2.3).

    Parsed the way openai-python's `_parse_retry_after_header` does; a date in the past means "now" (0).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_tz(raw)
        if when is None:
            return None
        return max(0.0, float(email.utils.mktime_tz(when)) - now())
    except (TypeError, ValueError, OverflowError):
        return None


def _flag(value: str | None) -> bool | None:
    """A server's boolean header: "true"/"false" (any case), anything else means it said nothing."""
    lowered = (value or "").strip().lower()
    return True if lowered == "true" else False if lowered == "false" else None


def should_retry_from_headers(headers: Mapping[str, str]) -> bool | None:
    """The server's verdict on retrying: OpenAI's `x-should-retry` (which openai-python obeys before looking at
    the status) or fal's `X-Fal-Retryable` (set on every fal toolkit error: fal-ai/fal `toolkit/exceptions.py`)."""
    lower = {k.lower(): v for k, v in headers.items()}
    verdict = _flag(lower.get("x-should-retry"))
    return verdict if verdict is not None else _flag(lower.get("x-fal-retryable"))


def error_for_status(
    status: int,
    message: str,
    provider: str,
    *,
    retry_after: float | None = None,
    retry: bool | None = None,
) -> ProviderError:
    """The generic reading of an HTTP status; each provider first handles the codes its body makes special.

    `retry` (the server's own verdict) overrides the status's default either way.
    """
    if status in (401, 403):
        return ProviderAuthError(message, provider, status, retry_after, retry)
    if status == 429:
        return ProviderRateLimited(message, provider, status, retry_after, retry)
    if status in (408, 409) or status >= 500:
        return ProviderServerError(message, provider, status, retry_after, retry)
    if 400 <= status < 500:
        return ProviderBadRequest(message, provider, status, retry_after, retry)
    return ProviderBadResponse(message, provider, status, retry_after, retry)


def hinted(error: ProviderError, headers: Mapping[str, str]) -> ProviderError:
    """`error` with the reply's retry verdict and delay applied.

    A "retry" verdict never turns a refusal or an exhausted quota retryable: paying twice for the same refusal, or
    asking again an account with no credit, cannot succeed whatever the header says.
    """
    retry = should_retry_from_headers(headers)
    if retry and isinstance(error, ProviderRefused | ProviderQuotaExhausted):
        retry = None
    retry_after = error.retry_after_s if error.retry_after_s is not None else retry_after_from_headers(headers)
    if retry is None and retry_after == error.retry_after_s:
        return error
    return type(error)(error.message, error.provider, error.status, retry_after, retry)
