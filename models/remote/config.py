"""How to reach each provider: defaults, keys from the environment, and the config every client takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.remote.retry import RetryPolicy

PROVIDERS: tuple[str, ...] = ("openai", "gemini", "fal")

DEFAULT_BASE_URLS: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "fal": "https://fal.run",
}
DEFAULT_MODELS: Mapping[str, str] = {
    "openai": "gpt-image-1",
    "gemini": "gemini-2.5-flash-image",
    "fal": "fal-ai/flux/schnell",
}
# Earlier names win. Google's SDK prefers GOOGLE_API_KEY when both are set; we do the same so that one machine
# never sends different keys from different clients. FAL_API_KEY is an alias some tools use.
KEY_ENV: Mapping[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "fal": ("FAL_KEY", "FAL_API_KEY"),
}
# Same convention as the OpenAI SDK's OPENAI_BASE_URL: point a provider at a proxy or a test server.
BASE_URL_ENV: Mapping[str, str] = {"openai": "OPENAI_BASE_URL", "gemini": "GEMINI_BASE_URL", "fal": "FAL_BASE_URL"}

MiB = 1024 * 1024


@dataclass(frozen=True)
class ProviderConfig:
    """One provider to try. `api_key` None means "not configured": the chain skips it and says why."""

    name: str
    base_url: str
    model: str
    # Never in a repr, and never compared: configs that differ only by key are the same provider.
    api_key: str | None = field(default=None, repr=False, compare=False)
    # Bound on one HTTP exchange; each is further cut to the time left before the attempt's deadline.
    timeout_s: float = 60.0
    # Bound on the whole try of this provider (retries and fetching a URL result included).
    attempt_timeout_s: float = 40.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # A 4K PNG is ~25 MB, ~33 MB as base64 inside JSON.
    max_response_bytes: int = 64 * MiB
    max_image_bytes: int = 48 * MiB
    # Hosts (or host:port) whose image URLs may be plain http: test servers and local proxies only.
    allow_http_hosts: tuple[str, ...] = ()
    # Provider-specific request fields (quality, sync_mode, response_format, image_size, ...).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in PROVIDERS:
            raise ValueError(f"unknown provider {self.name!r}; known: {', '.join(PROVIDERS)}")
        if self.timeout_s <= 0 or self.attempt_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def served_by(self) -> str:
        return f"{self.name}:{self.model}"

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/")


def missing_key_reason(name: str) -> str:
    return f"no {' or '.join(KEY_ENV[name])} set"


def keys_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Provider name -> API key, for the providers whose key is set (blank values count as unset)."""
    keys: dict[str, str] = {}
    for name, variables in KEY_ENV.items():
        for var in variables:
            value = (environ.get(var) or "").strip()
            if value:
                keys[name] = value
                break
    return keys


def provider_config(name: str, **overrides: Any) -> ProviderConfig:
    """A config with the provider's default base URL and model, and any field overridden."""
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
    fields: dict[str, Any] = {"base_url": DEFAULT_BASE_URLS[name], "model": DEFAULT_MODELS[name]}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ProviderConfig(name=name, **fields)


def configs_from_env(
    environ: Mapping[str, str],
    order: Sequence[str] = PROVIDERS,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ProviderConfig]:
    """Configs in `order`, each with its key from `environ` (None when unset, so the chain reports the skip).

    `overrides[name]` sets fields (model, timeout_s, options...); a base URL comes from it, else from
    `<PROVIDER>_BASE_URL`, else the vendor's default.
    """
    keys = keys_from_env(environ)
    configs = []
    for name in order:
        extra = dict((overrides or {}).get(name, {}))
        env_url = (environ.get(BASE_URL_ENV.get(name, "")) or "").strip()
        if env_url and not extra.get("base_url"):
            extra["base_url"] = env_url
        extra.setdefault("api_key", keys.get(name))
        configs.append(provider_config(name, **extra))
    return configs
