"""Where the CPU goes while Cascade serves images over HTTP: every process of the server, sampled at once.

Starts `serve run` (serve_config.yaml, or --config) in a session of its own with scripts/serve.env's settings (or
Ray's defaults with --ray-defaults), drives it at concurrency 16 with the shared harness's client, and while that
runs:

- reads each process's CPU from /proc (C++ ones too: GCS, raylet), so the table adds up to the whole server;
- samples every Python process with py-spy (`record --nonblocking --format raw`, idle threads left out) and sorts
  each sample by the code at its top frame: ours (cascade/, deployments/, models/), the image libraries (PIL,
  numpy, zlib), Ray Serve, Ray's core, the web stack (starlette, fastapi, uvicorn, h11, httptools), pydantic,
  logging, and the rest.

Run: `.venv/bin/python bench/profile_path.py [--requests 600] [--ray-defaults] [--config FILE]`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from serve_floor import cpu_ticks, session_pids  # this folder: the script's own path comes first on sys.path

ROOT = Path(__file__).resolve().parent.parent
# First match wins, tested against the sample's top frame, `function (path/in/site-packages.py:line)`.
KINDS = (
    ("ours", re.compile(r"[(/](cascade|deployments|models)/")),
    ("PIL/numpy/zlib", re.compile(r"[(/](PIL|numpy)/|zlib")),
    ("pydantic", re.compile(r"[(/]pydantic(_core)?/")),
    ("web: starlette/fastapi/uvicorn", re.compile(r"[(/](starlette|fastapi|uvicorn|h11|httptools|anyio)/")),
    ("logging", re.compile(r"[(/]logging/")),
    ("Ray Serve", re.compile(r"[(/]ray/serve/")),
    ("Ray core", re.compile(r"[(/]ray/|_raylet|grpc")),
    ("asyncio/threads", re.compile(r"[(/](asyncio|concurrent|threading|selectors)[/.]")),
)


def name_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw if w]
    if not words:
        return "?"
    # Ray renames its workers' processes ("ray::ServeReplica:cascade:gateway"), others are known by their script.
    head = words[0]
    if head.startswith("ray::"):
        return head.split()[0]
    for word in words[:4]:
        base = os.path.basename(word)
        if base.endswith(".py") or base in ("gcs_server", "raylet", "serve"):
            return base
    return os.path.basename(head)[:40]


def kind_of(frame: str) -> str:
    for kind, pattern in KINDS:
        if pattern.search(frame):
            return kind
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-bench", type=Path, default=ROOT.parent / "shared" / "bench")
    parser.add_argument("--config", default="serve_config.yaml")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long py-spy samples, mid-run")
    parser.add_argument("--ray-defaults", action="store_true", help="do not read scripts/serve.env")
    args = parser.parse_args()
    env = dict(os.environ)
    if not args.ray_defaults:
        for line in (ROOT / "scripts/serve.env").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    spy = Path(sys.executable).with_name("py-spy")
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("serve")), "run", args.config],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(180):
            try:
                if urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit(f"serve did not start; see {log.name}")
        load = args.shared_bench / "load.py"
        subprocess.run(
            [sys.executable, str(load), "http://127.0.0.1:8000", "20", "4", "512x512"], check=True, capture_output=True
        )
        client = subprocess.Popen(
            [sys.executable, str(load), "http://127.0.0.1:8000", str(args.requests), "16", "512x512"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        time.sleep(2)
        pids = session_pids(server.pid)
        names = {pid: name_of(pid) for pid in pids}
        out = Path(tempfile.mkdtemp(prefix="cascade-profile-"))
        spies = [
            subprocess.Popen(
                [str(spy), "record", "--nonblocking", "--format", "raw", "--rate", "50", "--duration",
                 str(int(args.seconds)), "--pid", str(pid), "--output", str(out / f"{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for pid in pids
            if names[pid] not in ("gcs_server", "raylet")  # C++: /proc only
        ]  # fmt: skip
        # The CPU window is py-spy's own: from its start to the end of its sampling, not to when it has written out.
        before = {pid: cpu_ticks(pid) for pid in pids}
        started = time.monotonic()
        time.sleep(args.seconds)
        after = {pid: cpu_ticks(pid) for pid in pids}
        window = time.monotonic() - started
        for proc in spies:
            proc.wait()
        stacks = {pid: _read(out / f"{pid}.txt") for pid in pids}
        summary = client.communicate()[0].strip()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for pid in session_pids(server.pid):  # the whole session: some of Ray's processes have groups of their own
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    tick = os.sysconf("SC_CLK_TCK")
    rows = sorted(pids, key=lambda p: after[p] - before[p], reverse=True)
    total = sum(after[p] - before[p] for p in pids) / tick / window
    print(
        f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
        f"{'Ray defaults' if args.ray_defaults else 'scripts/serve.env'}, {args.config}; client: {summary}"
    )
    print(f"# whole server: {total:.2f} cores busy over the {window:.1f} s window; py-spy's stacks in {out}")
    header = ["process", "cores", *(k for k, _ in KINDS), "other"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for pid in rows:
        cores = (after[pid] - before[pid]) / tick / window
        if cores < 0.01:
            continue
        shares = stacks[pid]
        seen = sum(shares.values())
        cells = [f"{100 * shares.get(k, 0) / seen:.0f} %" if seen else "" for k, _ in (*KINDS, ("other", None))]
        print(f"| {names[pid]} | {cores:.2f} | " + " | ".join(cells) + " |")
    return 0


def _read(path: Path) -> collections.Counter[str]:
    """py-spy's raw format: one collapsed stack per line, frames `;`-separated (top last), then its sample count."""
    kinds: collections.Counter[str] = collections.Counter()
    if not path.is_file():
        return kinds
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            kinds[kind_of(stack.rsplit(";", 1)[-1])] += int(count)
    return kinds


if __name__ == "__main__":
    sys.exit(main())
