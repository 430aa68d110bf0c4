"""The shared script protocol: field readers, and `run`'s one-JSON-object-out contract with its exit statuses."""

from __future__ import annotations

import io
import json
import pickle
import sys
from typing import Any

import pytest

from models.protocol import (
    BadRequest,
    GenerationFailed,
    number,
    optional_int,
    parse_size,
    read_request,
    required_str,
    run,
)


@pytest.mark.parametrize(
    "text, size",
    [("1024x768", (1024, 768)), (" 64 X 80 ", (64, 80)), ("3×5", (3, 5)), ("4096x1", (4096, 1)), ("01x02", (1, 2))],
)
def test_parse_size_reads_width_by_height(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("value", ["big", "64", "64x", "x64", "-1x5", "1.5x2", "64x64x64", "123456x1", "", 512, None])
def test_parse_size_refuses_what_is_not_a_size(value: object) -> None:
    with pytest.raises(BadRequest, match="size must look like WIDTHxHEIGHT"):
        parse_size(value)


@pytest.mark.parametrize("text", ["0x10", "4097x10", "10x4097"])
def test_parse_size_refuses_sides_out_of_the_default_range(text: str) -> None:
    with pytest.raises(BadRequest, match=r"1\.\.4096"):
        parse_size(text)


def test_parse_size_takes_the_model_s_own_limits() -> None:
    assert parse_size("64x2048", 64, 2048) == (64, 2048)
    with pytest.raises(BadRequest, match=r"64\.\.2048, got 63x100"):
        parse_size("63x100", 64, 2048)


def test_a_long_bad_size_is_quoted_only_in_part() -> None:
    with pytest.raises(BadRequest) as info:
        parse_size("x" * 10_000)
    assert len(str(info.value)) < 100


def test_optional_int() -> None:
    assert optional_int({}, "seed") is None
    assert optional_int({"seed": None}, "seed") is None
    assert optional_int({"seed": -3}, "seed") == -3
    assert optional_int({"seed": 0}, "seed", min_value=0, max_value=9) == 0
    assert optional_int({"seed": 2**70}, "seed") == 2**70


@pytest.mark.parametrize("value", [True, False, 7.0, "7", [7], {"v": 7}])
def test_optional_int_refuses_what_is_not_an_int(value: object) -> None:
    with pytest.raises(BadRequest, match=r"^seed must be an integer, got "):
        optional_int({"seed": value}, "seed")


def test_optional_int_checks_bounds_and_names_them() -> None:
    with pytest.raises(BadRequest, match=r"seed must be an integer in 0\.\.9, got 10"):
        optional_int({"seed": 10}, "seed", min_value=0, max_value=9)
    with pytest.raises(BadRequest, match=r"steps must be an integer in 1\.\., got 0"):
        optional_int({"steps": 0}, "steps", min_value=1)
    with pytest.raises(BadRequest, match=r"in 1\.\., got '2'"):  # a wrong type with bounds: no comparison error
        optional_int({"steps": "2"}, "steps", min_value=1)


def test_number() -> None:
    assert number({}, "trunc", 0.7) == 0.7
    assert number({"trunc": 1}, "trunc", 0.7) == 1.0
    assert isinstance(number({"trunc": 1}, "trunc", 0.7), float)
    assert number({"trunc": -2.5}, "trunc", 0.7) == -2.5


@pytest.mark.parametrize("value", [None, True, "1", [1], float("nan"), float("inf")])
def test_number_refuses_what_is_not_a_finite_number(value: object) -> None:
    with pytest.raises(BadRequest, match="trunc must be a number"):
        number({"trunc": value}, "trunc", 1.0)


def test_required_str() -> None:
    assert required_str({"prompt": " a cat "}, "prompt") == " a cat "
    for request in ({}, {"prompt": ""}, {"prompt": " \n"}, {"prompt": 5}, {"prompt": None}):
        with pytest.raises(BadRequest, match="prompt must be a non-empty string"):
            required_str(request, "prompt")


def test_read_request_decodes_one_object() -> None:
    assert read_request(io.StringIO(' {"prompt": "x"}\n')) == {"prompt": "x"}


def _run(stdin: str, handle: Any) -> tuple[int, dict[str, Any], str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(handle, io.StringIO(stdin), out, err)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # exactly one line: one JSON object
    return code, json.loads(text), text, err.getvalue()


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    return {"dataUri": "data:image/png;base64,AA==", "got": request}


def test_run_answers_with_handle_s_object_and_status_0() -> None:
    code, answer, _, err = _run('{"prompt": "a cat", "size": "64x64"}', _echo)
    assert code == 0
    assert answer == {"dataUri": "data:image/png;base64,AA==", "got": {"prompt": "a cat", "size": "64x64"}}
    assert err == ""


@pytest.mark.parametrize(
    "stdin, fragment",
    [
        ("prompt=robot", "input is not JSON (JSONDecodeError: "),
        ('{"prompt": "x"', "input is not JSON"),
        ('{"a": 1} {"b": 2}', "input is not JSON"),
        ("[" * 100_000, "input is not JSON"),
        ("", "no input"),
        (" \n", "no input"),
        ('["not", "an", "object"]', "input must be a JSON object, got list"),
        ("null", "input must be a JSON object, got NoneType"),
        ('"a string"', "input must be a JSON object, got str"),
    ],
)
def test_input_that_is_not_one_json_object_is_a_bad_request(stdin: str, fragment: str) -> None:
    called: list[object] = []
    code, answer, _, err = _run(stdin, called.append)
    assert code == 2
    assert set(answer) == {"error"} and fragment in answer["error"]
    assert err == answer["error"] + "\n"
    assert called == []


def test_undecodable_bytes_on_stdin_are_a_bad_request() -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"prompt": "\xff\xfe"}'), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert run(_echo, stdin, out, err) == 2
    assert "not UTF-8" in json.loads(out.getvalue())["error"]


def test_bad_request_from_handle_gives_its_message_as_is_and_status_2() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise BadRequest("size must look like WIDTHxHEIGHT, got 'big'")

    code, answer, _, err = _run('{"size": "big"}', handle)
    assert (code, answer) == (2, {"error": "size must look like WIDTHxHEIGHT, got 'big'"})
    assert "size must look like" in err


def test_any_other_exception_gives_its_type_and_status_1() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("CUDA out of memory")

    code, answer, _, err = _run("{}", handle)
    assert (code, answer) == (1, {"error": "RuntimeError: CUDA out of memory"})
    assert "CUDA out of memory" in err


def test_a_value_error_that_is_not_a_bad_request_is_a_failure() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("math domain error")

    assert _run("{}", handle)[:2] == (1, {"error": "ValueError: math domain error"})


def test_generation_failed_carries_its_fields_into_the_error_object() -> None:
    attempts = [{"backend": "remote:openai", "outcome": "error", "error": "refused", "elapsed_ms": 3.0}]

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise GenerationFailed("refused by openai", {"attempts": attempts, "error": "not this one"})

    code, answer, _, err = _run("{}", handle)
    assert (code, answer) == (1, {"error": "refused by openai", "attempts": attempts})
    assert err == "refused by openai\n"


def test_generation_failed_with_unwritable_fields_still_reports_the_error() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise GenerationFailed("no image", {"attempts": object()})

    assert _run("{}", handle)[:2] == (1, {"error": "no image"})


def test_an_answer_json_cannot_carry_becomes_an_error_object() -> None:
    for bad in ({"dataUri": object()}, {"score": float("nan")}):
        code, answer, _, _ = _run("{}", lambda request, bad=bad: bad)
        assert code == 1 and set(answer) == {"error"}


def test_what_handle_prints_goes_to_stderr_not_into_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    def chatty(request: dict[str, Any]) -> dict[str, Any]:
        print("Loading pipeline components...")
        return {"dataUri": "data:image/png;base64,AA=="}

    code, answer, text, err = _run("{}", chatty)
    assert code == 0 and answer == {"dataUri": "data:image/png;base64,AA=="}
    assert "Loading" in err and "Loading" not in text
    assert capsys.readouterr().out == ""


def test_run_defaults_to_the_process_streams(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"prompt": "x"}'))
    assert run(_echo) == 0
    assert json.loads(capsys.readouterr().out)["got"] == {"prompt": "x"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("[]"))
    assert run(_echo) == 2
    captured = capsys.readouterr()
    assert "object" in json.loads(captured.out)["error"] and "object" in captured.err


def test_a_long_bad_value_is_quoted_in_its_first_40_characters() -> None:
    with pytest.raises(BadRequest) as info:
        parse_size("x" * 10_000)
    assert str(info.value) == "size must look like WIDTHxHEIGHT, got '" + "x" * 38 + "…"
    with pytest.raises(BadRequest) as info:
        parse_size("y" * 38)  # its repr is exactly 40 characters: quoted whole
    assert str(info.value) == "size must look like WIDTHxHEIGHT, got '" + "y" * 38 + "'"


def test_optional_int_bounds_are_inclusive_at_both_ends() -> None:
    assert optional_int({"steps": 1}, "steps", min_value=1, max_value=50) == 1
    assert optional_int({"steps": 50}, "steps", min_value=1, max_value=50) == 50
    with pytest.raises(BadRequest, match=r"^steps must be an integer in 1\.\.50, got 51$"):
        optional_int({"steps": 51}, "steps", min_value=1, max_value=50)
    with pytest.raises(BadRequest, match=r"^steps must be an integer in \.\.50, got 51$"):
        optional_int({"steps": 51}, "steps", max_value=50)


def test_parse_size_bounds_are_inclusive_at_both_ends() -> None:
    assert parse_size("1x4096") == (1, 4096)
    assert parse_size("64x64", 64, 64) == (64, 64)
    for text in ("63x64", "64x63", "65x64", "64x65"):
        with pytest.raises(BadRequest, match=rf"^each side of size must be 64\.\.64, got {text}$"):
            parse_size(text, 64, 64)


def test_number_keeps_the_default_only_when_the_key_is_absent() -> None:
    assert number({"psi": 0}, "psi", 0.7) == 0.0
    assert number({"psi": -0.0}, "psi", 0.7) == 0.0
    with pytest.raises(BadRequest, match=r"^psi must be a number, got None$"):
        number({"psi": None}, "psi", 0.7)


def test_generation_failed_with_fields_json_cannot_carry_still_reports_the_error() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise GenerationFailed("no image", {"score": float("nan"), "attempts": []})

    code, answer, text, _ = _run("{}", handle)
    assert (code, answer) == (1, {"error": "no image"})
    assert "NaN" not in text  # what Python's json would write, and no other JSON parser reads


def test_generation_failed_keeps_its_message_and_fields() -> None:
    failed = GenerationFailed("refused by openai", {"attempts": [1]})
    assert (str(failed), failed.message, failed.fields) == ("refused by openai", "refused by openai", {"attempts": [1]})
    assert GenerationFailed("no image").fields == {}


def test_bounds_must_be_named_so_a_minimum_is_never_taken_for_a_maximum() -> None:
    with pytest.raises(TypeError):
        optional_int({"steps": 5}, "steps", 1, 50)  # type: ignore[misc]


def test_generation_failed_carries_every_field_but_error() -> None:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        raise GenerationFailed("no image", {"seed": 5, "provider": "fal", "attempts": [], "error": "dropped"})

    assert _run("{}", handle)[:2] == (1, {"error": "no image", "seed": 5, "provider": "fal", "attempts": []})


def test_the_answer_is_on_the_pipe_when_run_returns_not_only_at_exit() -> None:
    # A script whose native libraries end it hard after `run` (os._exit, a crash in a CUDA teardown) must still
    # have delivered its answer: a pipe's stdout is block-buffered, so `run` flushes it itself.
    pipe = io.BytesIO()
    stdout = io.TextIOWrapper(io.BufferedWriter(pipe, buffer_size=1 << 16), encoding="utf-8")
    assert run(_echo, stdin=io.StringIO('{"prompt": "a cat"}'), stdout=stdout, stderr=io.StringIO()) == 0
    assert json.loads(pipe.getvalue())["got"] == {"prompt": "a cat"}


@pytest.mark.parametrize(
    "made",
    [
        lambda: GenerationFailed("no image", {"attempts": [1]}),
        lambda: GenerationFailed("no image", fields={"attempts": [1]}),
    ],
)
def test_generation_failed_keeps_message_and_fields_through_pickling_as_ray_sends_it(made: Any) -> None:
    # A backend's failure crosses processes pickled; pickle rebuilds an exception from its args alone.
    again = pickle.loads(pickle.dumps(made()))
    assert (str(again), again.message, again.fields) == ("no image", "no image", {"attempts": [1]})
