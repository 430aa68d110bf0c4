"""Small frozen values that travel between the gateway and the backend deployments (they pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# declined: the backend said at once that it cannot finish before the deadline (cascade.errors.Declined).
Outcome = Literal["skipped", "busy", "declined", "timeout", "error", "ok"]


@dataclass(frozen=True)
class Attempt:
    """One step of the fallback chain as the caller sees it."""

    backend: str
    outcome: Outcome
    error: str | None
    elapsed_ms: float


@dataclass(frozen=True)
class ImageJob:
    """What a backend is asked to make. `width`/`height` are exact: the result must match them."""

    prompt: str
    width: int
    height: int
    seed: int
    # Backend-specific extras (negative_prompt, steps, guidance, ...); backends ignore what they do not know.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Wall-clock (time.time()) instant after which nobody waits for the answer: long jobs stop early.
    deadline: float | None = None
    request_id: str = ""


@dataclass(frozen=True)
class ImageResult:
    """An image of exactly the job's size. `provider` names who made it (e.g. "pillow", "fal:fal-ai/flux/schnell")."""

    data: bytes
    mime: str
    width: int
    height: int
    seed: int | None
    provider: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    # A backend that tries several things inside itself (the remote providers) reports each try here;
    # they stand in for the backend's own entry in the response's attempt list.
    attempts: tuple[Attempt, ...] = ()
