"""The ordered fallback: try each step in turn, record what happened, stop at the first image.

Plain asyncio, no Ray: the gateway adapts its deployment handles into `Step`s, tests use coroutines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cascade.errors import BackendBusy, BackendFailed, Declined, JobRejected, Refused
from cascade.types import Attempt, ImageResult, Outcome


class Call(Protocol):
    """A started downstream call: awaitable once, cancellable (a DeploymentResponse or an asyncio.Task)."""

    def __await__(self) -> Generator[Any, None, ImageResult]: ...

    def cancel(self) -> object: ...


class Skipped(Exception):
    """Raised by a step's call before it reached its backend (a limit said no): the attempt is reported as skipped,
    with this message as the reason, and the chain moves on."""


@dataclass(frozen=True)
class Step:
    name: str
    timeout_s: float
    start: Callable[[], Call]
    # Asked when the chain reaches this step, not before: a half-open circuit must only grant its probe to
    # a request that will really make the call.
    skip_reason: Callable[[], str | None] = lambda: None
    # Answers at once, in-process (the SVG): worth running even when the request's time is up.
    instant: bool = False


@dataclass(frozen=True)
class ChainResult:
    result: ImageResult | None
    attempts: tuple[Attempt, ...]
    backend: str | None = None  # the step that served
    refused: Refused | None = None
    # What each called backend did, as its circuit breaker should count it: a request's own fault is left out.
    health: dict[str, Outcome] = field(default_factory=dict)


class ChainWatcher(Protocol):
    """Told about each attempt as it happens (a job's live progress); must not block."""

    def started(self, backend: str) -> None: ...

    def ended(self, attempt: Attempt) -> None: ...


async def run_chain(
    steps: Sequence[Step],
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    watcher: ChainWatcher | None = None,
) -> ChainResult:
    """`deadline` is on `clock`'s scale. Each step gets min(its timeout, time left)."""
    attempts: list[Attempt] = []
    health: dict[str, Outcome] = {}
    for step in steps:
        started = clock()
        left = deadline - started
        # The deadline first: a skip reason may reserve a half-open circuit's probe, which must not be wasted.
        reason = "request deadline passed" if left <= 0 and not step.instant else step.skip_reason()
        if reason is not None:
            attempts.append(Attempt(step.name, "skipped", reason, (clock() - started) * 1000))
            if watcher is not None:
                watcher.ended(attempts[-1])
            continue
        if watcher is not None:
            watcher.started(step.name)
        result, outcome, error = await _try(step.start, step.timeout_s if step.instant else min(step.timeout_s, left))
        elapsed_ms = (clock() - started) * 1000
        if not isinstance(error, JobRejected):
            health[step.name] = outcome
        reported = _report(step.name, result, outcome, error, elapsed_ms)
        attempts.extend(reported)
        if watcher is not None:
            for attempt in reported:
                watcher.ended(attempt)
        if isinstance(error, Refused):
            return ChainResult(None, tuple(attempts), refused=error, health=health)
        if result is not None:
            return ChainResult(result, tuple(attempts), step.name, health=health)
    return ChainResult(None, tuple(attempts), health=health)


def _report(
    name: str, result: ImageResult | None, outcome: Outcome, error: Exception | None, elapsed_ms: float
) -> list[Attempt]:
    """A backend that tried several things inside (remote providers) reports them instead of itself."""
    inner = result.attempts if result is not None else error.attempts if isinstance(error, BackendFailed) else ()
    return list(inner) or [Attempt(name, outcome, None if error is None else _short(error), elapsed_ms)]


async def _try(start: Callable[[], Call], timeout_s: float) -> tuple[ImageResult | None, Outcome, Exception | None]:
    try:
        call = start()
    except BackendBusy as exc:  # a handle may refuse at submit time when its queue is full
        return None, "busy", exc
    except Skipped as exc:
        return None, "skipped", exc
    except Exception as exc:
        return None, "error", exc
    waiter = asyncio.ensure_future(_await(call))
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout_s)
    except asyncio.CancelledError:  # our own caller gave up: the backend must not go on for nobody
        _abandon(call, waiter)
        raise
    if not done:
        # Not answering in time is not the same as being told to stop: the replica keeps working until cancelled.
        _abandon(call, waiter)
        return None, "timeout", TimeoutError(f"no answer in {timeout_s:.1f} s")
    exc = waiter.exception()
    if exc is None:
        return waiter.result(), "ok", None
    if isinstance(exc, BackendBusy):
        return None, "busy", exc
    if isinstance(exc, Declined):
        return None, "declined", exc
    if isinstance(exc, Skipped):
        return None, "skipped", exc
    return None, "error", exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _abandon(call: Call, waiter: asyncio.Future[ImageResult]) -> None:
    call.cancel()
    waiter.cancel()
    # A cancelled call may still end with an error of its own (Serve's RequestCancelledError): nobody wants it.
    waiter.add_done_callback(lambda w: w.cancelled() or w.exception())


async def _await(call: Call) -> ImageResult:
    return await call  # type: ignore[misc]


def _short(exc: BaseException, limit: int = 300) -> str:
    own = isinstance(exc, BackendFailed | BackendBusy | Declined | Skipped | TimeoutError)
    text = (str(exc) if own else f"{type(exc).__name__}: {exc}").strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
