"""What Ray Serve itself costs per request on this machine, with no Cascade code: the floor under issue 14's target.

Starts Ray and Serve in this process's own session, deploys three tiny apps and drives each with the shared
harness's client (../shared/bench/load.py, started in a session of its own so its CPU is not counted):

- `empty`: one deployment answering a 30-byte JSON (the proxy hop and Serve's request path alone);
- `bytes`: one deployment answering a JSON as large as a 512² Pillow answer (≈ 0.5 MB: moving the answer);
- `hop`: an ingress that calls a second deployment returning 0.4 MB of bytes and answers them base64'd in JSON
  (the shape of Cascade's gateway -> Pillow path, with no image made and nothing saved).

Each row: p50 at concurrency 1, images/s at concurrency 16, and the CPU milliseconds every process of the Ray
session (GCS, raylet, dashboard and agents, controller, proxy, replicas) used per request. The idle row is that
session's CPU per second with nothing to do. Run: `setsid .venv/bin/python bench/serve_floor.py` (any Ray Serve
environment variable, e.g. RAY_SERVE_THROUGHPUT_OPTIMIZED=1, applies).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ANSWER = 400_000  # bytes of PNG in a 512x512 Pillow answer, about


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (state first), or [] for a process gone meanwhile."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def session_pids(session: int) -> list[int]:
    """The live processes of a session (Ray's processes included: Ray does not setsid)."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc")) if _stat(pid)[3:4] == [str(session)]]


def cpu_ticks(pid: int) -> int:
    """User + system CPU clock ticks a process has used so far (0 once it is gone)."""
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def session_cpu_s(session: int | None = None) -> float:
    """CPU seconds used so far by the live processes of a session, this one by default."""
    pids = session_pids(os.getsid(0) if session is None else session)
    return sum(map(cpu_ticks, pids)) / os.sysconf("SC_CLK_TCK")


def build() -> dict[str, object]:
    from fastapi import FastAPI, Request, Response
    from ray import serve

    blob = os.urandom(ANSWER)
    empty_api, bytes_api, hop_api = FastAPI(), FastAPI(), FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(empty_api)
    class Empty:
        @empty_api.post("/api/generate/image")
        async def go(self, request: Request) -> Response:
            await request.body()
            return Response(b'{"dataUri":"data:image/png;x"}', media_type="application/json")

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(bytes_api)
    class Bytes:
        def __init__(self) -> None:
            uri = "data:image/png;base64," + base64.b64encode(blob).decode()
            self.body = json.dumps({"dataUri": uri}).encode()

        @bytes_api.post("/api/generate/image")
        async def go(self, request: Request) -> Response:
            await request.body()
            return Response(self.body, media_type="application/json")

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    class Maker:
        async def make(self, prompt: str) -> bytes:
            return blob

    @serve.deployment(ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(hop_api)
    class Hop:
        def __init__(self, maker: object) -> None:
            self.maker = maker

        @hop_api.post("/api/generate/image")
        async def go(self, request: Request) -> Response:
            prompt = json.loads(await request.body())["prompt"]
            data = await self.maker.make.remote(prompt)  # type: ignore[attr-defined]
            uri = "data:image/png;base64," + base64.b64encode(data).decode()
            return Response(json.dumps({"dataUri": uri}), media_type="application/json")

    return {"empty": Empty.bind(), "bytes": Bytes.bind(), "hop": Hop.bind(Maker.bind())}


def drive(load: Path, url: str, n: int, c: int) -> dict[str, float]:
    before = session_cpu_s()
    out = subprocess.run(
        [sys.executable, str(load), url, str(n), str(c), "64x64"],
        capture_output=True, text=True, check=True, start_new_session=True,
    ).stdout  # fmt: skip
    row = json.loads(out)
    row["cpu_ms"] = round((session_cpu_s() - before) * 1000 / (n + 5), 1)  # +5: the harness's warm-up
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-bench", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "bench")
    parser.add_argument("--n1", type=int, default=100)
    parser.add_argument("--n16", type=int, default=300)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--cpu-of", type=int, metavar="SID", help="print that session's CPU seconds so far, and stop")
    args = parser.parse_args()
    if args.cpu_of is not None:  # bench/http_levers.sh measures its servers this way
        print(session_cpu_s(args.cpu_of))
        return 0
    load = args.shared_bench / "load.py"
    if not load.is_file():
        parser.error(f"no {load}: pass --shared-bench")
    if os.getsid(0) != os.getpid():
        parser.error("run it as a session leader (setsid ...): its CPU is counted by session")

    import ray
    from ray import serve

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=True, logging_level="ERROR")
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    for name, app in build().items():
        serve.run(app, name=name, route_prefix=f"/{name}")
    time.sleep(5)
    before = session_cpu_s()
    time.sleep(args.idle_s)
    idle = (session_cpu_s() - before) / args.idle_s
    env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(("RAY_SERVE_", "RAY_max")))
    print(f"# {os.cpu_count()} cores; {env or 'Ray defaults'}")
    print(f"| idle Ray + Serve (4 apps' replicas) | CPU {idle * 1000:.0f} ms per second |")
    print("| path | p50 c1 ms | img/s c16 | CPU ms/request c16 |")
    print("|---|---|---|---|")
    for name in ("empty", "bytes", "hop"):
        drive(load, f"http://127.0.0.1:8000/{name}", 20, 1)  # warm
        c1 = drive(load, f"http://127.0.0.1:8000/{name}", args.n1, 1)
        c16 = drive(load, f"http://127.0.0.1:8000/{name}", args.n16, 16)
        print(f"| {name} | {c1['p50']} | {c16['img_s']} | {c16['cpu_ms']} |", flush=True)
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
