"""Sentry, on in every replica that calls `init_sentry` while `SENTRY_DSN` is set; every call here is a no-op
otherwise.

What a replica calls: `init_sentry(config, component=...)` in its `__init__`; `request_scope(...)` around a
request's work (tags request_id and key_id, and tells the scrubber the prompt to hide); `report_attempt(...)`
for each backend attempt that ended in error or timeout; `capture_failure(...)` for an unhandled error. Every
event and transaction passes through the scrubber (cascade/scrub.py) before it is sent; an event the scrubber
cannot handle is dropped (the SDK drops an event whose `before_send` raises), never sent as it was.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from cascade.errors import CascadeError
from cascade.scrub import Scrubber, secrets_from_env

if TYPE_CHECKING:
    from cascade.access_config import SentryConfig
    from cascade.types import Attempt

logger = logging.getLogger("cascade.observe")

# The integrations Cascade wants, where the installed sentry-sdk (and the framework) has them.
_INTEGRATIONS = (
    ("sentry_sdk.integrations.ray", "RayIntegration"),
    ("sentry_sdk.integrations.starlette", "StarletteIntegration"),
    ("sentry_sdk.integrations.fastapi", "FastApiIntegration"),
)

_prompt: ContextVar[str | None] = ContextVar("cascade_sentry_prompt", default=None)
_scrubber: Scrubber | None = None


def release() -> str | None:
    try:
        return f"cascade@{importlib.metadata.version('cascade')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def integrations() -> list[Any]:
    found = []
    for module, name in _INTEGRATIONS:
        try:
            found.append(getattr(importlib.import_module(module), name)())
        except Exception as exc:  # DidNotEnable, ImportError: that framework is not installed here
            logger.info("sentry: %s not enabled (%s)", name, type(exc).__name__)
    return found


def init_sentry(config: SentryConfig, *, component: str, environ: Mapping[str, str] | None = None) -> bool:
    """Start Sentry in this process if `SENTRY_DSN` is set; True if it did. Safe to call again."""
    global _scrubber
    env = os.environ if environ is None else environ
    dsn = env.get("SENTRY_DSN", "").strip()
    if not dsn or importlib.util.find_spec("sentry_sdk") is None:
        return False
    import sentry_sdk

    scrubber = Scrubber(secrets_from_env(env), send_prompts=config.send_prompts)

    def before_send(event: Any, _hint: Any) -> Any:
        return scrubber.scrub(event, prompt=_prompt.get())

    sentry_sdk.init(
        dsn=dsn,
        release=release(),
        environment=config.environment,
        sample_rate=config.sample_rate,
        traces_sample_rate=config.traces_sample_rate,
        send_default_pii=False,
        # Frame locals and request bodies carry prompts and request objects: only when prompts may be sent.
        include_local_variables=config.send_prompts,
        max_request_body_size="medium" if config.send_prompts else "never",
        before_send=before_send,
        before_send_transaction=before_send,
        integrations=integrations(),
    )
    # The global scope: a replica's requests run in contexts forked from elsewhere than its __init__.
    sentry_sdk.get_global_scope().set_tag("component", component)
    _scrubber = scrubber
    return True


def enabled() -> bool:
    return _scrubber is not None


def register_secrets(values: Iterable[str]) -> None:
    """Secrets learnt after start (e.g. read from a file): scrubbed from every later event."""
    if _scrubber is not None:
        _scrubber.add_secrets(values)


@contextmanager
def request_scope(
    *, request_id: str, key_id: str | None = None, prompt: str | None = None, backend: str | None = None
) -> Iterator[None]:
    """Tags every event inside with the request's id, key id (and backend, in a backend replica). The prompt
    is attached only when `send_prompts` is on; otherwise it is scrubbed out of any text that quotes it."""
    if _scrubber is None:
        yield
        return
    import sentry_sdk

    token = _prompt.set(prompt)
    try:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_tag("request_id", request_id)
            scope.set_tag("key_id", key_id or "anonymous")
            if backend:
                scope.set_tag("backend", backend)
            if prompt is not None and _scrubber.send_prompts:
                scope.set_context("generation", {"prompt": prompt})
            try:
                yield
            except Exception as exc:
                # Cascade's own errors are answers (4xx, or 503 with every attempt reported on its own);
                # anything else is a bug, reported here with the request's tags. The web framework's
                # integration sees the same exception object again and its duplicate is dropped.
                if not isinstance(exc, CascadeError):
                    scope.set_tag("outcome", "error")
                    sentry_sdk.capture_exception(exc)
                raise
    finally:
        _prompt.reset(token)


def report_attempt(attempt: Attempt, *, request_id: str, key_id: str | None = None) -> None:
    """One event per backend attempt that ended in error or timeout, grouped by backend and outcome."""
    if _scrubber is None or attempt.outcome not in ("error", "timeout"):
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("request_id", request_id)
        scope.set_tag("key_id", key_id or "anonymous")
        scope.set_tag("backend", attempt.backend)
        scope.set_tag("outcome", attempt.outcome)
        scope.set_extra("elapsed_ms", attempt.elapsed_ms)
        scope.fingerprint = ["backend-attempt", attempt.backend, attempt.outcome]
        level = "warning" if attempt.outcome == "timeout" else "error"
        sentry_sdk.capture_message(f"{attempt.backend} {attempt.outcome}: {attempt.error or ''}".strip(), level=level)


def capture_failure(
    exc: BaseException, *, request_id: str, key_id: str | None = None, backend: str | None = None
) -> None:
    """An error nobody handled, with the request's tags (outcome `error`)."""
    if _scrubber is None:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("request_id", request_id)
        scope.set_tag("key_id", key_id or "anonymous")
        scope.set_tag("outcome", "error")
        if backend:
            scope.set_tag("backend", backend)
        sentry_sdk.capture_exception(exc)
