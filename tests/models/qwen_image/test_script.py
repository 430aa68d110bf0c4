from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from models.datauri import decode_data_uri
from models.qwen_image.__main__ import main

ROOT = Path(__file__).resolve().parents[3]


def test_script_protocol_returns_the_requested_size(tiny_weights: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QWEN_IMAGE_PATH": str(tiny_weights)}
    request = {"prompt": "a lighthouse at dusk", "size": "50x70", "seed": 3, "steps": 2}
    proc = subprocess.run(
        [sys.executable, "-m", "models.qwen_image"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)  # stdout is exactly one JSON object: library output went to stderr
    mime, data = decode_data_uri(answer["dataUri"])
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (50, 70)
    assert (answer["width"], answer["height"], answer["seed"]) == (50, 70, 3)


def run_main(request: object) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    code = main(io.StringIO(json.dumps(request)), out)
    return code, json.loads(out.getvalue())


def test_script_errors_are_json(tmp_path: Path) -> None:
    # Like every model script: 2 for a bad request, 1 for a failure.
    assert run_main({"prompt": "x", "size": "big"}) == (2, {"error": "size must look like WIDTHxHEIGHT, got 'big'"})
    assert run_main({"size": "64x64"})[1]["error"] == "prompt must be a non-empty string"
    code, answer = run_main({"prompt": "x", "weights": str(tmp_path / "none")})
    assert code == 1 and "does not exist" in str(answer["error"])
    out = io.StringIO()
    assert main(io.StringIO("not json"), out) == 2
    assert "JSONDecodeError" in json.loads(out.getvalue())["error"]
