"""Load untrusted inputs in a child process, so that a crash (a signal) fails a test instead of killing pytest.

Parent: `run_child(job, timeout_s)`. Child (`python -m tests.models.stylegan3.load_child`): reads one JSON job on
stdin — {"cases": [[name, path], ...]} or {"fuzz": {"first_seed": n, "seconds": s}}: bytes from `fuzz_case`, and every
third seed a `semantic_case` (the reader's output, changed) — and for each input prints
{"start": name} and then {"name", "outcome": "loaded" | "refused" | "escaped", "error"}, and at the end
{"peak_rss_mb": x}. Each input goes the whole way a network file goes (read, recognise, check, build), but without
the reader's outer net that turns surprises into refusals: anything but a NetworkError is reported as escaped. The
child's address space is capped, so an unbounded allocation shows as an escaped MemoryError, not a dead machine.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ADDRESS_SPACE = 3 << 30


@dataclass
class Report:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed: str | None = None  # the input in progress when the child died
    returncode: int = 0
    peak_rss_mb: float = 0.0
    stderr: str = ""

    def outcome(self, name: str) -> str:
        if name == self.crashed:
            return f"crashed ({_signal_name(self.returncode)})"
        return self.results.get(name, {}).get("outcome", "not run")


def _signal_name(code: int) -> str:
    return signal.Signals(-code).name if code < 0 else f"exit {code}"


def run_child(job: dict[str, Any], timeout_s: float) -> Report:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.models.stylegan3.load_child"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env=env,
    )
    report, started = Report(returncode=proc.returncode, stderr=proc.stderr[-4000:]), None
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if "start" in message:
            started = message["start"]
        elif "peak_rss_mb" in message:
            report.peak_rss_mb = message["peak_rss_mb"]
        else:
            report.results[message["name"]] = message
            started = None
    if proc.returncode != 0:
        report.crashed = started or "(between inputs)"
    return report


def _load(data: bytes) -> None:
    from models.stylegan3.pickle_vm import Limits, Reader
    from models.stylegan3.unpickler import _load as load_unguarded

    _build(load_unguarded(Reader(data), Limits()))


def _build(value: Any) -> None:
    from models.stylegan3.loader import generator_from_stub

    if isinstance(value, dict) and "G_ema" in value:
        generator_from_stub(value["G_ema"], "input")


def _one(name: str, work: Callable[[], None]) -> None:
    from models.stylegan3.errors import NetworkError

    print(json.dumps({"start": name}), flush=True)
    try:
        work()
        outcome, error = "loaded", ""
    except NetworkError as exc:
        outcome, error = "refused", f"{type(exc).__name__}: {exc}"
    except BaseException as exc:
        outcome, error = "escaped", f"{type(exc).__name__}: {str(exc)[:500]}"
    print(json.dumps({"name": name, "outcome": outcome, "error": error[:1000]}), flush=True)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    import torch

    torch.set_num_threads(1)
    job = json.loads(sys.stdin.read())
    if "cases" in job:
        for name, path in job["cases"]:
            _one(name, lambda path=path: _load(Path(path).read_bytes()))
    else:
        from tests.models.stylegan3.fuzz_cases import fuzz_case, semantic_case

        spec = job["fuzz"]
        deadline, seed = time.monotonic() + spec["seconds"], spec["first_seed"]
        while time.monotonic() < deadline:
            if seed % 3 == 2:  # the reader's output, changed: what the loader makes of values a file could give
                _one(f"semantic seed {seed}", lambda seed=seed: _build(semantic_case(seed)))
            else:
                _one(f"seed {seed}", lambda seed=seed: _load(fuzz_case(seed)))
            seed += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak}), flush=True)


if __name__ == "__main__":
    main()
