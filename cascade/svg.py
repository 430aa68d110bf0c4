"""The last resort: a prompt-coloured SVG made in-process with the stdlib. It must not fail, whatever the prompt."""

from __future__ import annotations

import colorsys
import hashlib
import re
from xml.sax.saxutils import escape

from cascade.types import ImageJob, ImageResult

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF): one would make the
# document unparseable, so they go before escaping.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_TEXT = 160

# A few colour words tint the gradient so the fallback still answers the prompt a little.
_HUES: dict[str, float] = {
    "red": 0.0, "crimson": 0.97, "pink": 0.92, "orange": 0.07, "golden": 0.12, "gold": 0.12, "yellow": 0.15,
    "green": 0.33, "forest": 0.3, "teal": 0.47, "cyan": 0.5, "ocean": 0.55, "sea": 0.55, "blue": 0.62,
    "sky": 0.58, "night": 0.66, "purple": 0.78, "violet": 0.75, "magenta": 0.85, "sunset": 0.05,
}  # fmt: skip


def _hex(h: float, s: float, v: float) -> str:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _clean_text(prompt: str) -> str:
    text = _NOT_XML.sub("", prompt)
    text = " ".join(text.split())
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1].rstrip() + "…"
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def render_svg(prompt: str, width: int, height: int, seed: int) -> bytes:
    """An SVG document of exactly `width`×`height` showing a gradient, a few circles and the prompt."""
    width, height = max(1, int(width)), max(1, int(height))
    # Hash the prompt with the seed so the picture varies with both, deterministically. surrogatepass keeps a
    # lone surrogate in the prompt from raising here.
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode("utf-8", "surrogatepass")).digest()
    words = re.findall(r"[a-z]+", prompt.lower())
    hues = [_HUES[w] for w in words if w in _HUES]
    base = hues[0] if hues else digest[0] / 255.0
    accent = hues[1] if len(hues) > 1 else (base + 0.08 + digest[1] / 255.0 * 0.25) % 1.0
    top, bottom = _hex(base, 0.55, 0.95), _hex(accent, 0.75, 0.35)

    circles = []
    for i in range(5):
        b = digest[2 + i * 4 : 6 + i * 4]
        cx, cy = b[0] / 255.0 * width, b[1] / 255.0 * height
        r = (0.08 + b[2] / 255.0 * 0.22) * min(width, height)
        colour = _hex(base + (b[3] - 128) / 1024.0, 0.35, 1.0)
        circles.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{colour}" fill-opacity="0.25"/>')

    font = max(6.0, min(width / 24.0, height / 8.0))
    text = _clean_text(prompt)
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        "</linearGradient></defs>"
        f'<rect width="{width}" height="{height}" fill="url(#bg)"/>'
        + "".join(circles)
        + f'<text x="50%" y="{height - font * 1.2:.1f}" font-family="sans-serif" font-size="{font:.1f}" '
        f'fill="#ffffff" fill-opacity="0.9" text-anchor="middle">{text}</text>'
        "</svg>\n"
    )
    return svg.encode("utf-8")


def svg_result(job: ImageJob) -> ImageResult:
    data = render_svg(job.prompt, job.width, job.height, job.seed)
    return ImageResult(
        data=data, mime="image/svg+xml", width=job.width, height=job.height, seed=job.seed, provider="svg"
    )
