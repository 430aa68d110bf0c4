"""Read a prompt into a small scene description: which sky, which terrain, which subject, which colours where."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

RGB = tuple[float, float, float]
Time = Literal["day", "sunset", "night", "space"]

COLOURS: dict[str, RGB] = {
    "red": (210, 40, 40), "crimson": (180, 20, 60), "scarlet": (230, 45, 30), "maroon": (120, 25, 35),
    "ruby": (190, 20, 70), "orange": (245, 130, 30), "amber": (255, 180, 40), "golden": (235, 185, 60),
    "gold": (235, 185, 60), "yellow": (245, 220, 60), "lime": (160, 220, 50), "green": (50, 160, 70),
    "emerald": (30, 150, 100), "jade": (60, 170, 120), "olive": (120, 130, 50), "mint": (150, 230, 190),
    "teal": (20, 140, 140), "turquoise": (50, 200, 200), "cyan": (40, 210, 230), "aqua": (60, 220, 210),
    "blue": (40, 90, 220), "azure": (50, 140, 240), "sapphire": (20, 60, 170), "cobalt": (0, 70, 170),
    "navy": (20, 30, 100), "indigo": (75, 40, 150), "purple": (130, 50, 180), "violet": (140, 80, 220),
    "lavender": (180, 160, 230), "magenta": (220, 40, 180), "pink": (240, 130, 180), "rose": (230, 90, 120),
    "coral": (250, 120, 100), "peach": (255, 190, 150), "brown": (120, 75, 40), "chocolate": (90, 50, 25),
    "copper": (190, 110, 60), "bronze": (170, 120, 50), "tan": (210, 180, 140), "beige": (225, 205, 170),
    "cream": (245, 235, 205), "ivory": (250, 245, 225), "silver": (190, 195, 205), "grey": (128, 128, 135),
    "gray": (128, 128, 135), "charcoal": (55, 57, 62), "white": (240, 240, 245), "black": (22, 22, 28),
}  # fmt: skip

# Words that set the light of the whole picture.
_SPACE = {"space", "galaxy", "galaxies", "nebula", "cosmos", "cosmic", "universe", "planet", "planets", "astronaut",
          "milky", "outer", "interstellar", "supernova", "orbit"}  # fmt: skip
_NIGHT = {"night", "midnight", "moon", "moonlit", "moonlight", "starry", "stars", "nocturnal", "neon", "cyberpunk"}
_SUNSET = {"sunset", "sunrise", "dusk", "dawn", "twilight", "sundown", "evening"}

# Terrain words → layer names (drawn back to front in scenes.LAYER_ORDER).
_TERRAIN: dict[str, str] = {
    **dict.fromkeys(["mountain", "mountains", "alps", "peak", "peaks", "summit", "cliff", "cliffs", "volcano"],
                    "mountains"),
    **dict.fromkeys(["hill", "hills", "valley", "meadow", "meadows", "field", "fields", "landscape", "countryside",
                     "grass", "grassland", "prairie", "garden", "park"], "hills"),
    **dict.fromkeys(["forest", "forests", "woods", "woodland", "trees", "jungle", "pine", "pines", "taiga"], "forest"),
    **dict.fromkeys(["city", "cities", "skyline", "urban", "downtown", "street", "skyscraper", "skyscrapers",
                     "metropolis", "cyberpunk", "buildings", "town", "tokyo", "manhattan"], "city"),
    **dict.fromkeys(["ocean", "sea", "seas", "waves", "wave", "lake", "water", "coast", "shore", "bay", "harbor",
                     "harbour", "river", "island", "beach", "lagoon"], "water"),
    **dict.fromkeys(["desert", "dunes", "dune", "sand", "sahara", "oasis"], "desert"),
    **dict.fromkeys(["snow", "snowy", "winter", "ice", "icy", "frozen", "arctic", "blizzard", "snowfall"], "snow"),
}  # fmt: skip

_SUBJECTS: dict[str, str] = {
    **dict.fromkeys(["robot", "robots", "android", "droid", "mech", "cyborg", "automaton", "bot"], "robot"),
    **dict.fromkeys(["cat", "cats", "kitten", "kittens", "kitty", "tabby"], "cat"),
    **dict.fromkeys(["dog", "dogs", "puppy", "puppies", "pup", "corgi", "retriever"], "dog"),
    **dict.fromkeys(["fox", "foxes", "wolf", "wolves"], "fox"),
    **dict.fromkeys(["person", "portrait", "woman", "man", "girl", "boy", "face", "lady", "king", "queen", "child",
                     "astronaut", "wizard", "princess", "prince", "selfie", "people"], "person"),
    **dict.fromkeys(["bird", "birds", "owl", "parrot", "eagle", "robin", "sparrow"], "bird"),
    **dict.fromkeys(["flower", "flowers", "rose", "roses", "tulip", "tulips", "sunflower", "sunflowers", "daisy",
                     "blossom", "bouquet", "lotus"], "flower"),
    **dict.fromkeys(["house", "cabin", "cottage", "home", "hut", "barn", "castle", "lighthouse", "church"], "house"),
    **dict.fromkeys(["tree", "oak", "baobab", "willow"], "tree"),
}  # fmt: skip

# Words a colour may sit in front of, and which part of the picture it then paints.
_ELEMENTS: dict[str, str] = {
    **dict.fromkeys(["sky", "skies", "sunset", "sunrise", "dusk", "dawn", "twilight", "clouds", "cloud", "night",
                     "aurora", "light", "glow", "background"], "sky"),
    **dict.fromkeys(["sun"], "sun"),
    **dict.fromkeys(["moon"], "moon"),
    **dict.fromkeys(["nebula", "galaxy", "space", "cosmos", "stars", "universe"], "space"),
    **dict.fromkeys(["planet"], "planet"),
    **{word: layer for word, layer in _TERRAIN.items() if layer != "snow"},
    **dict.fromkeys(_SUBJECTS, "subject"),
}  # fmt: skip

_MODIFIERS = {
    "pastel": "pastel", "soft": "pastel", "neon": "vivid", "vibrant": "vivid", "vivid": "vivid", "bright": "vivid",
    "colorful": "vivid", "colourful": "vivid", "dark": "dark", "gloomy": "dark", "moody": "dark", "dim": "dark",
    "misty": "misty", "foggy": "misty", "fog": "misty", "mist": "misty", "hazy": "misty", "stormy": "stormy",
    "storm": "stormy", "cloudy": "cloudy", "clouds": "cloudy", "friendly": "friendly", "happy": "friendly",
    "cute": "friendly", "smiling": "friendly", "rainbow": "rainbow", "galaxy": "galaxy", "milky": "galaxy",
    "spiral": "galaxy", "planet": "planet", "planets": "planet", "moon": "moon", "moonlit": "moon",
    "sunflower": "sunflower", "sunflowers": "sunflower", "owl": "owl", "pine": "pine", "wolf": "wolf",
    "wolves": "wolf", "beach": "beach", "island": "island", "stars": "stars", "starry": "stars",
}  # fmt: skip


@dataclass(frozen=True)
class Spec:
    """What the prompt asks for, as far as a procedural painter can tell."""

    words: tuple[str, ...]
    time: Time | None
    layers: frozenset[str]
    subject: str | None
    # Colours bound to a part of the picture ("purple mountains", "red fox"), and the rest, which tint everything.
    painted: dict[str, RGB] = field(default_factory=dict)
    tints: tuple[RGB, ...] = ()
    mods: frozenset[str] = frozenset()

    @property
    def abstract(self) -> bool:
        """No scene word at all: the painter makes an abstract composition instead of a bad landscape."""
        return self.time is None and not self.layers and self.subject is None

    @property
    def colours(self) -> tuple[RGB, ...]:
        return tuple(self.painted.values()) + self.tints


def read_prompt(prompt: str) -> Spec:
    words = tuple(re.findall(r"[a-z]+", prompt.lower()))
    wordset = set(words)

    time: Time | None = None
    if wordset & _SPACE:
        time = "space"
    elif wordset & _SUNSET or {"golden", "hour"} <= wordset:
        time = "sunset"
    elif wordset & _NIGHT:
        time = "night"
    elif wordset & {"day", "sunny", "noon", "morning", "sky", "sun", "clouds", "cloudy", "afternoon", "summer"}:
        time = "day"

    layers = frozenset(_TERRAIN[w] for w in words if w in _TERRAIN)
    subject = next((_SUBJECTS[w] for w in words if w in _SUBJECTS), None)
    # "a forest of trees" is a forest, but "a tree on a hill" is a subject.
    if subject == "tree" and "forest" in layers:
        subject = None

    painted: dict[str, RGB] = {}
    tints: list[RGB] = []
    for i, word in enumerate(words):
        colour = COLOURS.get(word)
        if colour is None:
            continue
        # A colour paints the first thing named within the next three words ("a red fox", "purple snowy mountains").
        target = next((_ELEMENTS[w] for w in words[i + 1 : i + 4] if w in _ELEMENTS), None)
        if target is not None and target not in painted:
            painted[target] = colour
        else:
            tints.append(colour)

    mods = frozenset(_MODIFIERS[w] for w in words if w in _MODIFIERS)
    return Spec(words=words, time=time, layers=layers, subject=subject, painted=painted, tints=tuple(tints), mods=mods)
