"""The Pillow backend's procedural painter: deterministic, exact sizes, prompt-aware, and the script protocol."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.datauri import decode_data_uri
from models.local.generate_cpu_image import generate_png, render
from models.seeds import stable_seed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "models" / "local" / "generate_cpu_image.py"


def _decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _pixels(prompt: str, seed: int = 1, size: tuple[int, int] = (128, 128)) -> np.ndarray:
    return np.asarray(render(prompt, size[0], size[1], seed), dtype=np.float64)


def test_the_same_inputs_give_the_same_bytes() -> None:
    assert generate_png("sunset over the ocean", 200, 150, 42) == generate_png("sunset over the ocean", 200, 150, 42)


@pytest.mark.parametrize("a, b", [("a friendly robot", "a friendly cat"), ("galaxy", "city at night"), ("x", "y")])
def test_different_prompts_give_different_images(a: str, b: str) -> None:
    assert not np.array_equal(_pixels(a), _pixels(b))


@pytest.mark.parametrize("prompt", ["a red fox in a snowy forest", "purple and orange", "xyzzy"])
def test_different_seeds_give_different_images(prompt: str) -> None:
    assert not np.array_equal(_pixels(prompt, seed=1), _pixels(prompt, seed=2))


@pytest.mark.parametrize("size", [(65, 2047), (2048, 64), (64, 64), (1000, 333)])
@pytest.mark.parametrize("prompt", ["sunset over the ocean", "a friendly robot", "galaxy", "a portrait of a woman"])
def test_the_image_is_exactly_the_requested_size(size: tuple[int, int], prompt: str) -> None:
    image = _decode(generate_png(prompt, size[0], size[1], 7))
    assert image.format == "PNG"
    assert image.mode == "RGB"
    assert image.size == size


def test_the_png_is_a_real_picture_not_a_blank() -> None:
    pixels = np.asarray(_decode(generate_png("city at night", 256, 256, 3)))
    assert pixels.std() > 10
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


def test_a_colour_word_shifts_the_palette() -> None:
    red, blue = _pixels("red"), _pixels("blue")
    assert red[..., 0].mean() > red[..., 2].mean() + 40
    assert blue[..., 2].mean() > blue[..., 0].mean() + 40


def test_a_colour_word_tints_a_scene_too() -> None:
    def blue_over_green(px: np.ndarray) -> float:
        return float(px[..., 2].mean() / px[..., 1].mean())

    plain, purple = _pixels("mountains at dusk"), _pixels("purple mountains at dusk")
    assert blue_over_green(purple) > blue_over_green(plain) * 1.05


def test_night_is_darker_than_day() -> None:
    assert _pixels("a lake at night").mean() < _pixels("a lake on a sunny day").mean() - 40


def test_every_prompt_gives_an_image_even_odd_ones() -> None:
    for prompt in ["", " ", "🙂<&>\x00", "a" * 4000, "robot cat dog fox person bird flower house tree"]:
        assert render(prompt, 64, 64, 0).size == (64, 64)


def test_a_bad_size_is_refused() -> None:
    with pytest.raises(ValueError):
        render("x", 0, 64, 1)


def _run(*argv: str, stdin: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, *argv], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("argv", [(str(SCRIPT),), ("-m", "models.local.generate_cpu_image")])
def test_the_script_answers_with_a_data_uri_of_the_requested_size(argv: tuple[str, ...]) -> None:
    code, answer = _run(*argv, stdin=json.dumps({"prompt": "a friendly robot", "size": "320x200", "seed": 9}))
    assert code == 0
    mime, data = decode_data_uri(answer["dataUri"])
    assert mime == "image/png"
    assert _decode(data).size == (320, 200)
    assert data == generate_png("a friendly robot", 320, 200, 9)


def test_the_script_works_from_another_directory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=json.dumps({"prompt": "galaxy", "size": "64x80"}),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _decode(decode_data_uri(json.loads(proc.stdout)["dataUri"])[1]).size == (64, 80)


def test_the_script_defaults_to_1024_square_and_the_prompt_s_stable_seed() -> None:
    code, answer = _run(str(SCRIPT), stdin=json.dumps({"prompt": "a lighthouse", "negative_prompt": "ignored"}))
    assert code == 0
    assert answer["seed"] == stable_seed("a lighthouse")
    _, data = decode_data_uri(answer["dataUri"])
    assert data == generate_png("a lighthouse", 1024, 1024, stable_seed("a lighthouse"))


@pytest.mark.parametrize(
    "request_, fragment",
    [
        ({"prompt": "x", "size": "10x10"}, "64..2048"),
        ({"prompt": "x", "size": "4096x512"}, "64..2048"),
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "size": 512}, "size"),
        ({"prompt": ""}, "prompt"),
        ({"size": "64x64"}, "prompt"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "seed": "7"}, "seed"),
        (["not", "an", "object"], "object"),
    ],
)
def test_bad_input_gives_an_error_object_and_exit_code_2(request_: object, fragment: str) -> None:
    code, answer = _run(str(SCRIPT), stdin=json.dumps(request_))
    assert code == 2
    assert set(answer) == {"error"}
    assert fragment in answer["error"]


def test_input_that_is_not_json_gives_exit_code_2() -> None:
    code, answer = _run(str(SCRIPT), stdin="prompt=robot")
    assert code == 2
    assert "not JSON" in answer["error"]
