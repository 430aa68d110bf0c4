"""Host memory: what is available for offloaded weights, and the process's peak RSS while something runs (Linux)."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_MEMINFO = Path("/proc/meminfo")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def available_bytes() -> int | None:
    """The kernel's estimate of memory available without swapping (MemAvailable), or None off Linux."""
    return _kib_field(_MEMINFO, "MemAvailable:")


def _kib_field(path: Path, name: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class PeakRss:
    """Filled in when the `peak_rss()` block ends. `since_start` True: the kernel's high-water mark could not be
    reset, so `bytes` is the process's peak since it started (still an upper bound for the block)."""

    bytes: int = 0
    since_start: bool = False


@contextmanager
def peak_rss() -> Iterator[PeakRss]:
    """Measure the peak resident set size of this process inside the block.

    Writing 5 to /proc/self/clear_refs resets VmHWM (Linux ≥ 4.0), so VmHWM afterwards is the block's own peak.
    """
    result = PeakRss()
    try:
        _CLEAR_REFS.write_text("5")
        reset = True
    except OSError:
        reset = False
    try:
        yield result
    finally:
        hwm = _kib_field(_STATUS, "VmHWM:") if reset else None
        if hwm is None:
            # ru_maxrss is KiB on Linux, bytes on macOS.
            scale = 1 if sys.platform == "darwin" else 1024
            result.bytes, result.since_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, True
        else:
            result.bytes = hwm
