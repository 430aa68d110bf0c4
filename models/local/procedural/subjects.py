"""Simple figures (robot, cat, fox, person...) drawn with ImageDraw on a supersampled layer, then laid on the canvas.

Each figure is drawn in units of its own height: x runs over 0..ASPECT[name], y over 0..1, feet near y = 0.95.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from models.local.procedural.canvas import RGB, Canvas, mix, scale
from models.local.procedural.prompt import Spec

_SUPERSAMPLE = 2
Point = tuple[float, float]


class Pen:
    """ImageDraw in figure units, with the scene's light applied to every colour that is not `glow`.

    A figure coordinate (x, y) lands on pixel `origin + (x, y) * unit` of the image drawn on.
    """

    def __init__(self, image: Image.Image, unit: float, origin: Point, ambient: RGB, *, night: bool) -> None:
        self.draw = ImageDraw.Draw(image, "RGBA")  # "RGBA": translucent fills blend with what is below
        self.k = unit
        self.ox, self.oy = origin
        self.ambient = ambient
        self.night = night

    def _xy(self, points: Sequence[Point]) -> list[Point]:
        return [(self.ox + x * self.k, self.oy + y * self.k) for x, y in points]

    def _fill(self, colour: Sequence[float], glow: bool, alpha: int) -> tuple[int, int, int, int]:
        c = colour if glow else (colour[0] * self.ambient[0], colour[1] * self.ambient[1], colour[2] * self.ambient[2])
        return (int(min(255, c[0])), int(min(255, c[1])), int(min(255, c[2])), alpha)

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (self.ox + x0 * self.k, self.oy + y0 * self.k, self.ox + x1 * self.k, self.oy + y1 * self.k)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, colour: RGB, *, glow: bool = False,
                alpha: int = 255) -> None:  # fmt: skip
        self.draw.ellipse(self._box(cx - rx, cy - ry, cx + rx, cy + ry), fill=self._fill(colour, glow, alpha))

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: RGB, *, radius: float = 0.0,
             glow: bool = False, alpha: int = 255) -> None:  # fmt: skip
        box = self._box(x0, y0, x1, y1)
        self.draw.rounded_rectangle(box, radius=radius * self.k, fill=self._fill(colour, glow, alpha))

    def poly(self, points: Sequence[Point], colour: RGB, *, glow: bool = False, alpha: int = 255) -> None:
        self.draw.polygon(self._xy(points), fill=self._fill(colour, glow, alpha))

    def line(self, points: Sequence[Point], colour: RGB, width: float, *, glow: bool = False) -> None:
        fill = self._fill(colour, glow, 255)
        self.draw.line(self._xy(points), fill=fill, width=max(1, round(width * self.k)), joint="curve")
        # Round caps: ImageDraw's lines end square.
        for x, y in (points[0], points[-1]):
            r = width / 2
            self.draw.ellipse(self._box(x - r, y - r, x + r, y + r), fill=fill)

    def arc(self, cx: float, cy: float, r: float, start: float, end: float, colour: RGB, width: float,
            *, glow: bool = False) -> None:  # fmt: skip
        self.draw.arc(self._box(cx - r, cy - r, cx + r, cy + r), start, end, fill=self._fill(colour, glow, 255),
                      width=max(1, round(width * self.k)))  # fmt: skip

    def pieslice(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float, colour: RGB) -> None:
        self.draw.pieslice(
            self._box(cx - rx, cy - ry, cx + rx, cy + ry), start, end, fill=self._fill(colour, False, 255)
        )

    def oval(self, cx: float, cy: float, rx: float, ry: float, angle: float, colour: RGB, *, alpha: int = 255) -> None:
        """A rotated ellipse (angle in degrees, clockwise on screen)."""
        t = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
        a = math.radians(angle)
        x, y = rx * np.cos(t), ry * np.sin(t)
        pts = list(
            zip(
                (cx + x * math.cos(a) - y * math.sin(a)).tolist(),
                (cy + x * math.sin(a) + y * math.cos(a)).tolist(),
                strict=True,
            )
        )
        self.poly(pts, colour, alpha=alpha)


def _curve(p0: Point, p1: Point, p2: Point, n: int = 16) -> list[Point]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * np.array(p1) + t**2 * np.array(p2)
    return [(float(x), float(y)) for x, y in pts]


def _eye(p: Pen, x: float, y: float, r: float, iris: RGB, *, slit: bool = False) -> None:
    p.ellipse(x, y, r, r * 0.9, iris)
    if slit:
        p.ellipse(x, y, r * 0.3, r * 0.8, (15, 15, 20))
    else:
        p.ellipse(x, y, r * 0.55, r * 0.55, (15, 15, 20))
    p.ellipse(x - r * 0.3, y - r * 0.35, r * 0.22, r * 0.22, (255, 255, 255), glow=True)


def robot(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    c = 0.4
    dark, light = scale(body, 0.5), mix(body, (255, 255, 255), 0.45)
    p.line([(c, 0.1), (c, 0.035)], dark, 0.014)
    p.ellipse(c, 0.03, 0.026, 0.026, accent, glow=True)
    # Legs and feet, then the body over their tops.
    for side in (-1, 1):
        p.rect(c + side * 0.09 - 0.04, 0.7, c + side * 0.09 + 0.04, 0.9, dark, radius=0.015)
        p.rect(c + side * 0.09 - 0.065, 0.87, c + side * 0.09 + 0.065, 0.95, body, radius=0.025)
    wave = "friendly" in spec.mods or rng.random() < 0.5
    p.line([(c - 0.19, 0.42), (c - 0.28, 0.52), (c - 0.3, 0.63)], dark, 0.055)
    p.ellipse(c - 0.3, 0.65, 0.045, 0.045, body)
    hand = (c + 0.33, 0.22) if wave else (c + 0.3, 0.63)
    p.line([(c + 0.19, 0.42), (c + 0.3, 0.36) if wave else (c + 0.28, 0.52), hand], dark, 0.055)
    p.ellipse(*hand, 0.045, 0.045, body)
    p.rect(c - 0.045, 0.33, c + 0.045, 0.39, dark)
    p.rect(c - 0.2, 0.37, c + 0.2, 0.72, body, radius=0.05)
    p.rect(c - 0.185, 0.4, c - 0.15, 0.69, light, radius=0.015, alpha=150)
    p.rect(c - 0.12, 0.44, c + 0.12, 0.6, scale(body, 0.7), radius=0.025)
    for i, colour in enumerate(((240, 80, 80), (250, 210, 70), (90, 220, 120))):
        p.ellipse(c - 0.06 + 0.06 * i, 0.5, 0.022, 0.022, colour, glow=True)
    p.rect(c - 0.08, 0.55, c + 0.08, 0.565, dark, radius=0.007)
    # Head: ears, shell, visor, eyes, smile.
    for side in (-1, 1):
        p.rect(c + side * 0.185 - 0.025, 0.16, c + side * 0.185 + 0.025, 0.27, dark, radius=0.012)
    p.rect(c - 0.17, 0.08, c + 0.17, 0.35, body, radius=0.06)
    p.rect(c - 0.155, 0.1, c - 0.125, 0.32, light, radius=0.012, alpha=150)
    p.rect(c - 0.125, 0.13, c + 0.125, 0.3, (25, 32, 48), radius=0.04)
    for side in (-1, 1):
        p.ellipse(c + side * 0.058, 0.195, 0.032, 0.032, accent, glow=True)
        p.ellipse(c + side * 0.058 - 0.01, 0.185, 0.01, 0.01, (255, 255, 255), glow=True)
    p.arc(c, 0.22, 0.045, 30, 150, accent, 0.011, glow=True)


def _feline(p: Pen, fur: RGB, spec: Spec, *, fox: bool) -> None:
    c = 0.4
    pale = mix(fur, (250, 245, 235), 0.75 if fox else 0.4)
    dark = scale(fur, 0.55)
    # Tail behind the body.
    if fox:
        p.oval(c + 0.24, 0.8, 0.085, 0.2, 60, fur)
        p.oval(c + 0.385, 0.715, 0.05, 0.065, 60, (245, 240, 230))
    else:
        p.line(_curve((c + 0.14, 0.9), (c + 0.36, 0.88), (c + 0.3, 0.56)), dark, 0.055)
    p.ellipse(c, 0.7, 0.19, 0.25, fur)
    p.ellipse(c, 0.7, 0.09, 0.17, pale)
    for side in (-1, 1):
        x = c + side * 0.07
        p.rect(x - 0.04, 0.72, x + 0.04, 0.95, fur, radius=0.03)
        if fox:
            p.rect(x - 0.04, 0.86, x + 0.04, 0.95, (35, 25, 25), radius=0.03)
        else:
            p.ellipse(x, 0.93, 0.05, 0.03, pale)
    # Ears, then the head over their bases.
    ear = 0.24 if fox else 0.2
    for side in (-1, 1):
        outer = [(c + side * 0.19, 0.33), (c + side * 0.17, 0.35 - ear), (c + side * 0.04, 0.24)]
        inner = [(c + side * 0.16, 0.31), (c + side * 0.155, 0.36 - ear * 0.8), (c + side * 0.08, 0.26)]
        p.poly(outer, fur)
        p.poly(inner, (40, 30, 30) if fox else (235, 160, 170))
    p.ellipse(c, 0.35, 0.2, 0.165, fur)
    if fox:
        p.poly([(c - 0.21, 0.34), (c - 0.12, 0.39), (c, 0.415), (c + 0.12, 0.39), (c + 0.21, 0.34), (c + 0.16, 0.45),
                (c, 0.52), (c - 0.16, 0.45)], pale)  # fmt: skip
        p.ellipse(c, 0.46, 0.03, 0.022, (25, 20, 20))
    else:
        p.ellipse(c, 0.43, 0.08, 0.05, pale)
        p.poly([(c - 0.022, 0.405), (c + 0.022, 0.405), (c, 0.43)], (230, 130, 140))
        p.arc(c - 0.02, 0.43, 0.02, 10, 170, dark, 0.006)
        p.arc(c + 0.02, 0.43, 0.02, 10, 170, dark, 0.006)
        for side in (-1, 1):
            for dy in (-0.015, 0.015):
                p.line([(c + side * 0.07, 0.425), (c + side * 0.27, 0.41 + dy * 2)], (240, 240, 240), 0.004)
    iris = (250, 180, 50) if fox else (120, 200, 90)
    for side in (-1, 1):
        _eye(p, c + side * 0.075, 0.33, 0.036, iris, slit=True)


def cat(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    _feline(p, body, spec, fox=False)


def fox(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    _feline(p, body, spec, fox=True)


def dog(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    c = 0.4
    pale, dark = mix(body, (250, 240, 225), 0.55), scale(body, 0.6)
    p.line(_curve((c + 0.15, 0.78), (c + 0.3, 0.72), (c + 0.32, 0.55)), body, 0.05)
    p.ellipse(c, 0.7, 0.19, 0.24, body)
    p.ellipse(c, 0.68, 0.09, 0.15, pale)
    for side in (-1, 1):
        x = c + side * 0.075
        p.rect(x - 0.045, 0.72, x + 0.045, 0.95, body, radius=0.03)
        p.ellipse(x, 0.93, 0.055, 0.03, pale)
    p.ellipse(c, 0.33, 0.18, 0.17, body)
    for side in (-1, 1):
        p.oval(c + side * 0.18, 0.36, 0.06, 0.14, side * -18, dark)
    p.ellipse(c, 0.43, 0.1, 0.075, pale)
    p.ellipse(c, 0.39, 0.042, 0.03, (25, 20, 20))
    p.arc(c, 0.42, 0.05, 30, 150, (40, 30, 30), 0.008)
    if "friendly" in spec.mods:
        p.ellipse(c, 0.48, 0.03, 0.035, (230, 100, 120))
    for side in (-1, 1):
        _eye(p, c + side * 0.075, 0.3, 0.028, (70, 45, 30))


def person(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    """Head and shoulders; the figure's bottom edge is the picture's, so the torso runs out of frame."""
    c = 0.45
    skins = ((240, 200, 170), (225, 180, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45))
    hairs = ((30, 25, 25), (80, 50, 30), (150, 100, 50), (220, 190, 120), (170, 70, 40))
    skin = skins[int(rng.integers(len(skins)))]
    hair = hairs[int(rng.integers(len(hairs)))]
    if rng.random() < 0.5:
        p.rect(c - 0.2, 0.3, c + 0.2, 0.7, hair, radius=0.08)
    p.ellipse(c, 0.3, 0.195, 0.22, hair)
    p.rect(c - 0.055, 0.46, c + 0.055, 0.68, scale(skin, 0.85))
    p.rect(c - 0.38, 0.64, c + 0.38, 1.3, body, radius=0.16)
    p.poly([(c - 0.09, 0.64), (c + 0.09, 0.64), (c, 0.75)], scale(skin, 0.85))
    for side in (-1, 1):
        p.ellipse(c + side * 0.158, 0.36, 0.03, 0.045, skin)
    p.ellipse(c, 0.34, 0.16, 0.2, skin)
    p.pieslice(c, 0.25, 0.17, 0.125, 180, 360, hair)
    for side in (-1, 1):
        _eye(p, c + side * 0.058, 0.35, 0.024, (60, 45, 35))
        p.line([(c + side * 0.035, 0.31), (c + side * 0.085, 0.305)], scale(hair, 0.8), 0.009)
        p.ellipse(c + side * 0.095, 0.405, 0.03, 0.017, (235, 120, 120), alpha=60)
    p.line([(c, 0.36), (c - 0.01, 0.4), (c + 0.006, 0.405)], scale(skin, 0.75), 0.007)
    p.arc(c, 0.405, 0.045, 25, 155, (180, 70, 80), 0.011)


def bird(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    owl = "owl" in spec.mods
    p.line([(0.02, 0.84), (0.98, 0.78)], (95, 65, 40), 0.045)
    p.poly([(0.62, 0.66), (0.9, 0.86), (0.8, 0.9), (0.58, 0.74)], scale(body, 0.6))
    p.oval(0.5, 0.57, 0.2, 0.26, -10, body)
    p.oval(0.49, 0.62, 0.12, 0.18, -10, mix(body, (250, 235, 210), 0.6))
    p.oval(0.6, 0.58, 0.1, 0.2, -25, scale(body, 0.7))
    p.ellipse(0.46, 0.3, 0.15, 0.14, body)
    for dx in (-0.03, 0.03):
        p.line([(0.48 + dx, 0.79), (0.48 + dx, 0.83)], (230, 150, 60), 0.012)
    if owl:
        for side in (-1, 1):
            p.poly([(0.46 + side * 0.13, 0.22), (0.46 + side * 0.14, 0.1), (0.46 + side * 0.05, 0.18)], body)
            _eye(p, 0.46 + side * 0.06, 0.3, 0.05, (250, 200, 60))
        p.poly([(0.44, 0.34), (0.48, 0.34), (0.46, 0.39)], (230, 150, 60))
    else:
        _eye(p, 0.42, 0.28, 0.025, (20, 20, 20))
        p.poly([(0.33, 0.29), (0.22, 0.32), (0.33, 0.35)], (240, 170, 60))


def flower(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    c, head = 0.4, (0.4, 0.32)
    green = (70, 150, 70)
    p.line(_curve((c, 0.95), (c + 0.06, 0.65), head), green, 0.025)
    for side in (-1, 1):
        p.oval(c + 0.02 + side * 0.09, 0.7, 0.1, 0.035, side * 30, green)
    sun = "sunflower" in spec.mods
    petals = 16 if sun else 8
    length = 0.16 if sun else 0.14
    for ring, shade in ((0, 0.85), (1, 1.0)):
        for i in range(petals):
            a = 2 * math.pi * (i + 0.5 * ring) / petals
            r = length * (0.62 if ring else 0.72)
            p.oval(head[0] + math.cos(a) * r, head[1] + math.sin(a) * r, length * (0.5 if ring else 0.55),
                   length * 0.27, math.degrees(a), scale(body, shade))  # fmt: skip
    p.ellipse(*head, 0.075 if sun else 0.05, 0.075 if sun else 0.05, (110, 70, 30) if sun else (250, 210, 80))


def house(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    roof = (150, 60, 50)
    p.rect(0.72, 0.16, 0.82, 0.38, (120, 80, 70))
    p.rect(0.14, 0.45, 0.96, 0.95, body)
    p.poly([(0.06, 0.48), (0.55, 0.12), (1.04, 0.48)], roof)
    if "snow" in spec.words or "snowy" in spec.words or "winter" in spec.words:
        p.poly([(0.06, 0.48), (0.55, 0.12), (1.04, 0.48), (0.98, 0.48), (0.55, 0.18), (0.12, 0.48)], (240, 244, 252))
    p.rect(0.47, 0.68, 0.63, 0.95, (110, 70, 45))
    p.ellipse(0.6, 0.82, 0.012, 0.012, (230, 200, 90))
    night = p.night
    for x in (0.24, 0.72):
        p.rect(x, 0.56, x + 0.14, 0.7, (255, 210, 130) if night else (150, 190, 225), glow=night)
        p.line([(x + 0.07, 0.56), (x + 0.07, 0.7)], (245, 240, 230), 0.012)
        p.line([(x, 0.63), (x + 0.14, 0.63)], (245, 240, 230), 0.012)


def tree(p: Pen, body: RGB, accent: RGB, spec: Spec, rng: np.random.Generator) -> None:
    c = 0.45
    bark = (100, 70, 45)
    p.poly([(c - 0.06, 0.95), (c - 0.03, 0.5), (c + 0.03, 0.5), (c + 0.06, 0.95)], bark)
    p.line([(c, 0.6), (c - 0.14, 0.45)], bark, 0.03)
    p.line([(c, 0.55), (c + 0.15, 0.42)], bark, 0.03)
    blobs = [(c + rng.uniform(-0.2, 0.2), 0.38 + rng.uniform(-0.15, 0.08), rng.uniform(0.12, 0.18)) for _ in range(7)]
    for x, y, r in blobs:
        p.ellipse(x, y, r, r, scale(body, 0.75))
    for x, y, r in blobs:
        p.ellipse(x - r * 0.2, y - r * 0.25, r * 0.75, r * 0.75, body)
    for x, y, r in blobs[:3]:
        p.ellipse(x - r * 0.35, y - r * 0.4, r * 0.35, r * 0.35, mix(body, (255, 255, 230), 0.3), alpha=160)


Draw = Callable[[Pen, RGB, RGB, Spec, np.random.Generator], None]


@dataclass(frozen=True)
class Figure:
    draw: Draw
    aspect: float  # width / height of the figure's box
    colour: RGB  # its main colour when the prompt names none
    bust: bool = False  # head and shoulders: sits on the picture's bottom edge, larger, with no shadow
    scale: float = 1.0  # relative to the stage's subject height (a tree is taller than a cat)


FIGURES: dict[str, Figure] = {
    "robot": Figure(robot, 0.8, (175, 188, 205)),
    "cat": Figure(cat, 0.8, (225, 145, 70)),
    "fox": Figure(fox, 0.8, (225, 110, 35)),
    "dog": Figure(dog, 0.8, (175, 120, 65)),
    "person": Figure(person, 0.9, (60, 95, 160), bust=True),
    "bird": Figure(bird, 1.0, (70, 130, 200)),
    "flower": Figure(flower, 0.8, (235, 90, 130)),
    "house": Figure(house, 1.1, (220, 190, 150), scale=1.15),
    "tree": Figure(tree, 0.9, (70, 145, 60), scale=1.5),
}


def draw_subject(
    c: Canvas, spec: Spec, rng: np.random.Generator, *, cx: float, feet_y: float, height: float, ambient: RGB,
    night: bool,
) -> None:  # fmt: skip
    """Draw the prompt's subject standing at (cx, feet_y), `height` pixels tall (less if the canvas is narrow)."""
    name = spec.subject
    if name is None:
        return
    figure = FIGURES[name]
    aspect = figure.aspect
    height *= figure.scale
    if figure.bust:
        feet_y, height = float(c.h), min(c.h * 0.88, height * 1.4)
    height = min(height, c.w * 0.9 / aspect)
    if height < 4:
        return
    body = spec.painted.get("subject", figure.colour)
    if name == "flower" and "sunflower" in spec.mods and "subject" not in spec.painted:
        body = (250, 200, 40)
    if name == "bird" and "owl" in spec.mods and "subject" not in spec.painted:
        body = (150, 110, 70)
    accent = spec.tints[0] if spec.tints else (90, 225, 255)

    if not figure.bust:
        _shadow(c, cx, feet_y - height * 0.05, height * aspect * 0.4, height * 0.05)
    # Draw straight onto the canvas's patch under the figure, enlarged for anti-aliasing and reduced back: an RGB
    # patch, not a transparent layer, because reducing RGBA costs several times more (it premultiplies).
    fx0, fy0 = cx - height * aspect / 2, feet_y - height
    x0, y0 = max(0, math.floor(fx0)), max(0, math.floor(fy0))
    x1, y1 = min(c.w, math.ceil(fx0 + height * aspect)), min(c.h, math.ceil(feet_y))
    if x1 <= x0 or y1 <= y0:
        return
    ss = _SUPERSAMPLE
    patch = c.patch(x0, y0, x1, y1).resize(((x1 - x0) * ss, (y1 - y0) * ss), Image.Resampling.NEAREST)
    pen = Pen(patch, height * ss, ((fx0 - x0) * ss, (fy0 - y0) * ss), ambient, night=night)
    figure.draw(pen, body, accent, spec, rng)
    c.put(patch.reduce(ss), x0, y0)


def _shadow(c: Canvas, cx: float, cy: float, rx: float, ry: float) -> None:
    x0, y0 = max(0, int(cx - 2 * rx)), max(0, int(cy - 2 * ry))
    x1, y1 = min(c.w, int(cx + 2 * rx) + 1), min(c.h, int(cy + 2 * ry) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) - cx) / rx
    dy = (np.arange(y0, y1, dtype=np.float32) - cy) / ry
    c.blend(np.exp(-(dx[None, :] ** 2 + dy[:, None] ** 2) * 1.5) * 0.45, (10, 10, 20), y0, x0)
