from __future__ import annotations

import pytest
from pydantic import ValidationError

from cascade.config import Limits
from cascade.errors import RequestRejected
from cascade.schemas import AttemptModel, GenerateResponse, ImageRequest, decode_body, parse_request, parse_size
from cascade.types import Attempt

LIMITS = Limits()


@pytest.mark.parametrize(
    ("text", "size"),
    [("800x600", (800, 600)), (" 64 X 2048 ", (64, 2048)), ("65x2047", (65, 2047)), ("2048x2048", (2048, 2048))],
)
def test_sizes_within_limits(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text, LIMITS) == size


@pytest.mark.parametrize("text", ["800", "axb", "63x64", "64x2049", "2049x64", "-5x10", "1e3x10", "99999999x1"])
def test_bad_sizes_name_the_field(text: str) -> None:
    with pytest.raises(RequestRejected) as err:
        parse_size(text, LIMITS)
    assert err.value.field == "size" and err.value.status == 422


def test_limits_are_config() -> None:
    small = Limits(max_side=128, max_pixels=10_000, max_prompt_chars=5)
    with pytest.raises(RequestRejected, match="megapixels"):
        parse_size("128x128", small)
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": "toolong", "size": "64x64"}, small)
    assert err.value.field == "prompt"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"prompt": "p", "local": "yes"}, "local"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "seed": 1.5}, "seed"),
        ({"prompt": "p", "steps": 0}, "steps"),
        ({"prompt": "p", "sise": "64x64"}, "sise"),
        ([1, 2], "body"),
        ({"prompt": "p", "guidance": "3"}, "guidance"),
        ({"prompt": "p", "translate": [0.5]}, "translate.1"),
        ({"prompt": "p", "translate": [0, 1e9]}, "translate.1"),
        ({"prompt": "p", "rotate": float("nan")}, "rotate"),
        ({"prompt": "p", "size": ""}, "size"),  # empty is bad, not missing (found by schemathesis)
        ({"prompt": "p", "output_format": "gif"}, "output_format"),
        ({"prompt": "p", "output_compression": 50}, "output_compression"),  # png has no quality
        ({"prompt": "p", "output_format": "jpeg", "output_compression": 101}, "output_compression"),
        ({"prompt": "p", "output_format": "png", "backend": "svg"}, "output_format"),
    ],
)
def test_bad_fields_are_named(body: object, field: str) -> None:
    with pytest.raises(RequestRejected) as err:
        parse_request(body, LIMITS)  # type: ignore[arg-type]
    assert err.value.field == field and err.value.status == 422


def test_defaults_and_extras() -> None:
    request, w, h = parse_request({"prompt": "a cat", "negative_prompt": "blurry", "steps": 8}, LIMITS)
    assert (w, h) == (1024, 1024) and request.local is False
    assert request.options() == {"negative_prompt": "blurry", "steps": 8}
    request, _, _ = parse_request({"prompt": "a face", "translate": [0.25, -1], "rotate": 10}, LIMITS)
    assert request.options() == {"translate": (0.25, -1), "rotate": 10}


@pytest.mark.parametrize(
    ("raw", "ctype", "status", "field"),
    [
        (b'{"prompt": "x"}', "text/plain", 415, "content-type"),
        (b'{"prompt": "x"}', None, 415, "content-type"),
        (b"{not json", "application/json", 400, "body"),
        (b"\xff\xfe", "application/json; charset=utf-8", 400, "body"),
        (b"[" * 300_000, "application/json", 413, "body"),
        (b"[" * 200_000 + b"]" * 200_000, "application/json", 413, "body"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "body"),
        (b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}", "application/json", 400, "body"),
    ],
)
def test_bodies_that_are_not_a_json_request(raw: bytes, ctype: str | None, status: int, field: str) -> None:
    with pytest.raises(RequestRejected) as err:
        decode_body(raw, ctype, LIMITS)
    assert (err.value.status, err.value.field) == (status, field)


@pytest.mark.parametrize(
    "extra",
    [
        {"seed": 0},
        {"seed": 2**32 - 1},
        {"steps": 1},
        {"steps": 200},
        {"guidance": 0},
        {"guidance": 50},
        {"truncation_psi": -2},
        {"truncation_psi": 2.0},
        {"class_label": 0},
        {"translate": [-1000, 1000]},
        {"translate": [1000.0, -1000.0]},
        {"rotate": -360},
        {"rotate": 360.0},
        {"negative_prompt": "n" * 4000},
        {"local": True},
    ],
)
def test_every_limit_is_inclusive_at_its_edge(extra: dict) -> None:
    request, _, _ = parse_request({"prompt": "p", **extra}, LIMITS)
    name, value = next(iter(extra.items()))
    assert getattr(request, name) == (tuple(value) if isinstance(value, list) else value)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"seed": 2**32}, "seed"),
        ({"steps": 201}, "steps"),
        ({"guidance": -0.01}, "guidance"),
        ({"guidance": 50.01}, "guidance"),
        ({"truncation_psi": -2.01}, "truncation_psi"),
        ({"truncation_psi": 2.01}, "truncation_psi"),
        ({"class_label": -1}, "class_label"),
        ({"translate": [-1000.5, 0]}, "translate.0"),
        ({"translate": [0, 1000.5]}, "translate.1"),
        ({"translate": [0, 0, 0]}, "translate"),
        ({"rotate": -360.5}, "rotate"),
        ({"rotate": 361}, "rotate"),
        ({"negative_prompt": "n" * 4001}, "negative_prompt"),
        ({"steps": True}, "steps"),  # JSON true is not 1
        ({"seed": "7"}, "seed"),
        ({"backend": 3}, "backend"),
        ({"size": 512}, "size"),
    ],
)
def test_one_past_every_limit_is_refused_naming_the_field(extra: dict, field: str) -> None:
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": "p", **extra}, LIMITS)
    assert (err.value.field, err.value.status) == (field, 422)


def test_a_prompt_of_exactly_the_limit_is_accepted_and_one_more_is_refused_with_its_length() -> None:
    request, _, _ = parse_request({"prompt": "x" * 4000}, LIMITS)
    assert len(request.prompt) == 4000
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": "x" * 4001}, LIMITS)
    assert str(err.value) == "prompt: longer than 4000 characters (4001)"
    # Surrounding spaces count: they reach the backend as they are.
    with pytest.raises(RequestRejected):
        parse_request({"prompt": " " + "x" * 3999 + " "}, LIMITS)


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_lone_surrogate_is_refused_with_our_message_in_either_text_field(field: str) -> None:
    body = {"prompt": "p", field: "lone \udfff surrogate"}
    with pytest.raises(RequestRejected) as err:
        parse_request(body, LIMITS)
    assert str(err.value) == f"{field}: not valid Unicode (holds an unpaired surrogate)"
    # A proper pair (an emoji) is fine.
    request, _, _ = parse_request({"prompt": "p", field: "a \U0001f600 b"}, LIMITS)
    assert getattr(request, field) == "a \U0001f600 b"


def test_an_empty_prompt_says_so() -> None:
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": " \n\t"}, LIMITS)
    assert str(err.value) == "prompt: must not be empty"


def test_the_pixel_limit_is_inclusive() -> None:
    limits = Limits(max_pixels=64 * 100)
    assert parse_size("64x100", limits) == (64, 100)
    for text in ("65x100", "64x101"):
        with pytest.raises(RequestRejected) as err:
            parse_size(text, limits)
        assert str(err.value) == f"size: {text} is over the limit of 0.0064 megapixels"


def test_size_messages_name_the_limits_and_quote_a_bad_value_in_part() -> None:
    with pytest.raises(RequestRejected) as err:
        parse_size("63x64", LIMITS)
    assert str(err.value) == "size: each side must be 64..2048 pixels, got 63x64"
    with pytest.raises(RequestRejected) as err:
        parse_size("y" * 100, LIMITS)
    assert str(err.value) == f"size: expected 'WIDTHxHEIGHT', e.g. '800x600', got {'y' * 40!r}"


def test_the_default_size_is_used_when_none_is_given() -> None:
    assert parse_request({"prompt": "p"}, Limits(default_size="320x200"))[1:] == (320, 200)
    assert parse_request({"prompt": "p", "size": "64×80"}, LIMITS)[1:] == (64, 80)


def test_falsy_extras_still_reach_the_backends() -> None:
    request, _, _ = parse_request(
        {"prompt": "p", "guidance": 0, "truncation_psi": 0, "class_label": 0, "rotate": 0, "negative_prompt": ""},
        LIMITS,
    )
    assert request.options() == {
        "negative_prompt": "",
        "guidance": 0,
        "truncation_psi": 0,
        "class_label": 0,
        "rotate": 0,
    }


def test_a_python_caller_s_request_model_is_checked_against_the_limits_too() -> None:
    with pytest.raises(RequestRejected) as err:
        parse_request(ImageRequest(prompt="x" * 50), Limits(max_prompt_chars=10))
    assert err.value.field == "prompt"
    with pytest.raises(RequestRejected) as err:
        parse_request(ImageRequest(prompt="a cat", size="4096x4096"), LIMITS)
    assert err.value.field == "size"
    request = ImageRequest(prompt="a cat", size="64x64")
    assert parse_request(request, LIMITS) == (request, 64, 64)


def test_the_body_limit_is_inclusive() -> None:
    limits = Limits(max_body_bytes=1024)
    exact = b'{"prompt": "' + b"x" * (1024 - 14) + b'"}'
    assert len(exact) == 1024
    assert decode_body(exact, "application/json", limits) == {"prompt": "x" * 1010}
    with pytest.raises(RequestRejected) as err:
        decode_body(exact + b" ", "application/json", limits)
    assert (err.value.status, str(err.value)) == (413, "body: over 1024 bytes")


@pytest.mark.parametrize("ctype", ["application/json", "Application/JSON; charset=utf-8", " application/json ;x=y"])
def test_json_content_types_with_parameters_and_any_case_are_accepted(ctype: str) -> None:
    assert decode_body(b'{"prompt": "x"}', ctype, LIMITS) == {"prompt": "x"}


def test_body_errors_say_what_is_wrong() -> None:
    with pytest.raises(RequestRejected) as err:
        decode_body(b"{}", None, LIMITS)
    assert str(err.value) == "content-type: expected application/json, got nothing"
    with pytest.raises(RequestRejected) as err:
        decode_body(b"{}", "text/plain; charset=utf-8", LIMITS)
    assert str(err.value) == "content-type: expected application/json, got text/plain"
    with pytest.raises(RequestRejected) as err:
        decode_body(b"[" * 100_000 + b"]" * 100_000, "application/json", LIMITS)
    assert str(err.value) == "body: JSON nested too deeply"
    with pytest.raises(RequestRejected) as err:
        decode_body(b"{nope", "application/json", LIMITS)
    assert str(err.value).startswith("body: not valid JSON (")


def _response() -> GenerateResponse:
    return GenerateResponse(
        data_uri="data:image/png;base64,AA==",
        content="/generated/x.png",
        saved="/generated/x.png",
        image_id="e5a8808d-3ab9-491e-ab38-9c2d292c85ad",
        provider="pillow",
        backend="pillow",
        width=8,
        height=6,
        seed=1,
        request_id="r1",
        attempts=[AttemptModel.of(Attempt("pillow", "ok", None, 14.2))],
    )


def test_the_response_body_uses_the_documented_names() -> None:
    assert _response().to_json() == {
        "dataUri": "data:image/png;base64,AA==",
        "content": "/generated/x.png",
        "saved": "/generated/x.png",
        "save_error": None,
        "image_id": "e5a8808d-3ab9-491e-ab38-9c2d292c85ad",
        "provider": "pillow",
        "backend": "pillow",
        "width": 8,
        "height": 6,
        "seed": 1,
        "request_id": "r1",
        "attempts": [{"backend": "pillow", "outcome": "ok", "error": None, "elapsed_ms": 14.2}],
        "meta": {},
    }


def test_with_several_bad_fields_the_first_in_the_documented_order_is_named() -> None:
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": 5, "seed": -1, "steps": 0}, LIMITS)
    assert err.value.field == "prompt"
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": "p", "steps": 0, "seed": -1}, LIMITS)
    assert err.value.field == "seed"


def test_a_parsed_request_cannot_be_changed_on_its_way_to_the_backends() -> None:
    request, _, _ = parse_request({"prompt": "p"}, LIMITS)
    with pytest.raises(ValidationError):
        request.prompt = "something else"  # type: ignore[misc]


def test_a_response_handed_to_a_python_caller_is_a_frozen_value() -> None:
    with pytest.raises(ValidationError):
        _response().seed = 2  # type: ignore[misc]


def test_output_format_and_compression_at_their_edges() -> None:
    for body in (
        {"prompt": "p", "output_format": "jpeg", "output_compression": 0},
        {"prompt": "p", "output_format": "webp", "output_compression": 100},
        {"prompt": "p", "output_format": "png", "backend": "pillow"},
        {"prompt": "p", "output_format": "png"},
    ):
        request, _, _ = parse_request(body, LIMITS)
        assert (request.output_format, request.output_compression) == (
            body["output_format"],
            body.get("output_compression"),
        )
    with pytest.raises(RequestRejected) as err:
        parse_request({"prompt": "p", "output_format": "webp", "output_compression": -1}, LIMITS)
    assert err.value.field == "output_compression"
