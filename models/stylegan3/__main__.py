"""The seed's script protocol: one JSON object on stdin, one on stdout.

stdin:  {"prompt": str, "size": "WxH", "seed"?: int, "network"?: path (else env STYLEGAN3_NETWORK), "trunc"?: float,
         "class"?: int, "translate"?: [x, y], "rotate"?: degrees}
stdout: {"dataUri": "data:image/png;base64,...", "seed": int, "width": W, "height": H, "native_size": [w, h]}
On bad input (a bad or refused network file included) or failure: {"error": "..."} on stdout, the message on stderr,
exit status 2 (input) or 1 (failure)
(models.protocol).

No seed → a stable seed from the prompt (StyleGAN3 does not read prompts otherwise). A conditional network with no
class gets `seed % c_dim`, so the same request always draws the same class.
"""

from __future__ import annotations

import os
from typing import Any, TextIO

from models.datauri import encode_data_uri
from models.protocol import BadRequest, number, optional_int, parse_size, run
from models.seeds import stable_seed

DEFAULT_SIZE = "1024x1024"
MAX_SIDE = 4096


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from models.imaging import fit_cover, to_png
    from models.stylegan3.engine import SampleSpec, StyleGAN3Engine, to_pil
    from models.stylegan3.errors import BAD_FILE_ERRORS, one_line

    prompt = request.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    width, height = parse_size(request.get("size", DEFAULT_SIZE), 1, MAX_SIDE)
    network = request.get("network") or os.environ.get("STYLEGAN3_NETWORK")
    if not network or not isinstance(network, str):
        raise BadRequest("no network: pass 'network' or set STYLEGAN3_NETWORK")
    seed = optional_int(request, "seed")
    seed = stable_seed(prompt) if seed is None else seed
    translate = request.get("translate", [0.0, 0.0])
    if not (isinstance(translate, list) and len(translate) == 2 and all(isinstance(v, int | float) for v in translate)):
        raise BadRequest("translate must be [x, y]")
    # Read before the network loads, so a bad request fails fast.
    psi, rotate_deg = number(request, "trunc", 1.0), number(request, "rotate", 0.0)
    class_idx = optional_int(request, "class")

    try:
        engine = StyleGAN3Engine(network, device=os.environ.get("STYLEGAN3_DEVICE") or None)
    except BAD_FILE_ERRORS as exc:
        raise BadRequest(f"network: {one_line(exc)}") from None
    if engine.c_dim and class_idx is None:
        class_idx = seed % engine.c_dim
    spec = SampleSpec(
        seed=seed,
        psi=psi,
        class_idx=class_idx if engine.c_dim else None,
        translate=(float(translate[0]), float(translate[1])),
        rotate_deg=rotate_deg,
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


def main(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    return run(handle, stdin, stdout)


if __name__ == "__main__":
    raise SystemExit(main())
