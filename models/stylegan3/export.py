"""Convert a release network pickle to our format: `python -m models.stylegan3.export --network x.pkl --out dir/`."""

from __future__ import annotations

import argparse
import sys

from models.stylegan3.errors import BAD_FILE_ERRORS, one_line
from models.stylegan3.loader import load_nvidia_pickle
from models.stylegan3.ours import save_ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--network", required=True, help="release network pickle (.pkl); G_ema is exported")
    parser.add_argument("--out", required=True, help="output folder (model.safetensors + config.json)")
    parser.add_argument("--key", default="G_ema", help="which network of the pickle to export (default: G_ema)")
    args = parser.parse_args(argv)
    try:
        generator = load_nvidia_pickle(args.network, key=args.key)
    except BAD_FILE_ERRORS as exc:  # a bad or hostile file: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    folder = save_ours(generator, args.out)
    print(f"wrote {folder} ({generator.img_resolution}px, c_dim={generator.c_dim})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
