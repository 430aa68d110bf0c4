from __future__ import annotations

import pytest

from cascade.config import Limits
from cascade.errors import RequestRejected
from cascade.schemas import decode_body, parse_request, parse_size

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
        ({"prompt": "lone \ud800 surrogate"}, "prompt"),
        ({"prompt": "p", "negative_prompt": "\udfff"}, "negative_prompt"),
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
