"""The seed's script protocol: one JSON request on stdin, one JSON answer on stdout.

    echo '{"prompt": "a red fox", "size": "512x512", "seed": 7, "steps": 20}' | python -m models.qwen_image

Weights come from `"weights"` or the QWEN_IMAGE_PATH environment variable; QWEN_IMAGE_LIGHTNING_LORA optionally
names a Lightning LoRA. Answers `{"dataUri": "data:image/png;base64,..."}` (plus width, height, seed), or
`{"error": "..."}` with exit status 1. Library chatter goes to stderr: stdout carries only the answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import Any, TextIO

from models.qwen_image.errors import WeightsError
from models.qwen_image.options import QwenOptions

DEFAULT_SIZE = "1024x1024"
_SIZE = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")


class ProtocolError(ValueError):
    pass


def parse_size(value: object) -> tuple[int, int]:
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ProtocolError(f"size must look like WIDTHxHEIGHT, got {value!r}")
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise ProtocolError(f"size {width}x{height} out of range (1..4096 per side)")
    return width, height


def _optional_int(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key} must be an integer, got {value!r}")
    return value


def handle(request: object, env: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, Any]:
    """Turn one request object into one answer object. Raises ProtocolError, WeightsError, ..."""
    from models.qwen_image.engine import QwenImageEngine

    if not isinstance(request, dict):
        raise ProtocolError("request must be a JSON object")
    prompt = request.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ProtocolError("prompt must be a non-empty string")
    width, height = parse_size(request.get("size") or DEFAULT_SIZE)
    seed = _optional_int(request, "seed")
    steps = _optional_int(request, "steps")
    weights = request.get("weights") or env.get("QWEN_IMAGE_PATH")
    options = QwenOptions(lightning_lora=env.get("QWEN_IMAGE_LIGHTNING_LORA") or None)
    engine = QwenImageEngine(str(weights) if weights else "", options)
    image = engine.generate(prompt, width, height, seed, steps=steps)
    return {"dataUri": image.data_uri(), "width": image.width, "height": image.height, "seed": image.seed}


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        request = json.loads(stdin.read())
        # Whatever a library prints must not corrupt the one JSON object the caller parses.
        with contextlib.redirect_stdout(sys.stderr):
            answer = handle(request)
    except Exception as exc:
        # Our own errors read well as they are; anything else needs its type to make sense.
        message = str(exc) if isinstance(exc, (ProtocolError, WeightsError)) else f"{type(exc).__name__}: {exc}"
        stdout.write(json.dumps({"error": message}) + "\n")
        return 1
    stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
