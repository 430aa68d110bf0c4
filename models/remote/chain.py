"""Try remote providers in order within one deadline; report every try as a `cascade.types.Attempt`."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Mapping, Sequence
from typing import Literal, Protocol

import httpx

from cascade.errors import BackendFailed, Refused
from cascade.types import Attempt, ImageResult, Outcome
from models.remote import fal, gemini, openai
from models.remote.common import REAL_TIME, ProviderImage, Timing
from models.remote.config import ProviderConfig, configs_from_env, keys_from_env, missing_key_reason
from models.remote.errors import ProviderError, ProviderRefused, ProviderTimeout, scrub, shorten

__all__ = ["CLIENTS", "OnRefusal", "configs_from_env", "generate_chain", "keys_from_env", "new_client"]

log = logging.getLogger(__name__)

OnRefusal = Literal["stop", "continue"]

# Past its own deadline a client has already given up; this only catches one that does not (a bug).
HARD_STOP_GRACE_S = 1.0
ATTEMPT_ERROR_CHARS = 300


class GenerateFn(Protocol):
    def __call__(
        self,
        client: httpx.AsyncClient,
        cfg: ProviderConfig,
        prompt: str,
        width: int,
        height: int,
        seed: int | None,
        deadline: float,
        *,
        timing: Timing = ...,
    ) -> Awaitable[ProviderImage]: ...


CLIENTS: Mapping[str, GenerateFn] = {"openai": openai.generate, "gemini": gemini.generate, "fal": fal.generate}


def new_client(max_connections: int = 64) -> httpx.AsyncClient:
    """A pooled client for a replica's lifetime. No default headers: each provider sends its own key, and image
    fetches (CDN URLs) send none. Redirects are off: the fetcher follows them itself after checking each hop."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        follow_redirects=False,
    )


def _describe(exc: ProviderError) -> str:
    code = f"HTTP {exc.status} " if exc.status is not None else ""
    return f"{exc.kind}: {code}{exc.message}"


async def generate_chain(
    client: httpx.AsyncClient,
    providers: Sequence[ProviderConfig],
    prompt: str,
    width: int,
    height: int,
    seed: int | None,
    deadline: float,
    *,
    on_refusal: OnRefusal = "stop",
    timing: Timing = REAL_TIME,
) -> ImageResult:
    """The first provider's image, as an `ImageResult` whose `attempts` lists every try.

    Raises `cascade.errors.Refused` (with the attempts) when a provider refuses the prompt and `on_refusal` is
    "stop", or when every provider that ran refused; `BackendFailed` (with the attempts) when none succeeded.
    """
    secrets = tuple(cfg.api_key for cfg in providers if cfg.api_key)
    attempts: list[Attempt] = []
    refusals: list[str] = []
    failures = 0

    def record(cfg: ProviderConfig, outcome: Outcome, error: str | None, started: float) -> None:
        text = shorten(scrub(error, secrets), ATTEMPT_ERROR_CHARS) if error is not None else None
        elapsed_ms = round(max(0.0, timing.clock() - started) * 1000.0, 1)
        attempts.append(Attempt(f"remote:{cfg.name}", outcome, text, elapsed_ms))

    for cfg in providers:
        started = timing.clock()
        if not cfg.api_key:
            record(cfg, "skipped", missing_key_reason(cfg.name), started)
            continue
        if cfg.name not in CLIENTS:
            record(cfg, "skipped", f"no client for provider {cfg.name!r}", started)
            continue
        left = deadline - started
        if left <= 0:
            record(cfg, "skipped", "no time left before the deadline", started)
            continue
        budget = min(left, cfg.attempt_timeout_s)
        try:
            image = await asyncio.wait_for(
                CLIENTS[cfg.name](client, cfg, prompt, width, height, seed, started + budget, timing=timing),
                budget + HARD_STOP_GRACE_S,
            )
        except asyncio.TimeoutError:
            failures += 1
            record(cfg, "timeout", f"no answer in {budget:.1f} s", started)
            continue
        except ProviderTimeout as exc:
            failures += 1
            record(cfg, "timeout", _describe(exc), started)
            continue
        except ProviderRefused as exc:
            record(cfg, "error", _describe(exc), started)
            refusals.append(f"{cfg.served_by}: {exc.message}")
            if on_refusal == "stop":
                raise Refused(scrub(f"refused by {refusals[-1]}", secrets), tuple(attempts)) from None
            continue
        except ProviderError as exc:
            failures += 1
            record(cfg, "error", _describe(exc), started)
            continue
        except Exception as exc:
            # A bug in a client, not a provider failure: keep the chain going, keep the key out of the log.
            failures += 1
            text = f"internal error: {type(exc).__name__}: {exc}"
            record(cfg, "error", text, started)
            log.error("remote provider %s: %s", cfg.name, scrub("".join(traceback.format_exception(exc)), secrets))
            continue
        record(cfg, "ok", None, started)
        return ImageResult(
            data=image.data,
            mime=image.mime,
            width=image.width,
            height=image.height,
            seed=image.seed,
            provider=image.served_by,
            meta={
                "model": image.model,
                "native_width": image.native_size[0],
                "native_height": image.native_size[1],
                "revised_prompt": image.revised_prompt,
            },
            attempts=tuple(attempts),
        )

    if refusals and failures == 0:
        raise Refused(scrub("refused by " + "; ".join(refusals), secrets), tuple(attempts))
    if not any(a.outcome != "skipped" for a in attempts):
        raise BackendFailed("no remote provider could be tried", tuple(attempts))
    raise BackendFailed("every remote provider failed", tuple(attempts))
