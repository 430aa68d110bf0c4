"""The small PNG writer: standard files that decode to exactly the pixels written."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from models.local.png import encode_png


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (65, 2047), (300, 7)])
def test_the_png_decodes_to_the_same_pixels(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_png(Image.fromarray(pixels))))
    assert decoded.format == "PNG"
    assert decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), pixels)


def test_other_modes_are_written_as_rgb() -> None:
    decoded = Image.open(io.BytesIO(encode_png(Image.new("L", (4, 4), 200))))
    assert decoded.mode == "RGB"
    assert decoded.getpixel((0, 0)) == (200, 200, 200)


def test_chunk_checksums_are_right() -> None:
    data = encode_png(Image.new("RGB", (8, 8), (1, 2, 3)))
    pos = 8
    kinds = []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
