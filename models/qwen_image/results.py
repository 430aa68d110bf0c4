"""What a Qwen-Image run reports: its progress while it runs, its image when done, and when it should stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from models.datauri import encode_data_uri


@dataclass(frozen=True)
class Progress:
    """The run in flight: `step` of `total` denoising steps done, since `started_at` (time.time())."""

    tag: str
    step: int
    total: int
    started_at: float


@dataclass(frozen=True)
class QwenImage:
    """A finished image of exactly `width`×`height`; the model rendered it at `native_width`×`native_height`."""

    png: bytes
    width: int
    height: int
    seed: int
    native_width: int
    native_height: int
    steps: int
    guidance: float
    elapsed_s: float

    def data_uri(self) -> str:
        return encode_data_uri("image/png", self.png)


def stop_check(event: threading.Event | None = None, deadline: float | None = None) -> Callable[[], bool]:
    """A `should_stop` for `generate`: true once `event` is set or the wall clock (time.time()) passes `deadline`."""

    def should_stop() -> bool:
        return (event is not None and event.is_set()) or (deadline is not None and time.time() >= deadline)

    return should_stop
