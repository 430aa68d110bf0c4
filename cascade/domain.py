"""What a backend can draw: a domain (faces, cats...) recognised in a prompt by its words.

A GAN such as StyleGAN3 draws one domain and never reads the prompt. First in a chain of text-to-image backends it
should answer only prompts about its domain, and let the chain move on otherwise (the gateway skips it at once).
A conditional network also gets its class from the prompt: `classes` maps a prompt word to a class index.

Presets cover the public StyleGAN3 release networks (`RELEASE_DOMAINS`): FFHQ / FFHQ-U draw faces, MetFaces /
MetFaces-U painted and sculpted portraits, AFHQv2 cats, dogs and wild animals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from pydantic import BaseModel, ConfigDict, Field

_WORD = re.compile(r"[a-z]+")
_PEOPLE = (
    "face person people man men woman women boy girl child children kid baby guy lady gentleman human someone "
    "teenager teen adult elderly grandmother grandfather grandma grandpa mother father mom dad son daughter "
    "actor actress bride groom"
)
PRESETS_WORDS: dict[str, str] = {
    "faces": f"{_PEOPLE} portrait headshot selfie avatar mugshot",
    "portraits": f"{_PEOPLE} portrait bust king queen prince princess noble nobleman noblewoman saint madonna",
    "animals": (
        "animal pet cat kitten kitty dog puppy pup hound fox wolf wolves lion lioness tiger leopard cheetah jaguar "
        "lynx cougar puma panther"
    ),
}
# File-name fragments of the release's network pickles (stylegan3-{t,r}-<dataset>-<res>.pkl) → preset.
RELEASE_DOMAINS: dict[str, str] = {"metfaces": "portraits", "ffhq": "faces", "afhq": "animals"}


def prompt_words(prompt: str) -> list[str]:
    """Lower-case words of a prompt, each also in a singular guess ("puppies" → "puppy", "cats" → "cat")."""
    out: list[str] = []
    for word in _WORD.findall(prompt.lower()):
        out.append(word)
        if word.endswith("ies") and len(word) > 4:
            out.append(word[:-3] + "y")
        elif word.endswith("es") and len(word) > 3:
            out += [word[:-2], word[:-1]]
        elif word.endswith("s") and len(word) > 2:
            out.append(word[:-1])
    return out


@dataclass(frozen=True)
class Domain:
    name: str
    words: frozenset[str]
    classes: tuple[tuple[str, int], ...] = field(default=())  # prompt word → class index (conditional networks)

    @classmethod
    def of(cls, name: str, words: Iterable[str], classes: Mapping[str, int] | None = None) -> Domain:
        class_map = {w.lower(): int(c) for w, c in (classes or {}).items()}
        return cls(name, frozenset(w.lower() for w in words) | frozenset(class_map), tuple(class_map.items()))

    def matches(self, prompt: str) -> bool:
        return any(word in self.words for word in prompt_words(prompt))

    def skip_reason(self, prompt: str) -> str | None:
        return None if self.matches(prompt) else f"prompt outside the network's domain: {self.name}"

    def class_for(self, prompt: str) -> int | None:
        """The class of the first class word in the prompt, or None."""
        classes = dict(self.classes)
        for word in prompt_words(prompt):
            if word in classes:
                return classes[word]
        return None


def preset(name: str) -> Domain:
    if name not in PRESETS_WORDS:
        raise ValueError(f"unknown domain preset {name!r}; one of {sorted(PRESETS_WORDS)}")
    return Domain.of(name, PRESETS_WORDS[name].split())


def release_preset(network: str | None) -> str | None:
    """The preset of a release network by its file name (stylegan3-t-ffhqu-1024x1024.pkl → faces), else None."""
    stem = PurePath(network).name.lower() if network else ""
    return next((domain for key, domain in RELEASE_DOMAINS.items() if key in stem), None)


class DomainArgs(BaseModel):
    """A domain in config: a preset's words (`preset`), more `words`, and a word → class map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    preset: str | None = None
    words: list[str] = Field(default_factory=list)
    classes: dict[str, int] = Field(default_factory=dict)

    def build(self) -> Domain:
        base = preset(self.preset).words if self.preset else frozenset()
        for label, index in self.classes.items():
            if index < 0:
                raise ValueError(f"domain {self.name}: class of {label!r} must be >= 0")
        domain = Domain.of(self.name, [*base, *self.words], self.classes)
        if not domain.words:
            raise ValueError(f"domain {self.name}: no words (give words, classes or a preset)")
        return domain
