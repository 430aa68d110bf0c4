"""A minimal, fast PNG writer for 8-bit RGB images.

Pillow's PNG encoder picks a filter per row by trying all five, which costs more than the deflate itself at
compress level 1. Every row here uses the Sub filter (each byte minus the one a pixel to its left), computed in
one numpy subtraction; on smooth procedural images it compresses about as well and encodes in about half the time.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SUB = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: Image.Image, level: int = 1) -> bytes:
    """The RGB image as PNG bytes (any decoder reads them; Pillow's own round trip is exact)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    rows = np.frombuffer(image.tobytes(), np.uint8).reshape(h, w * 3)
    raw = np.empty((h, w * 3 + 1), np.uint8)
    raw[:, 0] = _SUB
    raw[:, 1:4] = rows[:, :3]
    # uint8 arithmetic wraps modulo 256, which is exactly the filter's definition.
    np.subtract(rows[:, 3:], rows[:, :-3], out=raw[:, 4:])
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit truecolour, deflate, no interlace
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b"")
