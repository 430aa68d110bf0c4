"""The seed's script protocol: one JSON object on stdin, one on stdout.

stdin:  {"prompt": str, "size": "WxH", "seed"?: int, "network"?: path (else env STYLEGAN3_NETWORK), "trunc"?: float,
         "class"?: int, "translate"?: [x, y], "rotate"?: degrees}
stdout: {"dataUri": "data:image/png;base64,...", "seed": int, "width": W, "height": H, "native_size": [w, h]}
On bad input or failure: {"error": "..."} on stdout, the message on stderr, exit status 2 (input) or 1 (failure).

No seed → a stable seed from the prompt (StyleGAN3 does not read prompts otherwise). A conditional network with no
class gets `seed % c_dim`, so the same request always draws the same class.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from models.datauri import encode_data_uri
from models.seeds import stable_seed

DEFAULT_SIZE = "1024x1024"
MAX_SIDE = 4096


class BadRequest(ValueError):
    pass


def parse_size(text: Any) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not match:
        raise BadRequest(f"size must look like 1024x768, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BadRequest(f"size sides must be in 1..{MAX_SIDE}")
    return width, height


def _int_field(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer")
    return value


def _float_field(request: dict[str, Any], key: str, default: float) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number")
    return float(value)


def handle(request: Any) -> dict[str, Any]:
    from models.imaging import fit_cover, to_png
    from models.stylegan3.engine import SampleSpec, StyleGAN3Engine, to_pil

    if not isinstance(request, dict):
        raise BadRequest("expected a JSON object")
    prompt = request.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    width, height = parse_size(request.get("size", DEFAULT_SIZE))
    network = request.get("network") or os.environ.get("STYLEGAN3_NETWORK")
    if not network or not isinstance(network, str):
        raise BadRequest("no network: pass 'network' or set STYLEGAN3_NETWORK")
    seed = _int_field(request, "seed")
    seed = stable_seed(prompt) if seed is None else seed
    translate = request.get("translate", [0.0, 0.0])
    if not (isinstance(translate, list) and len(translate) == 2 and all(isinstance(v, int | float) for v in translate)):
        raise BadRequest("translate must be [x, y]")

    engine = StyleGAN3Engine(network, device=os.environ.get("STYLEGAN3_DEVICE") or None)
    class_idx = _int_field(request, "class")
    if engine.c_dim and class_idx is None:
        class_idx = seed % engine.c_dim
    spec = SampleSpec(
        seed=seed,
        psi=_float_field(request, "trunc", 1.0),
        class_idx=class_idx if engine.c_dim else None,
        translate=(float(translate[0]), float(translate[1])),
        rotate_deg=_float_field(request, "rotate", 0.0),
    )
    try:
        image = engine.generate_batch([spec])[0]
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    png = to_png(fit_cover(to_pil(image), width, height))
    return {
        "dataUri": encode_data_uri("image/png", png),
        "seed": seed,
        "width": width,
        "height": height,
        "native_size": list(engine.native_size),
    }


def main() -> int:
    try:
        request = json.loads(sys.stdin.read() or "null")
        response, status = handle(request), 0
    except (BadRequest, json.JSONDecodeError) as exc:
        response, status = {"error": f"bad request: {exc}"}, 2
    except Exception as exc:
        response, status = {"error": f"{type(exc).__name__}: {exc}"}, 1
    if status:
        print(response["error"], file=sys.stderr)
    sys.stdout.write(json.dumps(response) + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
