"""Landscapes: a sky for the time of day, then terrain layers back to front, each a silhouette on the canvas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.local.procedural.canvas import RGB, Canvas, mix, scale, smoothstep
from models.local.procedural.noise import fractal2d, resize_field, ridge1d, smooth1d
from models.local.procedural.prompt import Spec, Time


@dataclass(frozen=True)
class Light:
    """The sky's colours for one time of day; `ambient` multiplies the colours of everything lit by it."""

    top: RGB
    mid: RGB
    horizon: RGB
    haze: RGB
    sun: RGB
    cloud: RGB
    cloud_shade: RGB
    ambient: RGB


LIGHTS: dict[Time, Light] = {
    "day": Light((55, 115, 205), (110, 165, 225), (185, 215, 240), (190, 210, 230), (255, 250, 225),
                 (255, 255, 255), (175, 185, 205), (1.0, 1.0, 1.0)),
    "sunset": Light((40, 35, 95), (185, 75, 105), (255, 165, 85), (225, 130, 115), (255, 215, 130),
                    (255, 170, 140), (120, 70, 110), (0.82, 0.66, 0.62)),
    "night": Light((5, 8, 26), (14, 22, 52), (34, 48, 88), (40, 52, 88), (235, 235, 215),
                   (70, 80, 110), (25, 30, 50), (0.42, 0.46, 0.62)),
    "space": Light((3, 3, 12), (8, 6, 24), (14, 10, 34), (20, 16, 44), (255, 240, 220),
                   (60, 50, 90), (20, 15, 35), (0.55, 0.55, 0.7)),
}  # fmt: skip

# Default colour of each terrain at full daylight; the light's ambient darkens and warms it.
_TERRAIN_COLOUR: dict[str, RGB] = {
    "mountains": (95, 110, 140),
    "hills": (85, 145, 65),
    "forest": (35, 80, 50),
    "city": (85, 95, 120),
    "water": (30, 85, 135),
    "desert": (230, 180, 110),
    "snow": (232, 238, 250),
    "beach": (225, 200, 150),
}


@dataclass(frozen=True)
class Stage:
    """Where a subject can stand and how it is lit, for the figure drawn on top of the scene."""

    feet_y: float
    height: float
    ambient: RGB
    night: bool
    snowy: bool


def lit(colour: RGB, ambient: RGB) -> RGB:
    return (colour[0] * ambient[0], colour[1] * ambient[1], colour[2] * ambient[2])


class Scene:
    def __init__(self, canvas: Canvas, spec: Spec, rng: np.random.Generator) -> None:
        self.c, self.spec, self.rng = canvas, spec, rng
        self.time: Time = spec.time or "day"
        light = LIGHTS[self.time]
        sky = spec.painted.get("sky")
        if sky is not None:
            light = Light(
                mix(light.top, scale(sky, 0.55), 0.6), mix(light.mid, sky, 0.6), mix(light.horizon, sky, 0.35),
                mix(light.haze, sky, 0.4), light.sun, light.cloud, light.cloud_shade, light.ambient,
            )  # fmt: skip
        if "stormy" in spec.mods:
            light = Light(
                (70, 75, 90), (105, 110, 125), (150, 150, 160), (140, 140, 150), light.sun,
                (165, 165, 175), (70, 72, 85), scale(light.ambient, 0.7),
            )  # fmt: skip
        self.light = light
        self.sun_x: float | None = None
        self.sun_y = self.sun_r = 0.0
        self.layers = spec.layers
        self.water = "water" in self.layers
        h = canvas.h
        if self.water:
            horizon = rng.uniform(0.56, 0.62)
        elif "city" in self.layers and "forest" not in self.layers:
            horizon = rng.uniform(0.76, 0.8)
        else:
            horizon = rng.uniform(0.62, 0.7)
        self.horizon = int(h * horizon)

    def colour(self, layer: str) -> RGB:
        base = self.spec.painted.get(layer, _TERRAIN_COLOUR[layer])
        return lit(base, self.light.ambient)

    # ---- sky -------------------------------------------------------------------------------------------------

    def sky(self) -> None:
        """Gradient, halo, clouds and rainbow on a small canvas (all smooth), then the crisp sun, moon and stars."""
        c, lt, rng = self.c, self.light, self.rng
        soft, f = c.soft()
        hz = self.horizon / c.h
        soft.fill_rows(soft.rows_gradient(((0.0, lt.top), (hz * 0.55, lt.mid), (hz, lt.horizon), (1.0, lt.horizon)),
                                          0, soft.h), 0)  # fmt: skip
        sunset = self.time == "sunset"
        if self.time == "night":
            self.sun_x, self.sun_y = c.w * rng.uniform(0.2, 0.8), self.horizon * rng.uniform(0.18, 0.35)
            self.sun_r = c.s * (0.09 if "moon" in self.spec.mods else 0.055)
            soft.glow(self.sun_x * f, self.sun_y * f, self.sun_r * 3 * f, (110, 130, 180), 0.35)
        elif self.time != "space" and "stormy" not in self.spec.mods:
            self.sun_x = c.w * rng.uniform(0.3, 0.7) if sunset else c.w * rng.uniform(0.18, 0.82)
            self.sun_r = c.s * (0.08 if sunset else 0.05)
            self.sun_y = self.horizon - self.sun_r * 0.45 if sunset else self.horizon * rng.uniform(0.2, 0.35)
            colour = self.spec.painted.get("sun", lt.sun)
            soft.glow(self.sun_x * f, self.sun_y * f, c.s * (0.5 if sunset else 0.3) * f, colour, 0.22)
            soft.glow(self.sun_x * f, self.sun_y * f, self.sun_r * 2.0 * f, colour, 0.3)
        if self.time not in ("night", "space") or {"cloudy", "stormy"} & self.spec.mods:
            self.clouds(soft, round(self.horizon * f))
        if "rainbow" in self.spec.mods:
            self.rainbow(soft, f)
        # Below the horizon (and a margin for the lowest ridges) the terrain covers everything.
        c.upsample(soft, None if not self.layers else self.horizon + int(c.h * (0.0 if self.water else 0.1)))
        if self.time in ("night", "space"):
            self.stars(self.horizon, density=1 / (100 if "stars" in self.spec.mods else 300))
        if self.sun_x is not None:
            self.sun_disc()

    def sun_disc(self) -> None:
        c, rng = self.c, self.rng
        assert self.sun_x is not None
        if self.time == "night":
            colour = self.spec.painted.get("moon", self.light.sun)
            c.disc(self.sun_x, self.sun_y, self.sun_r, colour)
            for _ in range(4):
                a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.6) * self.sun_r
                c.disc(self.sun_x + d * np.cos(a), self.sun_y + d * np.sin(a), self.sun_r * rng.uniform(0.12, 0.25),
                       scale(colour, 0.85), 0.5)  # fmt: skip
        else:
            colour = mix(self.spec.painted.get("sun", self.light.sun), (255, 255, 245), 0.7)
            c.glow(self.sun_x, self.sun_y, self.sun_r * 1.15, colour, 0.35)
            c.disc(self.sun_x, self.sun_y, self.sun_r, colour)

    def stars(self, y_end: int, density: float) -> None:
        c, rng = self.c, self.rng
        n = int(c.w * y_end * density)
        if n == 0 or y_end <= 0:
            return
        xs = rng.integers(0, c.w, n)
        ys = rng.integers(0, y_end, n)
        bright = (rng.random(n, dtype=np.float32) ** 3 * 200 + 40)[None, :]
        c.px[:, ys, xs] = np.maximum(c.px[:, ys, xs], bright)
        for _ in range(min(12, max(1, n // 80))):
            c.glow(rng.integers(0, c.w), rng.integers(0, y_end), rng.uniform(1.0, 2.2) * max(1.0, c.s / 512),
                   (230, 235, 255), 0.9)  # fmt: skip

    def clouds(self, soft: Canvas, hz: int) -> None:
        lt, rng = self.light, self.rng
        if hz < 4:
            return
        cover = {"stormy": 0.3, "cloudy": 0.42}
        lo = min((cover[m] for m in self.spec.mods if m in cover), default=rng.uniform(0.5, 0.62))
        n = fractal2d(rng, soft.w, hz, cells=2.2, octaves=5, stretch=2.5)
        fade = np.clip(1.3 - np.arange(hz, dtype=np.float32) / hz, 0.0, 1.0)[:, None]
        alpha = smoothstep(lo, lo + 0.25, n) * fade * 0.85
        body = smoothstep(lo, lo + 0.4, n)
        shade = np.asarray(lt.cloud_shade, np.float32).reshape(3, 1, 1)
        colour = shade + (np.asarray(lt.cloud, np.float32).reshape(3, 1, 1) - shade) * body
        soft.blend(alpha, colour)

    def rainbow(self, soft: Canvas, f: float) -> None:
        cx, cy, r0 = soft.w * 0.5, self.horizon * f, soft.s * 0.42
        width = soft.s * 0.07
        d, x0, y0 = soft.radial(cx, cy, r0 + width)
        t = (d - r0) / width
        band = np.clip(t, 0.0, 1.0)
        hues = [(230, 60, 60), (240, 150, 50), (240, 230, 80), (80, 200, 90), (70, 130, 230), (140, 80, 200)]
        at = np.linspace(0.0, 1.0, len(hues))
        colour = np.stack([np.interp(band, at, [h[k] for h in hues]) for k in range(3)]).astype(np.float32)
        alpha = 0.35 * smoothstep(0.0, 0.15, t) * smoothstep(1.0, 0.85, t)
        soft.blend(alpha.astype(np.float32), colour, y0, x0)

    # ---- space -----------------------------------------------------------------------------------------------

    def space(self) -> None:
        c, rng, spec = self.c, self.rng, self.spec
        soft, _ = c.soft(limit=200)
        soft.fill_rows(soft.rows_gradient(((0.0, self.light.top), (1.0, self.light.horizon)), 0, soft.h), 0)
        tints = [*spec.colours, (120, 60, 200), (40, 150, 200), (220, 80, 140)]
        first = spec.painted.get("space", tints[0])
        for colour, strength in ((first, 0.75), (tints[1] if tints[1] != first else tints[2], 0.5)):
            n = fractal2d(rng, soft.w, soft.h, cells=2.0, octaves=5)
            soft.add(smoothstep(0.4, 1.0, n) * strength, colour)
        if "galaxy" in spec.mods or ("planet" not in spec.mods and rng.random() < 0.5):
            self.galaxy(soft)
        c.upsample(soft)
        self.stars(c.h, density=1 / 180)
        if "planet" in spec.mods or "moon" in spec.mods:
            self.planet()

    def galaxy(self, soft: Canvas) -> None:
        rng = self.rng
        cx, cy = soft.w * rng.uniform(0.35, 0.65), soft.h * rng.uniform(0.35, 0.6)
        r = soft.s * rng.uniform(0.38, 0.48)
        x0, y0, x1, y1 = soft.box(cx, cy, r)
        if x1 <= x0 or y1 <= y0:
            return
        u = (np.arange(x0, x1, dtype=np.float32) - cx) / r
        v = (np.arange(y0, y1, dtype=np.float32) - cy) / r
        theta, tilt = rng.uniform(0, np.pi), rng.uniform(0.4, 0.7)
        x = u[None, :] * np.cos(theta) + v[:, None] * np.sin(theta)
        y = (-u[None, :] * np.sin(theta) + v[:, None] * np.cos(theta)) / tilt
        rad = np.sqrt(x * x + y * y) + 1e-3
        arms = (0.5 + 0.5 * np.cos(2 * np.arctan2(y, x) - 5.0 * np.log(rad) + rng.uniform(0, 6.3))) ** 3
        clumps = fractal2d(rng, x1 - x0, y1 - y0, cells=4.0, octaves=3)
        soft.add(np.exp(-rad * 3.2) * arms * (0.5 + clumps) * 2.2, (150, 175, 255), y0, x0)
        soft.add(np.exp(-((rad / 0.12) ** 2)) * 1.6, (255, 230, 190), y0, x0)

    def planet(self) -> None:
        c, rng = self.c, self.rng
        cx, cy = c.w * rng.uniform(0.25, 0.75), c.h * rng.uniform(0.3, 0.7)
        r = c.s * rng.uniform(0.16, 0.26)
        d, x0, y0 = c.radial(cx, cy, r + 2)
        if not d.size:
            return
        dy = (np.arange(y0, y0 + d.shape[0], dtype=np.float32) - cy)[:, None] / r
        dx = (np.arange(x0, x0 + d.shape[1], dtype=np.float32) - cx)[None, :] / r
        nz = np.sqrt(np.clip(1.0 - dx * dx - dy * dy, 0.0, 1.0))
        light = np.clip(-0.6 * dx - 0.45 * dy + 0.66 * nz, 0.0, 1.0) * 0.9 + 0.08
        base = self.spec.painted.get("planet", self.spec.colours[0] if self.spec.colours else (200, 140, 90))
        bands = 0.5 + 0.5 * np.sin(dy * rng.uniform(8, 14) + np.sin(dx * 3.0) * 0.6)
        second = mix(base, (240, 230, 220), 0.45)
        b = np.asarray(base, np.float32).reshape(3, 1, 1)
        colour = (b + (np.asarray(second, np.float32).reshape(3, 1, 1) - b) * bands) * light
        c.blend(np.clip(r - d + 0.5, 0.0, 1.0), colour, y0, x0)
        c.add(np.exp(-(((d - r) / (0.05 * r)) ** 2)) * 0.5, mix(base, (160, 200, 255), 0.6), y0, x0)

    # ---- terrain ---------------------------------------------------------------------------------------------

    def mountains(self) -> None:
        c, rng, lt = self.c, self.rng, self.light
        base, hz = self.colour("mountains"), self.horizon
        snowy = "snow" in self.layers or rng.random() < 0.5
        for i in range(3):
            t = i / 2
            ridge = ridge1d(rng, c.w, points=2 + 2 * i, octaves=6)
            ridge = (ridge - ridge.min()) / max(float(np.ptp(ridge)), 1e-6)
            height = min(c.h * (0.42 - 0.1 * i), c.s * (0.75 - 0.18 * i)) * (0.9 - 0.12 * i)
            profile = hz - height * (0.25 + 0.75 * ridge) - (0.0 if self.water else c.h * 0.03 * (2 - i))
            top = mix(base, lt.haze, 0.55 * (1 - t))
            c.silhouette(profile, top, mix(top, lt.haze, 0.35), floor=hz if self.water else None)
            if snowy and i < 2:
                self._snowcaps(profile, lit((240, 244, 252), lt.ambient), haze=0.4 * (1 - t))

    def _snowcaps(self, profile: np.ndarray, snow: RGB, haze: float) -> None:
        c = self.c
        top, low = float(profile.min()), float(profile.max())
        line = top + (low - top) * 0.45
        depth = np.maximum(0.0, line - profile) * 0.7 + smooth1d(self.rng, c.w, points=40) * c.s * 0.006
        bottom = profile + np.maximum(depth, 0.0)
        y0, y1 = max(0, int(top)), min(c.h, int(np.ceil(bottom.max())) + 1)
        if y1 <= y0:
            return
        rows = np.arange(y0, y1, dtype=np.float32)[:, None]
        alpha = np.clip(rows - profile + 0.5, 0.0, 1.0) * np.clip(bottom - rows + 0.5, 0.0, 1.0)
        c.blend(alpha * 0.9, mix(snow, self.light.haze, haze), y0)

    def hills(self, kind: str) -> None:
        c, rng, lt = self.c, self.rng, self.light
        base = self.colour(kind)
        start = self.horizon - c.h * 0.04
        for i in range(2):
            t = i
            wave = smooth1d(rng, c.w, points=2 + i, octaves=3)
            profile = start + c.h * 0.07 * i - min(c.h * 0.06, c.s * 0.1) * (wave + 1)
            shade = self._slope_shade(profile, 0.12)
            top = mix(base, lt.haze, 0.2 * (1 - t))
            c.silhouette(profile, top, scale(top, 0.75), shade=shade, shade_depth=c.s * 0.08)

    def desert(self) -> None:
        c, rng, lt = self.c, self.rng, self.light
        base = self.colour("desert")
        for i in range(3):
            wave = smooth1d(rng, c.w, points=1 + i, octaves=2)
            profile = self.horizon - c.h * 0.03 + c.h * 0.09 * i - min(c.h * 0.07, c.s * 0.12) * (wave + 1)
            shade = self._slope_shade(profile, 0.3)
            top = mix(base, lt.haze, 0.45 * (1 - i / 2))
            c.silhouette(profile, top, scale(top, 0.85), shade=shade, shade_depth=c.s * 0.12)

    def _slope_shade(self, profile: np.ndarray, strength: float) -> np.ndarray:
        # Light comes from the left: slopes rising to the right face it.
        slope = np.gradient(profile) if profile.size > 1 else np.zeros_like(profile)
        return (1.0 + strength * np.tanh(-slope * 4.0)).astype(np.float32)

    def forest(self) -> None:
        c, rng, lt = self.c, self.rng, self.light
        base = self.colour("forest")
        if "snow" in self.layers:
            base = mix(base, lit((200, 215, 225), lt.ambient), 0.25)
        x = np.arange(c.w, dtype=np.float32)
        for i in range(3):
            t = i / 2
            floor = self.horizon + c.h * 0.05 * i
            spacing = c.s * (0.03 + 0.025 * i)
            n = int(c.w / spacing) + 3
            xs = np.sort(rng.uniform(-spacing, c.w + spacing, n)).astype(np.float32)
            heights = (c.s * (0.16 + 0.1 * i) * rng.uniform(0.6, 1.25, n)).astype(np.float32)
            slopes = heights / (heights * rng.uniform(0.17, 0.26, n).astype(np.float32))
            tri = (floor - heights)[:, None] + np.abs(x[None, :] - xs[:, None]) * slopes[:, None]
            nearest = tri.argmin(axis=0)
            profile = np.minimum(tri.min(axis=0), floor)
            profile = profile + smooth1d(rng, c.w, points=max(2, c.w // 3)) * c.s * 0.004
            shade = np.where(x < xs[nearest], 1.25, 0.85).astype(np.float32)
            top = mix(base, lt.haze, 0.6 * (1 - t))
            c.silhouette(profile, top, scale(top, 0.75), shade=shade)

    def city(self) -> None:
        c, rng, lt = self.c, self.rng, self.light
        base, hz = self.colour("city"), self.horizon
        night = self.time in ("night", "sunset")
        if night:
            glow = np.exp(-(((np.arange(hz, dtype=np.float32) - hz) / (c.h * 0.12)) ** 2))[:, None]
            neon = {"neon", "cyberpunk"} & set(self.spec.words)
            c.add(np.broadcast_to(glow * 0.35, (hz, c.w)), (230, 60, 200) if neon else (255, 150, 80))
        x = np.arange(c.w)
        for i in range(2):
            width = c.s * (0.05 + 0.05 * i)
            n = int(c.w / (width * 0.6)) + 2
            widths = rng.uniform(0.6, 1.4, n) * width
            edges = np.concatenate([[0.0], np.cumsum(widths)]) - rng.uniform(0, width)
            tall = min(c.h * (0.32 + 0.12 * i), c.s * (0.55 + 0.25 * i))
            heights = tall * rng.uniform(0.25, 1.0, n) ** 1.3
            idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
            profile = (hz - heights[idx]).astype(np.float32)
            colour = mix(base, lt.haze, 0.55 if i == 0 else 0.0)
            floor = hz if self.water else None
            c.silhouette(profile, colour, scale(colour, 0.8), floor=floor)
            if i == 1:
                self._windows(profile, idx, edges, night)

    def _windows(self, profile: np.ndarray, idx: np.ndarray, edges: np.ndarray, night: bool) -> None:
        c, rng = self.c, self.rng
        hz = self.horizon
        y0 = max(0, int(profile.min()))
        if hz <= y0:
            return
        cw = max(2, round(c.s * 0.016))
        ch = max(2, round(c.s * 0.022))
        local = np.arange(c.w) - np.floor(edges[idx]).astype(np.int64)
        col = local // cw
        up = hz - np.arange(y0, hz)[:, None]
        row = up // ch
        inside = (np.arange(y0, hz, dtype=np.float32)[:, None] > profile + ch) & (up > ch)
        window = inside & ((local % cw) >= cw // 2)[None, :] & ((up % ch) >= ch // 2) & (local >= cw)[None, :]
        table = rng.random(997)
        lit_now = table[((idx * 131 + col * 31)[None, :] + row * 7) % 997] < (0.45 if night else 0.0)
        on = (window & lit_now).astype(np.float32)
        off = (window & ~lit_now).astype(np.float32)
        warm = (255, 210, 130)
        c.blend(on, warm, y0)
        c.blend(off * 0.5, (40, 48, 70) if night else (150, 175, 205), y0)

    def water_plane(self) -> None:
        c, rng, lt = self.c, self.rng, self.light
        hz = self.horizon
        depth = c.h - hz
        if depth <= 0:
            return
        base = self.colour("water")
        colours = c.rows_gradient(((hz / c.h, mix(lt.mid, base, 0.6)), (1.0, scale(base, 0.6))), hz, c.h)
        # The mirror image of what stands above the horizon, fading with distance from it.
        src = np.clip(hz - 1 - np.arange(depth), 0, max(hz - 1, 0))
        t = np.arange(depth, dtype=np.float32) / depth
        keep = (0.7 * (1 - t) ** 2)[:, None]
        for k in range(3):
            plane = c.px[k]
            plane[hz:] = colours[k][:, None] * (1 - keep) + plane[src] * keep
        # Waves: streaks of noise whose rows pack tighter toward the horizon, as perspective would. They are
        # computed narrow and stretched sideways: the streaks are long, so nothing is lost.
        narrow = max(4, min(c.w, 96))
        waves = fractal2d(rng, narrow, 256, cells=3.0, octaves=4, stretch=3.0, work=256)
        w = waves[np.minimum((np.sqrt(t) * 255).astype(np.int64), 255)]
        # One light field: wave crests catching the sky, plus the glittering path under the sun or moon.
        light = smoothstep(0.6, 0.78, w) * (0.15 + 0.35 * t[:, None])
        if self.sun_x is not None:
            x = np.arange(narrow, dtype=np.float32) * (c.w / narrow)
            # As wide as the disc at the horizon, so its mirror image dissolves into glitter.
            spread = (self.sun_r * 0.9 + c.s * 0.12 * t)[:, None]
            path = np.exp(-(((x[None, :] - self.sun_x) / spread) ** 2)) * smoothstep(0.35, 0.65, w)
            light = light + path * (0.6 if self.time == "night" else 1.3)
        trough = smoothstep(0.42, 0.2, w) * 0.3
        c.blend(resize_field(trough, c.w, depth, cubic=False), scale(base, 0.45), hz)
        c.add(resize_field(light, c.w, depth, cubic=False), mix(lt.sun, (255, 255, 255), 0.35), hz)

    def shore(self, top: float, kind: str) -> None:
        c = self.c
        wave = smooth1d(self.rng, c.w, points=2, octaves=2)
        profile = top + c.h * 0.03 * wave
        colour = self.colour(kind)
        c.silhouette(profile, colour, scale(colour, 0.85))

    def fog(self) -> None:
        c, hz = self.c, self.horizon
        y = np.arange(c.h, dtype=np.float32)
        band = (0.55 * np.exp(-(((y - hz) / (c.h * 0.18)) ** 2)))[:, None]
        c.blend(np.broadcast_to(band, (c.h, c.w)), self.light.haze)

    def snowfall(self) -> None:
        c, rng = self.c, self.rng
        n = int(c.w * c.h / 900)
        if n == 0:
            return
        xs, ys = rng.integers(0, c.w, n), rng.integers(0, c.h, n)
        white = np.asarray(lit((250, 250, 255), self.light.ambient), np.float32)[:, None]
        c.px[:, ys, xs] += (white - c.px[:, ys, xs]) * 0.85
        big = rng.random(n) < 0.3
        for dx, dy in ((1, 0), (0, 1), (1, 1)):
            bx, by = np.minimum(xs[big] + dx, c.w - 1), np.minimum(ys[big] + dy, c.h - 1)
            c.px[:, by, bx] += (white - c.px[:, by, bx]) * 0.7

    # ---- the whole picture -----------------------------------------------------------------------------------

    def paint(self) -> Stage:
        c, layers, spec = self.c, self.layers, self.spec
        if self.time == "space" and not (layers - {"snow"}):
            self.space()
            return Stage(c.h * 0.92, c.h * 0.5, self.light.ambient, night=True, snowy=False)
        self.sky()
        if "mountains" in layers:
            self.mountains()
        ground = "snow" if "snow" in layers else "desert" if "desert" in layers else "hills"
        if "city" in layers:
            self.city()
        if "forest" in layers:
            self.forest()
        if self.water:
            self.water_plane()
            if spec.subject is not None or "beach" in spec.mods or "island" in spec.mods:
                self.shore(c.h * 0.84, "snow" if ground == "snow" else "beach")
        elif "desert" in layers:
            self.desert()
        elif "forest" in layers:
            # The trees reach the bottom; a strip of ground in front gives a subject somewhere to stand.
            self.shore(c.h * 0.87, ground)
        elif "city" in layers:
            self.ground_strip()
        else:
            self.hills(ground)
        if "misty" in spec.mods or "stormy" in spec.mods:
            self.fog()
        night = self.time == "night"
        return Stage(c.h * 0.95, c.h * 0.42, self.light.ambient, night=night, snowy="snow" in layers)

    def ground_strip(self) -> None:
        c = self.c
        colour = scale(self.colour("city"), 0.6)
        stops = ((self.horizon / c.h, colour), (1.0, scale(colour, 0.5)))
        c.fill_rows(c.rows_gradient(stops, self.horizon, c.h), self.horizon)


def studio(c: Canvas, spec: Spec, rng: np.random.Generator) -> None:
    """A backdrop for a lone subject: a softly lit wall and a floor, tinted by the prompt's first colour."""
    hues = ((120, 170, 210), (235, 190, 150), (170, 200, 160), (200, 170, 220), (230, 215, 170))
    base = spec.tints[0] if spec.tints else hues[int(rng.integers(len(hues)))]
    floor = int(c.h * 0.72)
    soft, f = c.soft()
    soft.fill_rows(soft.rows_gradient(((0.0, scale(base, 0.55)), (0.72, base), (1.0, base)), 0, soft.h), 0)
    soft.glow(soft.w * 0.5, soft.h * 0.4, c.s * 0.45 * f, (255, 250, 240), 0.35)
    c.upsample(soft, floor)
    c.fill_rows(c.rows_gradient(((floor / c.h, scale(base, 0.8)), (1.0, scale(base, 0.5))), floor, c.h), floor)
