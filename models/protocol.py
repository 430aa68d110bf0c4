"""The seed's script protocol, shared by every model folder that runs as a script.

One JSON object on stdin, one JSON object on stdout: the model's answer (`dataUri`, ...) with exit status 0, or
`{"error": "..."}` with the message also on stderr and exit status 2 for a bad request (not JSON, not an object,
`BadRequest`) or 1 when the model failed. A model supplies only `handle(request) -> answer`; `run` does the rest.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

OK, FAILED, BAD_REQUEST = 0, 1, 2

_SIZE = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")
# Enough of a bad value to recognise it; a request can carry megabytes in one field.
_SNIPPET_CHARS = 40


class BadRequest(ValueError):
    """The request is unusable. The message goes to the caller as it is, so it should name the field."""


class GenerationFailed(Exception):
    """The request was fine but gave no image. The message goes to the caller as it is (no type name), and
    `fields` join `"error"` in the answer (e.g. the attempts a chain made)."""

    def __init__(self, message: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, fields)
        self.message = message
        self.fields: dict[str, Any] = dict(fields or {})

    def __str__(self) -> str:
        return self.message


def _snippet(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1] + "…"


def parse_size(value: object, min_side: int = 1, max_side: int = 4096) -> tuple[int, int]:
    """ "WxH" (also "W x H", "W×H") as (w, h), each side in min_side..max_side; BadRequest otherwise."""
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadRequest(f"size must look like WIDTHxHEIGHT, got {_snippet(value)}")
    width, height = int(match[1]), int(match[2])
    if not (min_side <= width <= max_side and min_side <= height <= max_side):
        raise BadRequest(f"each side of size must be {min_side}..{max_side}, got {width}x{height}")
    return width, height


def optional_int(
    request: Mapping[str, Any], key: str, *, min_value: int | None = None, max_value: int | None = None
) -> int | None:
    """`request[key]` as an int (None when absent or null); booleans and floats such as 7.0 are refused."""
    value = request.get(key)
    if value is None:
        return None
    # bool is an int subclass, but `"seed": true` is a mistake, not 1.
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (is_int and (min_value is None or value >= min_value) and (max_value is None or value <= max_value)):
        bounds = "" if min_value is None and max_value is None else f" in {_bound(min_value)}..{_bound(max_value)}"
        raise BadRequest(f"{key} must be an integer{bounds}, got {_snippet(value)}")
    return value


def _bound(value: int | None) -> str:
    return "" if value is None else str(value)


def number(request: Mapping[str, Any], key: str, default: float) -> float:
    """`request[key]` as a finite float, `default` when absent; booleans, strings, NaN and infinities are refused."""
    value = request.get(key, default)
    # Python's json reads NaN and Infinity, which no model parameter means.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{key} must be a number, got {_snippet(value)}")
    return float(value)


def required_str(request: Mapping[str, Any], key: str) -> str:
    """`request[key]`, which must be a string with something in it besides whitespace."""
    value = request.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key} must be a non-empty string")
    return value


def read_request(stdin: TextIO) -> dict[str, Any]:
    """The one JSON object on `stdin`; BadRequest for anything else."""
    try:
        text = stdin.read()
    except UnicodeDecodeError as exc:
        raise BadRequest(f"input is not UTF-8 text: {exc}") from None
    if not text.strip():
        raise BadRequest("no input: expected one JSON object on stdin")
    try:
        request = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # Keeps the decoder's type name, which the qwen script has always reported for input that is not JSON.
        raise BadRequest(f"input is not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(request, dict):
        raise BadRequest(f"input must be a JSON object, got {type(request).__name__}")
    return request


def run(
    handle: Callable[[dict[str, Any]], Mapping[str, Any]],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Read one request, answer it with `handle`, write one JSON object; the exit status to return from main.

    Exceptions are answered, never raised: BadRequest with its message and 2,
    GenerationFailed with its message and fields and 1, anything else as "Type: message" and 1.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    error: str | None = None
    fields: Mapping[str, Any] = {}
    try:
        request = read_request(stdin)
        # Whatever a library prints must not corrupt the one JSON object the caller parses.
        with contextlib.redirect_stdout(stderr):
            answer = dict(handle(request))
        # Serialised inside the try so that an answer JSON cannot carry still gets a JSON error object.
        line, status = json.dumps(answer, allow_nan=False), OK
    except BadRequest as exc:
        error, status = str(exc), BAD_REQUEST
    except GenerationFailed as exc:
        error, status, fields = exc.message, FAILED, exc.fields
    except Exception as exc:  # the protocol wants one JSON object on stdout, whatever happened
        error, status = f"{type(exc).__name__}: {exc}", FAILED
    if error is not None:
        print(error, file=stderr, flush=True)
        line = _error_line(error, fields)
    stdout.write(line + "\n")
    stdout.flush()
    return status


def _error_line(error: str, fields: Mapping[str, Any]) -> str:
    extra = {key: value for key, value in fields.items() if key != "error"}
    try:
        return json.dumps({"error": error, **extra}, allow_nan=False)
    except (TypeError, ValueError):
        # The error itself must still reach the caller when an extra field cannot be written.
        return json.dumps({"error": error})
