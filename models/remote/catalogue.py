"""The remote model catalogue (catalogue.yaml): sizes, accepted options, latency, and the timeouts derived from it.

python -m models.remote.catalogue            # every model, and the remote backend's timeout for the defaults
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
PROVIDERS: tuple[str, ...] = ("openai", "gemini", "fal")
# One try of a provider may hold a short retry (a 503, a reset) or a URL fetch beyond its slowest healthy answer.
RETRY_ROOM_S = 10.0
# The remote backend ends its chain this long before the gateway's timeout, so that every try is reported
# (deployments/remote.py); the backend's timeout is the sum of its providers' tries plus this.
REPORT_MARGIN_S = 2.5


class UnknownModel(ValueError):
    """A configured model the catalogue does not offer (or that is retired); the message says what to use."""


@dataclass(frozen=True)
class Latency:
    typical_s: float
    max_s: float


@dataclass(frozen=True)
class Sizes:
    """What a model draws. OpenAI: a `grid` with pixel, side and ratio bounds. Gemini: `aspect_ratios` and
    `image_sizes` tiers. fal: `named` sizes, else a custom size on a `grid` within the side bounds."""

    grid: int | None = None
    min_pixels: int = 0
    max_pixels: int | None = None
    min_side: int = 1
    max_side: int | None = None
    max_ratio: float | None = None
    aspect_ratios: tuple[str, ...] = ()
    image_sizes: tuple[str, ...] = ()
    named: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class OptionRule:
    """The values one option accepts: one of `values`, an integer in [`low`, `high`], or a boolean."""

    values: tuple[Any, ...] | None = None
    low: int | None = None
    high: int | None = None
    boolean: bool = False

    def check(self, name: str, value: Any) -> None:
        if self.boolean:
            ok = isinstance(value, bool)
            want = "true or false"
        elif self.values is not None:
            ok = _plain(value) in [_plain(v) for v in self.values]
            want = "one of " + ", ".join(_show(v) for v in self.values)
        else:
            ok = isinstance(value, int) and not isinstance(value, bool)
            ok = ok and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
            want = f"an integer from {self.low} to {self.high}"
        if not ok:
            raise ValueError(f"option {name}={_show(value)} is not accepted: want {want}")


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str
    sizes: Sizes
    options: Mapping[str, OptionRule]
    defaults: Mapping[str, Any]
    latency: Mapping[str, Latency]
    latency_by: str | None = None
    deprecated: str | None = None

    def check_options(self, options: Mapping[str, Any]) -> None:
        """ValueError naming the first option this model does not take, or takes with other values."""
        for name, value in options.items():
            rule = self.options.get(name)
            if rule is None:
                known = ", ".join(sorted(self.options)) or "none"
                raise ValueError(f"{self.name} takes no option {name!r} (it takes: {known})")
            rule.check(name, value)

    def effective_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The catalogue's defaults under the configured options."""
        return {**self.defaults, **options}

    def latency_for(self, options: Mapping[str, Any]) -> Latency:
        if self.latency_by is None:
            return self.latency[""]
        value = self.effective_options(options).get(self.latency_by)
        return self.latency.get(str(value), max(self.latency.values(), key=lambda lat: lat.max_s))

    def exchange_timeout_s(self, options: Mapping[str, Any]) -> float:
        """Bound on one HTTP exchange: the slowest healthy answer."""
        return self.latency_for(options).max_s

    def attempt_timeout_s(self, options: Mapping[str, Any]) -> float:
        """Bound on one try of the provider, a short retry or the image fetch included."""
        return self.latency_for(options).max_s + RETRY_ROOM_S


@dataclass(frozen=True)
class ProviderEntry:
    default: str
    image_hosts: tuple[str, ...]
    models: Mapping[str, ModelSpec]


@dataclass(frozen=True)
class Catalogue:
    providers: Mapping[str, ProviderEntry]
    retired: Mapping[str, str]

    def default_model(self, provider: str) -> str:
        return self.providers[provider].default

    def image_hosts(self, provider: str) -> tuple[str, ...]:
        return self.providers[provider].image_hosts

    def spec(self, provider: str, model: str) -> ModelSpec:
        name = model.removeprefix("models/")
        if name in self.retired:
            raise UnknownModel(f"{provider} model {name!r} is retired: {self.retired[name]}")
        entry = self.providers.get(provider)
        if entry is None:
            raise UnknownModel(f"unknown provider {provider!r}; known: {', '.join(self.providers)}")
        found = entry.models.get(name)
        if found is None:
            known = ", ".join(entry.models)
            raise UnknownModel(
                f"{provider} model {name!r} is not in the catalogue (models/remote/catalogue.yaml); known: {known}"
            )
        return found


def remote_timeout_s(attempt_timeouts: Iterable[float]) -> float:
    """The remote backend's timeout for providers tried one after another: every try, plus the report margin."""
    return float(math.ceil(sum(attempt_timeouts) + REPORT_MARGIN_S))


# Loading --------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def _show(value: Any) -> str:
    return "[" + ", ".join(_show(v) for v in value) + "]" if isinstance(value, list | tuple) else str(value)


def _size(text: str, where: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"{where}: size {text!r} is not WxH") from None
    return w, h


def _rule(raw: Any, where: str) -> OptionRule:
    if raw == "bool":
        return OptionRule(boolean=True)
    if isinstance(raw, list) and raw:
        return OptionRule(values=tuple(tuple(v) if isinstance(v, list) else v for v in raw))
    if isinstance(raw, dict) and set(raw) <= {"min", "max"}:
        return OptionRule(low=raw.get("min"), high=raw.get("max"))
    raise ValueError(f"{where}: an option is a list of values, {{min, max}} or bool, not {raw!r}")


def _latency(raw: Any, where: str) -> tuple[dict[str, Latency], str | None]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: latency must be a mapping")

    def one(item: Any, at: str) -> Latency:
        if not isinstance(item, dict) or set(item) != {"typical", "max"}:
            raise ValueError(f"{at}: want {{typical, max}} in seconds")
        lat = Latency(float(item["typical"]), float(item["max"]))
        if not 0 < lat.typical_s <= lat.max_s:
            raise ValueError(f"{at}: need 0 < typical <= max")
        return lat

    by = raw.get("by")
    if by is None:
        return {"": one(raw, where)}, None
    table = {str(k): one(v, f"{where}.{k}") for k, v in raw.items() if k != "by"}
    if not table:
        raise ValueError(f"{where}: latency by {by} lists no values")
    return table, str(by)


def _sizes(raw: Any, where: str) -> Sizes:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: sizes must be a mapping")
    named = {str(k): _size(v, where) for k, v in (raw.get("named") or {}).items()}
    known = {f.name for f in Sizes.__dataclass_fields__.values()}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown size fields {sorted(unknown)}")
    fields = {k: v for k, v in raw.items() if k != "named"}
    for key in ("aspect_ratios", "image_sizes"):
        if key in fields:
            fields[key] = tuple(str(v) for v in fields[key])
    return Sizes(named=named, **fields)


def _spec(provider: str, name: str, raw: Any) -> ModelSpec:
    where = f"catalogue {provider}.{name}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping")
    options = {str(k): _rule(v, f"{where}.options.{k}") for k, v in (raw.get("options") or {}).items()}
    latency, by = _latency(raw.get("latency"), f"{where}.latency")
    spec = ModelSpec(
        provider=provider,
        name=name,
        sizes=_sizes(raw.get("sizes"), f"{where}.sizes"),
        options=options,
        defaults=dict(raw.get("defaults") or {}),
        latency=latency,
        latency_by=by,
        deprecated=raw.get("deprecated"),
    )
    spec.check_options(spec.defaults)
    if by is not None and by not in options:
        raise ValueError(f"{where}: latency is keyed on {by!r}, which is not an option")
    return spec


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """Validate the YAML's structure; ValueError naming the first thing wrong."""
    providers: dict[str, ProviderEntry] = {}
    for provider in PROVIDERS:
        raw = data.get(provider)
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
            raise ValueError(f"catalogue: {provider} needs a mapping of models")
        models = {str(name): _spec(provider, str(name), spec) for name, spec in raw["models"].items()}
        default = str(raw.get("default"))
        if default not in models:
            raise ValueError(f"catalogue: {provider}'s default {default!r} is not one of its models")
        hosts = tuple(str(h).lower() for h in raw.get("image_hosts") or ())
        providers[provider] = ProviderEntry(default, hosts, models)
    retired = {str(k): str(v) for k, v in (data.get("retired") or {}).items()}
    return Catalogue(providers, retired)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    if path is None:
        return _default_catalogue()
    return parse_catalogue(yaml.safe_load(Path(path).read_text()))


@lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return parse_catalogue(yaml.safe_load(CATALOGUE_PATH.read_text()))


def _table(catalogue: Catalogue, order: Sequence[str] = PROVIDERS) -> str:
    lines = ["provider  model                        typical  max  try   default"]
    tries = []
    for provider in order:
        entry = catalogue.providers[provider]
        for name, spec in entry.models.items():
            lat, attempt = spec.latency_for({}), spec.attempt_timeout_s({})
            mark = "yes" if name == entry.default else ""
            lines.append(f"{provider:<9} {name:<28} {lat.typical_s:>5g} s {lat.max_s:>4g} {attempt:>4g} s {mark}")
        tries.append(entry.models[entry.default].attempt_timeout_s({}))
    lines.append(f"remote backend timeout_s for the defaults ({', '.join(order)}): {remote_timeout_s(tries):g}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(load_catalogue()))
