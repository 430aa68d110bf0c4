"""Where long jobs post their progress, so `/healthz` can show a job in flight without asking its replica.

A Qwen-Image replica takes one request at a time, and Serve counts every method call against that limit: a
progress query would wait behind the very job it asks about. The replica posts here instead (fire and forget).
"""

from __future__ import annotations

import time
from typing import Any

from ray import serve

# A job not heard from for this long is gone (its replica died mid-step); drop it rather than show it forever.
STALE_S = 120.0


@serve.deployment(num_replicas=1, max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0})
class ProgressBoard:
    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Any]] = {}
        self._replicas: dict[str, dict[str, Any]] = {}

    async def post(self, key: str, entry: dict[str, Any] | None) -> None:
        """Set a job's entry (`None` ends it)."""
        if entry is None:
            self._jobs.pop(key, None)
        else:
            self._jobs[key] = {**entry, "updated_at": time.time()}

    async def jobs(self) -> list[dict[str, Any]]:
        now = time.time()
        self._jobs = {k: v for k, v in self._jobs.items() if now - v["updated_at"] < STALE_S}
        return list(self._jobs.values())

    async def describe(self, replica: str, info: dict[str, Any]) -> None:
        """A replica's standing facts (its memory plan, measured speed), reposted on every health check."""
        self._replicas[replica] = {**info, "updated_at": time.time()}

    async def replicas(self) -> list[dict[str, Any]]:
        now = time.time()
        self._replicas = {k: v for k, v in self._replicas.items() if now - v["updated_at"] < STALE_S}
        return list(self._replicas.values())
