"""Sequential reads for the pickle interpreter that never ask for more than is left in the input."""

from __future__ import annotations

import struct
from typing import IO, Any

from models.stylegan3.errors import UnsafePickleError


class Reader:
    """Sequential reads that never ask for more than is left: from bytes in memory, or `FileReader` below."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._mv = memoryview(data).cast("B")
        self.pos, self.end = 0, len(self._mv)

    @property
    def left(self) -> int:
        return self.end - self.pos

    def _check(self, n: int) -> None:
        if n < 0 or n > self.end - self.pos:
            raise UnsafePickleError(f"truncated: {n} bytes wanted at byte {self.pos}, {self.left} left")

    def read(self, n: int) -> bytes:
        start, stop = self.pos, self.pos + n
        if n < 0 or stop > self.end:
            self._check(n)
        self.pos = stop
        return bytes(self._mv[start:stop])

    def byte(self) -> int:
        if self.pos >= self.end:
            self._check(1)
        self.pos += 1
        return self._mv[self.pos - 1]

    def view(self, n: int) -> memoryview:
        """The next n bytes without a copy."""
        self._check(n)
        self.pos += n
        return self._mv[self.pos - n : self.pos]

    def readline(self, limit: int) -> bytes:
        chunk = bytes(self._mv[self.pos : min(self.end, self.pos + limit + 1)])
        cut = chunk.find(b"\n")
        return self._line(chunk if cut < 0 else chunk[: cut + 1], limit)

    def _line(self, line: bytes, limit: int) -> bytes:
        if not line.endswith(b"\n"):
            raise UnsafePickleError(f"text opcode argument at byte {self.pos} is unterminated or over {limit} bytes")
        self.pos += len(line)
        return line[:-1]

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]


class FileReader(Reader):
    """The same reads from a seekable binary file, without holding the file in memory."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.pos = file.tell()
        self.end = file.seek(0, 2)
        file.seek(self.pos)

    def read(self, n: int) -> bytes:
        if n < 0 or n > self.end - self.pos:
            self._check(n)
        data = self._file.read(n)
        if len(data) != n:
            raise UnsafePickleError(f"truncated at byte {self.pos}")
        self.pos += n
        return data

    def byte(self) -> int:
        return self.read(1)[0]

    def view(self, n: int) -> memoryview:
        return memoryview(self.read(n))

    def readline(self, limit: int) -> bytes:
        return self._line(self._file.readline(min(limit + 1, self.left)), limit)
