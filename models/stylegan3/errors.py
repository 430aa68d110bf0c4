"""The only exceptions a network file can cause: whatever is wrong with a file, the loader raises one of these.

`NetworkError` is the base; its message is one line naming the file and what was wrong, meant for a user (the CLIs
print it as is, the deployment reports it in /healthz). A file that does not exist stays a plain `OSError`.
"""

from __future__ import annotations

import pickle


class NetworkError(Exception):
    """A network file we will not serve."""


class NetworkFormatError(NetworkError, ValueError):
    """Readable, but not a network we can serve (another architecture, missing/extra/misshapen tensors...)."""


class UnsafePickleError(NetworkError, pickle.UnpicklingError):
    """The pickle asked for something the reader does not allow (a global, an opcode, a malformed value)."""


class PickleLimitError(UnsafePickleError):
    """The pickle went past one of the reader's caps (nesting, elements, bytes, file size)."""


BAD_FILE_ERRORS = (NetworkError, OSError)


def one_line(exc: BaseException, limit: int = 500) -> str:
    """The error as one line for a terminal or a health report (OSError keeps its own wording: errno, path)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
