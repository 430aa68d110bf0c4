"""Objects as files in one folder: the embedded default, for one machine (or a volume every replica mounts)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cascade.store.base import ByteRange, NotModified, ObjectMissing, Opened, etag_matches
from cascade.store.keys import is_servable

_TEMP_PREFIX = ".tmp-"


class _Window:
    """Reads at most `left` bytes of an open file, then reports end of file."""

    def __init__(self, file: object, left: int) -> None:
        self._file, self._left = file, left

    def read(self, n: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n < 0 else min(n, self._left)
        data = self._file.read(want)  # type: ignore[attr-defined]
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()  # type: ignore[attr-defined]


class FolderStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> dict[str, str]:
        return {"kind": "folder", "path": str(self.root)}

    def put(self, name: str, data: bytes, mime: str, sha256: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                # Answered means stored: the bytes reach the disk before the name does.
                os.fsync(f.fileno())
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._sync_folder()

    def _sync_folder(self) -> None:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def open(self, name: str, byte_range: ByteRange | None = None, if_none_match: str | None = None) -> Opened:
        if not is_servable(name):
            raise ObjectMissing(name)
        try:
            # O_NOFOLLOW: a planted symlink fails (ELOOP) instead of leading out of the folder. O_NONBLOCK: a planted
            # FIFO does not hang the open; fstat below turns it (and every other non-file) away.
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENXIO):
                raise ObjectMissing(name) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ObjectMissing(name)
            etag = f'"{info.st_size:x}-{info.st_mtime_ns:x}"'
            if if_none_match is not None and etag_matches(if_none_match, etag):
                raise NotModified(etag)
            start, end = byte_range.resolve(info.st_size) if byte_range else (0, info.st_size - 1)
            os.set_blocking(fd, True)
            file = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        file.seek(start)
        return Opened(etag, info.st_size, start, end, _Window(file, end - start + 1))

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def names_between(self, after: str, before: str) -> Iterator[str]:
        try:
            names = sorted(e.name for e in os.scandir(self.root) if after < e.name < before)
        except FileNotFoundError:
            return iter(())
        return iter(names)

    def clean_partial(self, before: datetime) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name.startswith(_TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < before.timestamp():
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # another replica's sweep of the same folder got there first
        return removed

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")

    def presign(self, name: str, ttl_s: int) -> str | None:
        return None
