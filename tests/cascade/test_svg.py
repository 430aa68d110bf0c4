"""The last-resort SVG: exact size, well-formed XML whatever the prompt, never an exception."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest

from cascade.svg import render_svg, svg_result
from cascade.types import ImageJob

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = [
    "",
    "<script>alert(1)</script>",
    'a "quoted" & \'single\' <tag attr="x">',
    "]]><!-- --><![CDATA[",
    "emoji 🙂🚀 and CJK 山水",
    "control \x00\x01\x08\x0b\x0c\x1f\x7f chars",
    "lone surrogates \ud800 \udfff and non-characters \ufffe \uffff",
    "&amp; &lt; &#0; &#x1F600; &bogus;",
    "x" * 10_000,
]


def _parse(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)


@pytest.mark.parametrize("size", [(1, 1), (64, 64), (65, 2047), (2048, 64), (1024, 768)])
def test_width_height_and_viewbox_are_exact(size: tuple[int, int]) -> None:
    root = _parse(render_svg("a red fox", size[0], size[1], 3))
    assert root.tag == f"{NS}svg"
    assert root.get("width") == str(size[0])
    assert root.get("height") == str(size[1])
    assert root.get("viewBox") == f"0 0 {size[0]} {size[1]}"


@pytest.mark.parametrize("prompt", HOSTILE)
def test_hostile_prompts_still_parse_and_show_as_text(prompt: str) -> None:
    svg = render_svg(prompt, 320, 200, 1)
    svg.decode("utf-8")
    root = _parse(svg)
    text = root.find(f"{NS}text")
    assert text is not None
    shown = text.text or ""
    assert "<script>" not in svg.decode("utf-8")
    for ch in shown:
        assert ch in "\t\n\r" or ord(ch) >= 0x20
    if prompt.startswith("<script>"):
        assert shown == prompt  # escaped, not dropped


def test_random_prompts_never_raise() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        prompt = "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(0, 60)))
        _parse(render_svg(prompt, rng.randrange(1, 3000), rng.randrange(1, 3000), rng.randrange(-(2**40), 2**40)))


def test_a_colour_word_colours_the_gradient() -> None:
    def top_colour(prompt: str) -> str:
        return render_svg(prompt, 64, 64, 0).decode().split('stop-color="#', 1)[1][:6]

    r, b = top_colour("red"), top_colour("blue")
    assert int(r[0:2], 16) > int(r[4:6], 16)
    assert int(b[4:6], 16) > int(b[0:2], 16)


def test_it_is_deterministic_and_seeded() -> None:
    assert render_svg("x", 100, 100, 1) == render_svg("x", 100, 100, 1)
    assert render_svg("x", 100, 100, 1) != render_svg("x", 100, 100, 2)


def test_svg_result_describes_the_image() -> None:
    result = svg_result(ImageJob(prompt="a <b> c", width=300, height=200, seed=5))
    assert result.mime == "image/svg+xml"
    assert result.provider == "svg"
    assert (result.width, result.height, result.seed) == (300, 200, 5)
    assert _parse(result.data).get("width") == "300"
