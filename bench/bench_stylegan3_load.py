"""How long a release-size network pickle takes to load: our reader vs Python's C unpickler on the same bytes.

    python bench/bench_stylegan3_load.py [--cfg t,r] [--resolution 1024] [--repeat 3]

Writes a random network of the release's shape (T-1024 by default: G and G_ema at full width, a small D) in the
release's pickle layout to a temporary folder, then times, median of --repeat: `read_network_pickle` (our
interpreter: every value checked), `load_network` (that + recognition, option checks, building the generator and
copying the tensors), and the C unpickler with a `find_class` that accepts anything (no checks at all; for scale,
never for use: it is what the release's own loader starts from).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class _Trusting(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch_utils.persistence":
            return lambda meta: meta  # the data only: the release would exec module_src here
        if module == "dnnlib.util":
            return dict
        return super().find_class(module, name)


def _timed(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default="t,r")
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    import torch

    from models.stylegan3.generator import make_generator
    from models.stylegan3.loader import load_network
    from models.stylegan3.release_others import augment_pipe, discriminator
    from models.stylegan3.release_pickle import snapshot, write
    from models.stylegan3.release_tree import release_generator
    from models.stylegan3.unpickler import read_network_pickle

    torch.set_num_threads(1)
    print("| network | file MB | our reader s | load_network s | C unpickler, no checks s | reader MB/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for cfg in args.cfg.split(","):
        generator = make_generator(cfg, img_resolution=args.resolution).eval().requires_grad_(False)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"stylegan3-{cfg}-random-{args.resolution}x{args.resolution}.pkl"
            tree = release_generator(generator)
            write(path, snapshot(tree, release_generator(generator), discriminator(args.resolution), augment_pipe()))
            size_mb = path.stat().st_size / 2**20

            def trusting(path: Path = path) -> None:
                with open(path, "rb") as f:
                    _Trusting(f).load()

            ours = _timed(lambda path=path: read_network_pickle(path), args.repeat)
            full = _timed(lambda path=path: load_network(path, device="cpu"), args.repeat)
            c_speed = _timed(trusting, args.repeat)
            name = f"{cfg.upper()}-{args.resolution}"
            print(
                f"| {name} | {size_mb:.0f} | {ours:.2f} | {full:.2f} | {c_speed:.2f} | {size_mb / ours:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
