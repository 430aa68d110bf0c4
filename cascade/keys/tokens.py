"""API key material: making a key, naming it, hashing it.

A key reads `csk_<id>_<secret>`. `<id>` is 12 hex characters, public: it names the key in logs, in history
rows, in limit counters and in the CLI. `<secret>` is 32 random bytes (256 bits) as URL-safe base64. Only
SHA-256 of the whole key is stored; the key itself is shown once, when it is made.

Why plain SHA-256 and not argon2/bcrypt/scrypt: slow salted hashes exist to make guessing *low-entropy*
passwords expensive after the hashes leak. Nobody can guess a 256-bit random secret whatever the hash, so
the slowness would protect nothing, while it would cost tens of milliseconds of CPU on every request and
give anyone holding a stream of made-up keys a cheap way to burn the gateway's CPU. An unsalted hash also
lets the store find a key by its hash with one index lookup instead of scanning every row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

PREFIX = "csk_"
_ID_HEX_CHARS = 12
_SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of [A-Za-z0-9_-] without padding.
_SHAPE = re.compile(r"csk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: `key` is the only copy of the secret and never appears in a repr."""

    key_id: str
    key_hash: str
    key: str = field(repr=False)


def generate() -> NewKey:
    key_id = secrets.token_hex(_ID_HEX_CHARS // 2)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(key_id=key_id, key_hash=hash_key(key), key=key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, or None when the text cannot be one of our keys."""
    match = _SHAPE.fullmatch(key)
    return match.group(1) if match else None


def hashes_match(stored_hash: str, key: str) -> bool:
    """Constant-time: how much of the hash matched must not show in how long the answer took."""
    return hmac.compare_digest(stored_hash.encode("ascii"), hash_key(key).encode("ascii"))
