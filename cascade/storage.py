"""Saved images: unique names, atomic writes, a JSON record beside each image, safe lookup by name."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/svg+xml": "svg"}
MIME_BY_EXTENSION = {ext: mime for mime, ext in _EXTENSIONS.items()}
# Only names this module makes are served: no separators, no dots but the extension's.
_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-[a-z0-9_]{1,32}-[0-9a-f]{12}\.(png|jpg|webp|svg|json)$")


@dataclass(frozen=True)
class Saved:
    name: str
    sha256: str


class ImageStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def save(self, data: bytes, mime: str, backend: str, record: Mapping[str, Any]) -> Saved:
        """Write the image and its JSON record; raises OSError (or ValueError for an unknown type)."""
        ext = _EXTENSIONS.get(mime)
        if ext is None:
            raise ValueError(f"cannot store images of type {mime!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9_]", "_", backend.lower())[:32] or "image"
        stem = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{slug}-{secrets.token_hex(6)}"
        digest = hashlib.sha256(data).hexdigest()
        meta = {**record, "backend": backend, "mime": mime, "sha256": digest, "created": time.time()}
        # The record goes first so that an image on disk always has its record.
        self._write(f"{stem}.json", json.dumps(meta, indent=1, default=str).encode())
        self._write(f"{stem}.{ext}", data)
        return Saved(f"{stem}.{ext}", digest)

    def writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK)

    def open(self, name: str) -> tuple[Path, str]:
        """The path and mime type of a saved image; KeyError for anything that is not one."""
        if not _NAME.match(name) or name.endswith(".json"):
            raise KeyError(name)
        path = self.root / name
        if not path.is_file():
            raise KeyError(name)
        return path, MIME_BY_EXTENSION[name.rsplit(".", 1)[1]]

    def _write(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
