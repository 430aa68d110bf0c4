"""How to reach each provider: defaults, keys from the environment, and the config every client takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.remote.catalogue import PROVIDERS, ModelSpec, load_catalogue
from models.remote.retry import RetryPolicy

__all__ = ["PROVIDERS", "ProviderConfig", "configs_from_env", "default_model", "keys_from_env", "provider_config"]

DEFAULT_BASE_URLS: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "fal": "https://fal.run",
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
# An image may declare up to this many times the requested pixels (providers draw at their own native sizes,
# a 2K tier for a 1.5 MP request), and never less than DEFAULT_MIN_PIXEL_CAP: a 1K native answer to a tiny request.
DEFAULT_PIXEL_FACTOR = 4.0
DEFAULT_MIN_PIXEL_CAP = 4 * MiB


def default_model(name: str) -> str:
    """The provider's default model, from the catalogue."""
    return load_catalogue().default_model(name)


@dataclass(frozen=True)
class ProviderConfig:
    """One provider to try. `api_key` None means "not configured": the chain skips it and says why.

    The model must be in the catalogue (a retired or unknown one is a ValueError here, at startup), and so must
    every option; the timeouts default to what the catalogue says the model (with these options) takes.
    """

    name: str
    base_url: str
    model: str
    # Never in a repr, and never compared: configs that differ only by key are the same provider.
    api_key: str | None = field(default=None, repr=False, compare=False)
    # Bound on one HTTP exchange; each is further cut to the time left before the attempt's deadline.
    timeout_s: float | None = None
    # Bound on the whole try of this provider (retries and fetching a URL result included).
    attempt_timeout_s: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # A 4K PNG is ~25 MB, ~33 MB as base64 inside JSON.
    max_response_bytes: int = 64 * MiB
    max_image_bytes: int = 48 * MiB
    # Hosts an image URL may point at: "cdn.example.com", "*.example.com" (its subdomains), "*" (any public host).
    # provider_config() fills in the catalogue's list for the provider; empty: no image URL is fetched at all.
    image_hosts: tuple[str, ...] = ()
    # Hosts (or host:port) whose image URLs may be plain http: test servers and local proxies only.
    allow_http_hosts: tuple[str, ...] = ()
    # Networks (CIDR) exempt from the refusal of private, loopback and link-local image addresses: tests and
    # in-cluster proxies only. Empty in production.
    allow_private_networks: tuple[str, ...] = ()
    # An image is refused, before any pixel is decoded, when its header declares more than
    # max(min_pixel_cap, pixel_factor * requested pixels).
    pixel_factor: float = DEFAULT_PIXEL_FACTOR
    min_pixel_cap: int = DEFAULT_MIN_PIXEL_CAP
    # Provider-specific request fields (quality, sync_mode, image_size, ...): checked against the catalogue.
    options: Mapping[str, Any] = field(default_factory=dict)
    spec: ModelSpec | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name not in PROVIDERS:
            raise ValueError(f"unknown provider {self.name!r}; known: {', '.join(PROVIDERS)}")
        spec = self.spec or load_catalogue().spec(self.name, self.model)
        spec.check_options(self.options)
        object.__setattr__(self, "spec", spec)
        if self.timeout_s is None:
            object.__setattr__(self, "timeout_s", spec.exchange_timeout_s(self.options))
        if self.attempt_timeout_s is None:
            object.__setattr__(self, "attempt_timeout_s", spec.attempt_timeout_s(self.options))
        if self.timeout_s <= 0 or self.attempt_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.pixel_factor <= 0 or self.min_pixel_cap <= 0:
            raise ValueError("pixel caps must be positive")

    @property
    def model_spec(self) -> ModelSpec:
        if self.spec is None:  # unreachable: __post_init__ sets it
            raise RuntimeError("ProviderConfig without a model spec")
        return self.spec

    @property
    def request_options(self) -> dict[str, Any]:
        """The catalogue's defaults for the model under the configured options: what the request carries."""
        return self.model_spec.effective_options(self.options)

    @property
    def served_by(self) -> str:
        return f"{self.name}:{self.model}"

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/")

    def pixel_cap(self, width: int, height: int) -> int:
        return max(self.min_pixel_cap, int(self.pixel_factor * width * height))


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
    catalogue = load_catalogue()
    fields: dict[str, Any] = {
        "base_url": DEFAULT_BASE_URLS[name],
        "model": catalogue.default_model(name),
        "image_hosts": catalogue.image_hosts(name),
    }
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
