"""Encode and decode base64 `data:` URIs (the seed's wire format for images)."""

from __future__ import annotations

import base64
import binascii
import re

# Only base64 data URIs: every producer in the protocol emits them, and a percent-encoded image is not an image.
_DATA_URI = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(?:;[\w.+-]+=[^;,]*)*);base64,(?P<data>.*)", re.S)


def encode_data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """Return `(mime, bytes)`; ValueError when `uri` is not a well-formed base64 data URI."""
    match = _DATA_URI.fullmatch(uri.strip())
    if match is None:
        raise ValueError("not a base64 data URI (expected data:<type>/<subtype>;base64,<data>)")
    # Line breaks inside the payload are common in hand-made URIs and harmless.
    payload = re.sub(r"\s+", "", match["data"])
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad base64 in data URI: {exc}") from None
    if not data:
        raise ValueError("empty data URI")
    return match["mime"].lower(), data
