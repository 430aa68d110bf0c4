"""The interface every object store offers the image service, and the HTTP range/validator values it speaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ObjectMissing(KeyError):
    """No such object (or a name that is not one of ours)."""


class NotModified(Exception):
    def __init__(self, etag: str) -> None:
        super().__init__(etag)
        self.etag = etag


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    """One HTTP byte range: `first-last`, `first-` (last None) or the final `last` bytes (first None)."""

    first: int | None
    last: int | None

    def resolve(self, size: int) -> tuple[int, int]:
        """Inclusive (start, end) within an object of `size` bytes; RangeNotSatisfiable when it misses it."""
        if self.first is None:
            length = self.last or 0
            if length == 0 or size == 0:
                raise RangeNotSatisfiable(size)
            return max(0, size - length), size - 1
        if self.first >= size:
            raise RangeNotSatisfiable(size)
        end = size - 1 if self.last is None else min(self.last, size - 1)
        return self.first, end

    def header(self) -> str:
        if self.first is None:
            return f"bytes=-{self.last}"
        return f"bytes={self.first}-" + ("" if self.last is None else str(self.last))


@dataclass(frozen=True)
class Opened:
    """An object being read: (start, end) is the inclusive byte span `read` returns, of `size` in all."""

    etag: str
    size: int
    start: int
    end: int
    body: Reader

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match's weak comparison: any listed tag (W/ or not) equal to ours, or `*`."""
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in header.split(","))


class ObjectStore(Protocol):
    """Blocking: the image service calls these from its own threads, each bounded by its timeout."""

    def describe(self) -> dict[str, str]:
        """Where objects go, for /healthz: never a secret."""
        ...

    def put(self, name: str, data: bytes, mime: str, sha256: str) -> None:
        """Store `data` whole under `name`: after this returns the object is durable and readable everywhere."""
        ...

    def open(self, name: str, byte_range: ByteRange | None = None, if_none_match: str | None = None) -> Opened:
        """ObjectMissing, NotModified or RangeNotSatisfiable, or the open object (the caller closes its body)."""
        ...

    def delete(self, name: str) -> None:
        """Idempotent: deleting what is not there is not an error."""
        ...

    def names_between(self, after: str, before: str) -> Iterator[str]:
        """Names (ours or not) that sort after `after` and before `before`, in order."""
        ...

    def clean_partial(self, before: datetime) -> int:
        """Remove what a write that died half-way left behind before `before`; how many."""
        ...

    def check(self) -> None:
        """Raise (with a reason) unless objects can be written here now."""
        ...

    def presign(self, name: str, ttl_s: int) -> str | None:
        """A URL a client can GET the object from directly for `ttl_s` seconds, where the store has such URLs."""
        ...
