"""Exceptions the Qwen-Image engine raises. Arguments go to `Exception.__init__` positionally so they pickle."""

from __future__ import annotations


class WeightsError(RuntimeError):
    """The weights folder is missing, incomplete or unloadable; the message says which and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class GenerationCancelled(Exception):
    """`should_stop()` said stop: the run was abandoned after `steps_done` denoising steps, with no image decoded."""

    def __init__(self, steps_done: int, total: int | None = None) -> None:
        super().__init__(steps_done, total)
        self.steps_done, self.total = steps_done, total

    def __str__(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        return f"generation cancelled after {self.steps_done}{of} steps"


class EngineUnhealthy(RuntimeError):
    """The engine cannot serve any more (e.g. the CUDA context is broken); the replica should be replaced."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
