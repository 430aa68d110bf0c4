"""Process-wide allocator settings for a process that renders images back to back (a replica, the benchmark).

Each render allocates and frees a few full-size float planes. With glibc's default thresholds those come from
fresh `mmap`s (or a heap that is trimmed after every image), so every render pays thousands of page faults:
about a third of its time at 512×512. Keeping freed memory in the heap removes that cost. Call it once, from the
process's entry point; importing this module changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold: int = 64 * 2**20, trim_threshold: int = 256 * 2**20) -> bool:
    """Serve allocations up to `mmap_threshold` from the heap and keep up to `trim_threshold` of free heap.

    Returns False where the C library has no `mallopt` (not glibc): nothing is changed there.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
