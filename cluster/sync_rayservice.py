"""Copy serve_config.gpu.yaml into cluster/rayservice.yaml's serveConfigV2, so the two never drift apart.

python cluster/sync_rayservice.py      (tests/deployments/test_app.py fails when they differ)
"""

from __future__ import annotations

import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK, NEXT = "  serveConfigV2: |\n", "  rayClusterConfig:"


def main() -> None:
    config = (ROOT / "serve_config.gpu.yaml").read_text()
    body = "\n".join(line for line in config.splitlines() if not line.startswith("#")).strip()
    manifest_path = ROOT / "cluster" / "rayservice.yaml"
    manifest = manifest_path.read_text()
    start, end = manifest.index(MARK) + len(MARK), manifest.index(NEXT)
    manifest_path.write_text(manifest[:start] + textwrap.indent(body, "    ") + "\n" + manifest[end:])


if __name__ == "__main__":
    main()
