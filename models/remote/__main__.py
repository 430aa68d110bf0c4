"""The remote providers as a seed-protocol script: one JSON request on stdin, one JSON answer on stdout.

    echo '{"prompt": "a red fox", "size": "800x600", "providers": ["fal", "openai"]}' | python -m models.remote

stdin:  {"prompt": str, "size"?: "WxH" (1024x1024), "seed"?: int, "providers"?: names in the order to try them
         (default openai, gemini, fal), "timeout_s"?: seconds for the whole chain (default: every provider's try
         in turn, from models/remote/catalogue.yaml)}
stdout: {"dataUri": "data:image/png;base64,...", "provider": "openai:gpt-image-2.6-flare", "width": W, "height": H,
         "seed": int | null, "attempts": [{"backend", "outcome", "error", "elapsed_ms"}, ...]}

Keys come from the environment (OPENAI_API_KEY, GOOGLE_API_KEY or GEMINI_API_KEY, FAL_KEY or FAL_API_KEY) and a
provider without one is skipped with the reason in `attempts`; `<PROVIDER>_BASE_URL` points one at a proxy or a test
server. A refusal, or no provider succeeding, answers `{"error": ..., "attempts": [...]}` with exit status 1; a bad
request answers `{"error": ...}` with exit status 2. Keys are never printed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from cascade.errors import BackendFailed
from cascade.types import Attempt, ImageResult
from models.datauri import encode_data_uri
from models.protocol import BadRequest, GenerationFailed, number, optional_int, parse_size, required_str, run
from models.remote.catalogue import remote_timeout_s
from models.remote.chain import generate_chain, new_client
from models.remote.config import PROVIDERS, ProviderConfig, configs_from_env
from models.remote.errors import scrub

DEFAULT_SIZE = "1024x1024"
MAX_SIDE = 4096
MAX_SEED = 2**63 - 1


def _providers(request: Mapping[str, Any]) -> list[str]:
    value = request.get("providers")
    if value is None:
        return list(PROVIDERS)
    known = ", ".join(PROVIDERS)
    if not isinstance(value, list) or not value:
        raise BadRequest(f"providers must be a non-empty list of: {known}")
    order: list[str] = []
    for name in value:
        if not isinstance(name, str) or name not in PROVIDERS:
            raise BadRequest(f"unknown provider {name!r} in providers; known: {known}")
        if name in order:
            # A second try of the same provider would only spend the deadline on the same answer.
            raise BadRequest(f"provider {name!r} is listed twice in providers")
        order.append(name)
    return order


def _attempts(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(attempt) for attempt in attempts]


async def _generate(
    configs: Sequence[ProviderConfig], prompt: str, width: int, height: int, seed: int | None, timeout_s: float
) -> ImageResult:
    # The chain's clock is wall time (time.time), so the deadline is too.
    deadline = time.time() + timeout_s
    async with new_client() as client:
        return await generate_chain(client, configs, prompt, width, height, seed, deadline)


def handle(request: dict[str, Any], env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Run the provider chain for one request; GenerationFailed (with the attempts) when it gives no image."""
    prompt = required_str(request, "prompt")
    width, height = parse_size(request.get("size") or DEFAULT_SIZE, 1, MAX_SIDE)
    seed = optional_int(request, "seed", min_value=0, max_value=MAX_SEED)
    order = _providers(request)
    configs = configs_from_env(env, order)
    timeout_s = number(request, "timeout_s", remote_timeout_s(cfg.attempt_timeout_s or 0.0 for cfg in configs))
    if timeout_s <= 0:
        raise BadRequest(f"timeout_s must be positive, got {timeout_s:g}")
    secrets = [cfg.api_key for cfg in configs]
    try:
        result = asyncio.run(_generate(configs, prompt, width, height, seed, timeout_s))
    except BackendFailed as exc:  # Refused included; the chain has already scrubbed keys from both
        raise GenerationFailed(exc.message, {"attempts": _attempts(exc.attempts)}) from None
    except Exception as exc:
        # Not a provider failure (the chain answers those) but a bug around it; its text may still quote a URL.
        raise GenerationFailed(scrub(f"{type(exc).__name__}: {exc}", secrets)) from None
    return {
        "dataUri": encode_data_uri(result.mime, result.data),
        "provider": result.provider,
        "width": result.width,
        "height": result.height,
        "seed": result.seed,
        "attempts": _attempts(result.attempts),
    }


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    return run(handle, stdin, stdout)


if __name__ == "__main__":
    raise SystemExit(main())
