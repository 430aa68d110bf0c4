"""The last-resort SVG: exact size, well-formed XML whatever the prompt, never an exception."""

from __future__ import annotations

import colorsys
import hashlib
import random
import re
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


def _hsv(colour: str) -> tuple[float, float, float]:
    assert re.fullmatch(r"#[0-9a-f]{6}", colour), colour
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)


def _hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def _gradient(root: ET.Element) -> tuple[str, str]:
    top, bottom = root.iter(f"{NS}stop")
    return top.get("stop-color") or "", bottom.get("stop-color") or ""


@pytest.mark.parametrize(("word", "hue"), [("crimson", 0.97), ("golden", 0.12), ("teal", 0.47), ("violet", 0.75)])
def test_a_colour_word_sets_the_hue_of_the_light_top_and_the_dark_bottom(word: str, hue: float) -> None:
    top, bottom = _gradient(_parse(render_svg(f"a {word} landscape", 64, 64, 7)))
    h, s, v = _hsv(top)
    assert _hue_distance(h, hue) < 0.01 and abs(s - 0.55) < 0.01 and abs(v - 0.95) < 0.01
    h2, s2, v2 = _hsv(bottom)
    assert abs(s2 - 0.75) < 0.02 and abs(v2 - 0.35) < 0.01
    # With one colour word, the bottom's hue is a little way round the wheel from the top's.
    assert 0.07 <= _hue_distance(h2, hue) <= 0.34


def test_a_second_colour_word_colours_the_bottom() -> None:
    top, bottom = _gradient(_parse(render_svg("green hills under a purple sky", 64, 64, 3)))
    assert _hue_distance(_hsv(top)[0], 0.33) < 0.01
    assert _hue_distance(_hsv(bottom)[0], 0.78) < 0.01


def test_without_a_colour_word_the_colours_follow_the_seed() -> None:
    tops = {_gradient(_parse(render_svg("a quiet afternoon", 64, 64, seed)))[0] for seed in range(8)}
    assert len(tops) > 4
    for top in tops:
        assert abs(_hsv(top)[1] - 0.55) < 0.01 and abs(_hsv(top)[2] - 0.95) < 0.01


@pytest.mark.parametrize(("width", "height"), [(400, 300), (64, 2048), (2048, 64), (1, 1)])
@pytest.mark.parametrize(("word", "hue"), [("red", 0.0), ("green", 0.33), ("blue", 0.62)])
def test_five_faint_circles_lie_within_the_picture(width: int, height: int, word: str, hue: float) -> None:
    for seed in range(6):
        root = _parse(render_svg(f"{word} dots {seed}", width, height, seed))
        circles = list(root.iter(f"{NS}circle"))
        assert len(circles) == 5
        radii = []
        for circle in circles:
            cx, cy, r = (float(circle.get(k) or "nan") for k in ("cx", "cy", "r"))
            assert 0 <= cx <= width and 0 <= cy <= height
            # 8 % to 30 % of the shorter side (to the attribute's 0.1 rounding).
            assert 0.08 * min(width, height) - 0.05 <= r <= 0.30 * min(width, height) + 0.05
            radii.append(r)
            assert circle.get("fill-opacity") == "0.25"
            h, s, v = _hsv(circle.get("fill") or "")
            assert abs(s - 0.35) < 0.01 and v == 1.0
            assert _hue_distance(h, hue) <= 0.126  # pale tints of the base hue
        if min(width, height) >= 64:
            assert len(set(radii)) > 1


@pytest.mark.parametrize(
    ("width", "height", "font", "baseline"),
    [(480, 400, "20.0", "376.0"), (2048, 64, "8.0", "54.4"), (100, 100, "6.0", "92.8"), (1, 1, "6.0", "-6.2")],
)
def test_the_prompt_is_set_large_enough_to_read_near_the_bottom(
    width: int, height: int, font: str, baseline: str
) -> None:
    # width/24 or height/8, whichever is smaller, but never under 6 px.
    text = _parse(render_svg("a fox", width, height, 1)).find(f"{NS}text")
    assert text is not None
    assert (text.get("font-size"), text.get("y"), text.get("x")) == (font, baseline, "50%")
    assert (text.get("text-anchor"), text.get("fill")) == ("middle", "#ffffff")


def test_long_prompts_are_cut_to_160_characters_and_whitespace_is_collapsed() -> None:
    def shown(prompt: str) -> str:
        text = _parse(render_svg(prompt, 320, 200, 1)).find(f"{NS}text")
        return "" if text is None else text.text or ""

    assert shown("a   quiet\n\tlake  ") == "a quiet lake"
    assert shown("x" * 160) == "x" * 160
    assert shown("x" * 161) == "x" * 159 + "…"
    assert shown("y" * 158 + "   zz") == "y" * 158 + "…"  # no space left before the ellipsis


def test_svg_result_keeps_the_job_s_seed_for_the_picture() -> None:
    job = ImageJob(prompt="a red fox", width=120, height=90, seed=42)
    assert svg_result(job).data == render_svg("a red fox", 120, 90, 42)
    assert svg_result(job).data != svg_result(ImageJob(prompt="a red fox", width=120, height=90, seed=43)).data


@pytest.mark.parametrize(("width", "height"), [(0, 0), (-5, 10), (10, -1)])
def test_a_size_below_one_pixel_still_gives_a_valid_picture(width: int, height: int) -> None:
    root = _parse(render_svg("x", width, height, 1))
    assert (root.get("width"), root.get("height")) == (str(max(1, width)), str(max(1, height)))


def test_without_a_second_colour_word_the_bottom_is_a_neighbouring_hue_a_little_further_round() -> None:
    for prompt in ("a quiet afternoon", "a blue afternoon"):
        aheads = []
        for seed in range(16):
            top, bottom = _gradient(_parse(render_svg(prompt, 64, 64, seed)))
            aheads.append((_hsv(bottom)[0] - _hsv(top)[0]) % 1.0)
        assert all(0.07 <= ahead <= 0.34 for ahead in aheads), (prompt, aheads)
        assert max(aheads) - min(aheads) > 0.1  # how far round depends on the seed


def test_the_circles_are_tinted_differently() -> None:
    for seed in range(8):
        fills = {c.get("fill") for c in _parse(render_svg("blue", 300, 200, seed)).iter(f"{NS}circle")}
        assert len(fills) > 1


def test_the_circles_are_scattered_over_the_whole_picture() -> None:
    centres = [
        (float(c.get("cx") or "nan") / 300, float(c.get("cy") or "nan") / 200)
        for seed in range(8)
        for c in _parse(render_svg("a quiet afternoon", 300, 200, seed)).iter(f"{NS}circle")
    ]
    for axis in (0, 1):
        assert any(c[axis] < 0.5 for c in centres) and any(c[axis] > 0.5 for c in centres)


@pytest.mark.parametrize(
    ("prompt", "width", "height", "seed", "sha256"),
    [
        ("a lighthouse at dusk", 512, 384, 7, "f6aa12b62c7ebc85a6f84891b6900e91accddc274f68090128f1750198ac3fb9"),
        ("a lighthouse at dusk", 512, 384, 42, "d6f109da154dc82dd1947397ddcb43e624e16d858585eeb6730be8dce740c432"),
        ("a golden sunset over hills", 512, 384, 0, "9c7b5308e05fe29c5052788d3966b5434b6284f273d0a6ff82dc1ae43ee0856a"),
        ("a red fox in the snow", 640, 480, 0, "2e1c0218d2673dd3c56f200affa1c8f1304734e5b3e723f659bcfaedd684ff1d"),
        (
            "blue sea under a purple sky",
            300,
            700,
            2**32 - 1,
            "c469413850536898ca1b34573aff0f115eda30c40656a8127ea3ec78076e3d12",
        ),
    ],
)
def test_the_same_prompt_and_seed_give_the_same_picture_in_every_release(
    prompt: str, width: int, height: int, seed: int, sha256: str
) -> None:
    # README: "the same prompt gives the same image". Not only within one process: on every replica, and after an
    # upgrade, so a saved picture can be made again. A change to the drawing must change these on purpose.
    assert hashlib.sha256(render_svg(prompt, width, height, seed)).hexdigest() == sha256
