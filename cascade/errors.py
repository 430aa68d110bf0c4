"""The few exception types that cross deployment boundaries, and their HTTP status, in one place.

Every constructor argument goes to `Exception.__init__` positionally so the types survive pickling
(Ray re-raises them in the caller wrapped as `RayTaskError(<type>)`, which still matches `except <type>`).
"""

from __future__ import annotations

from collections.abc import Mapping

from cascade.types import Attempt


class CascadeError(Exception):
    status = 500


class RequestRejected(CascadeError):
    """The client's request is unusable; `field` names what is wrong."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(field, message, status)
        self.field, self.message, self.status = field, message, status

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class NotFound(CascadeError):
    status = 404


class Unauthorized(CascadeError):
    """No usable API key. The message says what is wrong with the credentials, never what they were."""

    status = 401
    headers: Mapping[str, str] = {"www-authenticate": 'Bearer realm="cascade"'}

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Forbidden(CascadeError):
    """A valid key asked for something it may not use (a backend outside its list)."""

    status = 403

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field, self.message = field, message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RateLimited(CascadeError):
    """A limit said no. `headers` carry Retry-After and x-ratelimit-*; `status` is 429, or 503 when the
    limit's shared store is down and the limit fails closed (the caller did nothing wrong)."""

    def __init__(self, limit: str, message: str, headers: Mapping[str, str], status: int = 429) -> None:
        super().__init__(limit, message, dict(headers), status)
        self.limit, self.message, self.headers, self.status = limit, message, dict(headers), status

    def __str__(self) -> str:
        return self.message


class Conflict(CascadeError):
    """The request does not fit the resource's state (cancelling a job that already ended)."""

    status = 409


class Unavailable(CascadeError):
    """The service cannot take this now (no job board, too many jobs); the caller may retry later."""

    status = 503


class StorageUnavailable(Unavailable):
    """The object store or the index failed or did not answer in time."""


class BackendBusy(CascadeError):
    """The backend has no room now (its queue is full); the chain moves on at once."""

    status = 503


class Declined(CascadeError):
    """The backend will not start this job: by its own measured speed it cannot finish before the deadline.

    Answered at once so the chain moves on instead of waiting out a timeout. Neither the backend's fault nor the
    request's: the circuit breaker does not count it, and the attempt's outcome is "declined".
    """

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BackendFailed(CascadeError):
    """The backend tried and failed. `attempts` carries its inner tries (e.g. each remote provider)."""

    status = 502

    def __init__(self, message: str, attempts: tuple[Attempt, ...] = ()) -> None:
        super().__init__(message, attempts)
        self.message, self.attempts = message, attempts

    def __str__(self) -> str:
        return self.message


class JobRejected(BackendFailed):
    """The backend cannot do what this request asks (an option this model lacks). The request's fault, not the
    backend's: it does not count towards the backend's circuit breaker, and the next backend may still serve."""

    status = 422


class Refused(JobRejected):
    """A provider refused the prompt (content policy). Ends the chain: another backend would only launder it."""


class AllBackendsFailed(CascadeError):
    status = 503

    def __init__(self, attempts: tuple[Attempt, ...]) -> None:
        super().__init__(attempts)
        self.attempts = attempts

    def __str__(self) -> str:
        return "every backend failed: " + "; ".join(f"{a.backend} {a.outcome}" for a in self.attempts)


def http_status(exc: BaseException) -> int:
    return exc.status if isinstance(exc, CascadeError) else 500


def http_headers(exc: BaseException) -> dict[str, str]:
    """Headers the error's response must carry (WWW-Authenticate on a 401, Retry-After on a 429)."""
    return dict(getattr(exc, "headers", None) or {}) if isinstance(exc, CascadeError) else {}
