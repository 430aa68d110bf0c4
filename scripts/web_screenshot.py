"""Take docs/web.png: the real page of the embedded CPU app, after a generation made through it.

    .venv/bin/python scripts/web_screenshot.py [--out docs/web.png] [--width 1280] [--height 1260]

Starts a Ray of its own and Serve on a free loopback port, deploys `deployments.app:build_app` with its defaults
(images and their SQLite index in a temporary folder), fills the history with a few images, generates one more
through the page in headless Chromium (Debian's `chromium` + `chromium-driver`), and saves the window. The PNG is
reduced to a palette so it stays a few tens of KB in the repository.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = [
    ("a lighthouse at dusk, oil painting", "1024x1024"),
    ("terraced rice fields after rain", "1664x928"),
    ("a paper boat on a tin roof", "928x1664"),
    ("brutalist library in snow", "1472x1104"),
    ("koi under lily pads", "512x512"),
]
PROMPT = "a harbour in morning fog, long exposure"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _palette_png(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True
    )
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1260)
    opts = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import httpx
    import ray
    from ray import serve

    from deployments.app import AppArgs, build_app
    from tests.fakes.backends import wait_running
    from tests.services.browser import Browser

    with tempfile.TemporaryDirectory(prefix="cascade-shot-") as tmp:
        ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level="WARNING")
        port = _free_port()
        browser: Browser | None = None
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            serve.run(build_app(AppArgs(storage_dir=tmp)), name="cascade", route_prefix="/", blocking=False)
            wait_running("cascade", timeout_s=180)
            url = f"http://127.0.0.1:{port}"
            for seed, (prompt, size) in enumerate(HISTORY):
                r = httpx.post(f"{url}/api/generate/image", json={"prompt": prompt, "size": size, "seed": seed})
                r.raise_for_status()

            browser = Browser(opts.width, opts.height)
            browser.viewport(opts.width, opts.height, mobile=False)
            browser.open(f"{url}/")
            browser.until("return document.getElementById('backend').options.length > 1", 30, "the backends")
            browser.js(
                """document.getElementById('prompt').value = arguments[0];
                document.getElementById('size').value = '1664x928';
                document.getElementById('seed').value = '2024';
                document.getElementById('generate').click();""",
                PROMPT,
            )
            status = browser.until(
                """const s = document.getElementById('result').dataset.status;
                return ['done', 'failed', 'cancelled', 'lost', 'error'].includes(s) && s;""",
                120,
                "the generation's end",
            )
            if status != "done":
                raise RuntimeError(f"the generation ended {status}")
            browser.until(
                """const imgs = [document.getElementById('image'), ...document.querySelectorAll('#gallery img')];
                return imgs.length > arguments[0] && imgs.every((i) => i.complete && i.naturalWidth > 0);""",
                30,
                "every image loaded",
                len(HISTORY),
            )
            browser.js("document.activeElement?.blur(); window.scrollTo(0, 0);")
            png = _palette_png(browser.driver.get_screenshot_as_png())
            if browser.violations():
                raise RuntimeError(f"CSP violations: {browser.violations()}")
        finally:
            if browser is not None:
                browser.quit()
            serve.shutdown()
            ray.shutdown()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_bytes(png)
    print(f"{opts.out}: {len(png) // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
