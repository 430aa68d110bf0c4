"""One error vocabulary for every remote provider, and the scrubbing that keeps API keys out of it.

Every constructor argument goes to `Exception.__init__` positionally, in the constructor's own order, so the
errors pickle (Ray ships them between processes) and `type(e)(*e.args)` rebuilds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import ClassVar

# Longer than any message worth showing to a caller; provider bodies can be huge (echoed prompts, HTML pages).
MAX_MESSAGE_CHARS = 500

# Credentials that may sit in a URL or an echoed header even when we never put them there ourselves.
_URL_SECRET = re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|sig|signature)=)[^&#\s\"']+")
_AUTH_SECRET = re.compile(r"(?i)\b(bearer|key)\s+[A-Za-z0-9._~+/=:-]{16,}")

REDACTED = "***"


class ProviderError(Exception):
    """A provider call failed. `kind` names the class of failure; `retryable` says whether trying again can help."""

    kind: ClassVar[str] = "error"
    _retryable: ClassVar[bool] = False

    def __init__(self, message: str, provider: str = "", status: int | None = None) -> None:
        super().__init__(message, provider, status)
        self.message, self.provider, self.status = message, provider, status

    @property
    def retryable(self) -> bool:
        return self._retryable

    @property
    def retry_after_s(self) -> float | None:
        """The provider's own idea of when to try again, if it gave one."""
        return None

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


class _WithRetryAfter(ProviderError):
    """A transient failure that may come with the provider's own hint of when to try again."""

    _retryable = True

    def __init__(
        self, message: str, provider: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider, status)
        # Exception.args must mirror the constructor so the error survives pickling with its hint.
        self.args = (message, provider, status, retry_after)
        self._retry_after = retry_after

    @property
    def retry_after_s(self) -> float | None:
        return self._retry_after


class ProviderRateLimited(_WithRetryAfter):
    """429: too many requests now."""

    kind = "rate_limited"


class ProviderServerError(_WithRetryAfter):
    """5xx (or 408/409, which the vendors' SDKs retry too): the provider's trouble, often gone on the next try."""

    kind = "server"


class ProviderNetworkError(ProviderError):
    """The connection failed (reset, refused, DNS, TLS). Resets and refusals are worth another try; TLS is not."""

    kind = "network"

    def __init__(self, message: str, provider: str = "", status: int | None = None, transient: bool = True) -> None:
        super().__init__(message, provider, status)
        self.args = (message, provider, status, transient)
        self.transient = transient

    @property
    def retryable(self) -> bool:
        return self.transient


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (and anything that looks like a credential in a URL or auth header) masked."""
    for secret in secrets:
        # A very short "secret" would mask ordinary words; real keys are long.
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _URL_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return _AUTH_SECRET.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrubbed(exc: ProviderError, secrets: Iterable[str | None]) -> ProviderError:
    """A copy of `exc` whose text holds no secret, with no traceback or cause that could hold one either."""
    secrets = tuple(secrets)
    args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in exc.args)
    return type(exc)(*args)


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI) or `retry-after` (seconds; an HTTP date is ignored as too rare)."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    return None


def error_for_status(
    status: int,
    message: str,
    provider: str,
    *,
    retry_after: float | None = None,
) -> ProviderError:
    """The generic reading of an HTTP status; each provider first handles the codes its body makes special."""
    if status in (401, 403):
        return ProviderAuthError(message, provider, status)
    if status == 429:
        return ProviderRateLimited(message, provider, status, retry_after)
    if status in (408, 409) or status >= 500:
        return ProviderServerError(message, provider, status, retry_after)
    if 400 <= status < 500:
        return ProviderBadRequest(message, provider, status)
    return ProviderBadResponse(message, provider, status)
