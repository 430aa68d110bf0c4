"""Secrets out of everything that leaves us, in every shape they come back in."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus, urlencode

import pytest

from models.scrub import REDACTED, scrub

# Characters a URL must encode, so the encoded form differs from the key itself.
KEY = "sk-proj/AbC+dEf=0123456789xyz"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        quote(KEY, safe=""),
        quote(KEY, safe="").lower(),  # some encoders write the hex digits in lower case
        quote_plus(KEY),
        urlencode({"api_key": KEY, "x": "1"}).replace("api_key", "k"),  # not a parameter name we know
        _b64(KEY.encode()),
        _b64(KEY.encode()).rstrip("="),
        base64.urlsafe_b64encode(KEY.encode()).decode(),
        # Inside a bigger base64 blob at each of the three byte alignments, e.g. a Basic auth header.
        _b64(b"user:" + KEY.encode()),
        _b64(b"ab:" + KEY.encode() + b":tail"),
        _b64(b"a:" + KEY.encode() + b"!"),
        json.dumps({"headers": {"authorization": _b64(b"x" + KEY.encode())}}),
    ],
)
def test_every_form_of_a_key_is_masked(echo: str) -> None:
    text = f"upstream said: {echo} (request 42)"

    clean = scrub(text, [KEY])

    assert REDACTED in clean
    assert KEY not in clean
    # What is left of an encoded key is at most the 1-2 bytes at its edges, never enough to rebuild it.
    assert quote(KEY, safe="").lower() not in clean.lower()
    for lead in range(3):
        middle = _b64(b"\0" * lead + KEY.encode())[8:-8]
        assert middle not in clean
    assert clean.startswith("upstream said: ") and clean.endswith(" (request 42)")


def test_ordinary_text_and_short_secrets_are_left_alone() -> None:
    text = "the sky is blue and base64 of nothing is empty"

    assert scrub(text, ["sky", None, ""]) == text
    assert scrub(text, ["sk-proj-0123456789abcdef"]) == text


# Credentials an error message can carry that we never sent ourselves, so no secret list can name them: a
# provider echoing the URL it was called with (Gemini's `?key=`), a SAS image URL (`sig=`, OpenAI's Azure blob
# links), a token in a redirect.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://g/v1beta/models/m?key=AIzaSyD-0123&alt=sse failed",
            "GET https://g/v1beta/models/m?key=***&alt=sse failed",
        ),
        ("https://blob/x.png?sv=2024&sig=a%2Bb%3D&se=1", "https://blob/x.png?sv=2024&sig=***&se=1"),
        ("https://gcs/x.png?signature=0a1b2c#frag", "https://gcs/x.png?signature=***#frag"),
        ("see https://cdn/x?TOKEN=t0k3n.", "see https://cdn/x?TOKEN=***"),
        (
            "'https://a/b?access_token=abc' and \"https://a/c?api_key=def\"",
            "'https://a/b?access_token=***' and \"https://a/c?api_key=***\"",
        ),
        ("https://a/b?apikey=x y", "https://a/b?apikey=*** y"),
        ("https://a/b?signature=x\nnext line", "https://a/b?signature=***\nnext line"),
        # Parameter names that only end like a credential's are left alone.
        ("https://a/b?monkey=1&keys=2&tokens=3", "https://a/b?monkey=1&keys=2&tokens=3"),
    ],
)
def test_credentials_in_urls_are_masked_without_being_told(text: str, expected: str) -> None:
    assert scrub(text, []) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdefghijklmnop.qrs", "Authorization: Bearer ***"),
        ("x-goog-api-key: Key AIzaSyD-0123456789abc", "x-goog-api-key: Key ***"),
        ("authorization: basic dXNlcjpzZWNyZXRzZWNyZXQ=", "authorization: basic ***"),
        ("Bearer short", "Bearer short"),  # too short for a credential: ordinary words stay
    ],
)
def test_credentials_in_echoed_headers_are_masked_without_being_told(text: str, expected: str) -> None:
    assert scrub(text, []) == expected


def test_a_secret_of_exactly_the_minimum_length_is_masked() -> None:
    assert scrub("the pin is 4821, really", ["4821"]) == "the pin is ***, really"
    assert scrub("the pin is 482, really", ["482"]) == "the pin is 482, really"


# A password whose base64 holds `+` and `/` at every alignment: where the standard and URL-safe alphabets differ.
SYMBOLS = "key>?>?~~~???>>>"


@pytest.mark.parametrize("key", [KEY, SYMBOLS])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("before", range(6))
@pytest.mark.parametrize("after", range(3))
def test_inside_base64_every_character_that_depends_on_the_key_alone_is_masked(
    key: str, encode: Callable[[bytes], bytes], before: int, after: int
) -> None:
    # A key inside a bigger blob (`Basic base64(user:key)`, a JSON body encoded whole): base64 packs 3 bytes into 4
    # characters, so every group made of key bytes only is masked, and what is left beside the mask is at most the
    # 1-2 key bytes sharing a group with their neighbours. The text around the key stays readable.
    raw = key.encode()
    # Neighbours whose top bits differ from padding's zeros, so no partial group matches by chance.
    blob = encode(b"~" * before + raw + b"~" * after).decode()
    first, last = 4 * -(-before // 3), 4 * ((before + len(raw)) // 3)  # the whole groups inside the key
    # The key's own standard base64 (no neighbours, padding and all) goes whole.
    alone = before % 3 == 0 and after == 0 and encode(raw) == base64.b64encode(raw)
    rest = "" if alone else blob[last:]

    assert scrub(f"auth: {blob}.", [key]) == f"auth: {blob[:first]}{REDACTED}{rest}."


def test_a_short_key_is_still_found_inside_base64() -> None:
    # 8 base64 characters (two groups, 6 bytes) is the shortest piece masked inside a blob.
    blob = base64.b64encode(b"u:" + b"k3y-0123" + b"!").decode()
    assert "***" in scrub(blob, ["k3y-0123"])
