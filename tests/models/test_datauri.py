"""Base64 data URIs, the script protocol's image wire format."""

from __future__ import annotations

import pytest

from models.datauri import decode_data_uri, encode_data_uri


def test_round_trip() -> None:
    data = bytes(range(256))
    assert decode_data_uri(encode_data_uri("image/png", data)) == ("image/png", data)


def test_parameters_line_breaks_and_case_are_tolerated() -> None:
    assert decode_data_uri("data:Image/PNG;name=x.png;base64,YW\nJj ") == ("image/png", b"abc")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "abc",
        "data:image/png,abc",  # not base64
        "data:;base64,YWJj",  # no media type
        "data:image/png;base64,",  # empty
        "data:image/png;base64,@@@@",
        "data:image/png;base64,YWJ",  # bad padding
        "https://example.com/a.png",
    ],
)
def test_malformed_uris_raise_value_error(uri: str) -> None:
    with pytest.raises(ValueError):
        decode_data_uri(uri)
