"""Find a secret in captured bytes however it was written: as is, URL-encoded, or inside base64 text."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus


def leaks(raw: bytes, secret: str, window: int = 12) -> list[str]:
    """Where any `window` characters of `secret` show in `raw`: plain, URL-encoded, or in any run of base64
    characters decoded at each of its four alignments. Written apart from cascade/scrub.py on purpose: the
    scan must not share the scrubber's idea of what an encoded secret looks like."""
    text = raw.decode("utf-8", "replace")
    pieces = {secret[i : i + window] for i in range(len(secret) - window + 1)}
    found = [f"plain {p!r}" for p in pieces if p in text or quote(p, safe="") in text or quote_plus(p) in text]
    for run in re.findall(r"[A-Za-z0-9+/_-]{16,}", text):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) // 4 * 4].replace("-", "+").replace("_", "/")
            try:
                decoded = base64.b64decode(chunk).decode("latin-1")
            except ValueError:
                continue
            found += [f"base64 {run[:20]}..." for p in pieces if p in decoded]
    return found
