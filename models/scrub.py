"""Masking secrets in text that leaves us: attempt errors, log lines, script stderr.

A key can come back in more shapes than the one we sent: URL-encoded (in a query string a proxy echoes), base64
(inside a Basic auth header or a JSON blob) at any of the three byte alignments. Every shape is masked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

REDACTED = "***"
# A very short "secret" would mask ordinary words; real keys are long.
MIN_SECRET_CHARS = 4
# Below this a base64 fragment could be an ordinary word too.
_MIN_FRAGMENT_CHARS = 8

# Credentials that may sit in a URL or an echoed header even when we never put them there ourselves.
_URL_SECRET = re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|sig|signature)=)[^&#\s\"']+")
_AUTH_SECRET = re.compile(r"(?i)\b(bearer|key|basic)\s+[A-Za-z0-9._~+/=:-]{16,}")


def _b64_fragments(raw: bytes) -> list[str]:
    """The base64 text that encodes `raw` whatever bytes surround it: one fragment per alignment (mod 3)."""
    fragments = []
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + raw).decode("ascii")
        # Only whole 3-byte groups that lie inside `raw` encode to characters that depend on `raw` alone.
        first_group = -(-lead // 3)
        last_group = (lead + len(raw)) // 3
        fragment = encoded[4 * first_group : 4 * last_group]
        if len(fragment) >= _MIN_FRAGMENT_CHARS:
            fragments.append(fragment)
            fragments.append(fragment.replace("+", "-").replace("/", "_"))  # the URL-safe alphabet
    return fragments


def encoded_forms(secret: str) -> tuple[set[str], set[str]]:
    """The shapes one secret can come back in: (exact forms, percent-encoded forms whose hex may be any case)."""
    raw = secret.encode("utf-8")
    whole = base64.b64encode(raw).decode("ascii")
    exact = {secret, whole, whole.rstrip("="), *_b64_fragments(raw)}
    return exact, {quote(secret, safe=""), quote_plus(secret, safe="")} - {secret}


@lru_cache(maxsize=256)
def _patterns(secret: str) -> tuple[re.Pattern[str], ...]:
    exact, percent = encoded_forms(secret)
    # Longest first, so a whole padded form goes before the fragment inside it.
    patterns = [re.compile(re.escape(form)) for form in sorted(exact, key=len, reverse=True)]
    patterns += [re.compile(re.escape(form), re.IGNORECASE) for form in percent]
    return tuple(patterns)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (in every form above) and anything that looks like a credential masked."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            for pattern in _patterns(secret):
                text = pattern.sub(REDACTED, text)
    text = _URL_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return _AUTH_SECRET.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
