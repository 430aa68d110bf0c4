"""The seed's script protocol: one JSON request on stdin, one JSON answer on stdout.

    echo '{"prompt": "a red fox", "size": "512x512", "seed": 7, "steps": 20}' | python -m models.qwen_image

Weights come from `"weights"` or the QWEN_IMAGE_PATH environment variable; QWEN_IMAGE_LIGHTNING_LORA optionally
names a Lightning LoRA. Answers `{"dataUri": "data:image/png;base64,..."}` (plus width, height, seed), or
`{"error": "..."}` with exit status 1, bad requests included (models.protocol does the I/O). Library chatter goes to
stderr: stdout carries only the answer.
"""

from __future__ import annotations

import os
from typing import Any, TextIO

from models.protocol import GenerationFailed, optional_int, parse_size, required_str, run
from models.qwen_image.errors import WeightsError
from models.qwen_image.options import QwenOptions

DEFAULT_SIZE = "1024x1024"
MAX_SIDE = 4096


def handle(request: dict[str, Any], env: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, Any]:
    """Turn one request object into one answer object. Raises BadRequest, GenerationFailed, ..."""
    from models.qwen_image.engine import QwenImageEngine

    prompt = required_str(request, "prompt")
    width, height = parse_size(request.get("size") or DEFAULT_SIZE, 1, MAX_SIDE)
    seed = optional_int(request, "seed")
    steps = optional_int(request, "steps")
    weights = request.get("weights") or env.get("QWEN_IMAGE_PATH")
    options = QwenOptions(lightning_lora=env.get("QWEN_IMAGE_LIGHTNING_LORA") or None)
    try:
        engine = QwenImageEngine(str(weights) if weights else "", options)
        image = engine.generate(prompt, width, height, seed, steps=steps)
    except WeightsError as exc:
        # Its message already says what is missing and where; a type name would add nothing.
        raise GenerationFailed(str(exc)) from exc
    return {"dataUri": image.data_uri(), "width": image.width, "height": image.height, "seed": image.seed}


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    return run(handle, stdin, stdout)


if __name__ == "__main__":
    raise SystemExit(main())
