"""Object names: unique, time-first (so a listing is in time order), matched in full before any lookup."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

EXTENSION_BY_MIME = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/svg+xml": "svg"}
MIME_BY_EXTENSION = {ext: mime for mime, ext in EXTENSION_BY_MIME.items()}

_STAMP = "%Y%m%dT%H%M%S"
# Names this version makes: time, backend, 64 random bits. Only these are ever swept.
_KEY = re.compile(r"([0-9]{8}T[0-9]{6})-[a-z0-9_]{1,32}-[0-9a-f]{16}\.(png|jpg|webp|svg)")
# Names an earlier version made (48 random bits, a JSON record beside each in the folder): still served, never swept.
_LEGACY = re.compile(r"([0-9]{8}T[0-9]{6})-[a-z0-9_]{1,32}-[0-9a-f]{12}\.(png|jpg|webp|svg)")


def new_key(backend: str, mime: str, now: datetime | None = None) -> str:
    """ValueError for a type we do not store."""
    ext = EXTENSION_BY_MIME.get(mime)
    if ext is None:
        raise ValueError(f"cannot store images of type {mime!r}")
    slug = re.sub(r"[^a-z0-9_]", "_", backend.lower())[:32] or "image"
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{when.strftime(_STAMP)}-{slug}-{secrets.token_hex(8)}.{ext}"


def is_servable(name: str) -> bool:
    # fullmatch, not match + `$`: `$` also matches before a trailing newline.
    return _KEY.fullmatch(name) is not None or _LEGACY.fullmatch(name) is not None


def is_current(name: str) -> bool:
    return _KEY.fullmatch(name) is not None


def mime_of(name: str) -> str:
    return MIME_BY_EXTENSION[name.rsplit(".", 1)[1]]


def stamp(when: datetime) -> str:
    """The name prefix of objects made at `when`: names compare as their times do."""
    return when.astimezone(timezone.utc).strftime(_STAMP)
