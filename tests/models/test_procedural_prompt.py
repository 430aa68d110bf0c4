"""Reading a prompt into a scene: time of day, terrain, subject, and where each colour word goes."""

from __future__ import annotations

from models.local.procedural.prompt import COLOURS, read_prompt


def test_a_scene_prompt() -> None:
    spec = read_prompt("A red fox in a snowy forest")
    assert spec.subject == "fox"
    assert spec.layers == {"forest", "snow"}
    assert spec.painted == {"subject": COLOURS["red"]}
    assert not spec.abstract


def test_time_of_day() -> None:
    assert read_prompt("sunset over the ocean").time == "sunset"
    assert read_prompt("city at night").time == "night"
    assert read_prompt("a spiral galaxy").time == "space"
    assert read_prompt("mountains").time is None


def test_a_colour_before_nothing_it_can_paint_tints_the_picture() -> None:
    spec = read_prompt("red")
    assert spec.abstract
    assert spec.tints == (COLOURS["red"],)
    assert spec.painted == {}


def test_colours_bind_to_the_nearest_following_thing() -> None:
    spec = read_prompt("purple mountains and a golden sky")
    assert spec.painted == {"mountains": COLOURS["purple"], "sky": COLOURS["golden"]}


def test_unknown_words_make_an_abstract_prompt() -> None:
    assert read_prompt("quantum entanglement of feelings").abstract
