"""Where long jobs post their progress and where `/api/jobs` live, so that any gateway replica answers for any job.

A Qwen-Image replica takes one request at a time, and Serve counts every method call against that limit: a
progress query would wait behind the very job it asks about. The replica posts here instead (fire and forget).

Jobs live here too (a `cascade.jobs.JobTable`), rather than in the metadata database: one replica that every
gateway replica on every node reaches through a handle, where a backend's step posts land next to the job they
belong to, and where a client waiting for events or an owner waiting for a cancel is a parked coroutine, not a
polling loop on a table. It is memory: a restart of this replica forgets the jobs (their images stay saved).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ray import serve

from cascade.config import JobArgs
from cascade.jobs import TERMINAL, JobStatus, JobTable

# A backend job not heard from for this long is gone (its replica died mid-step); drop it rather than show it forever.
STALE_S = 120.0


@serve.deployment(num_replicas=1, max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0})
class ProgressBoard:
    def __init__(self, jobs: JobArgs | None = None) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        # Keys whose job ended, and when: posts from one replica travel as separate handle calls and may arrive out
        # of order, so a step posted just before the end can land after it and must not bring the entry back.
        self._ended: dict[str, float] = {}
        self._replicas: dict[str, dict[str, Any]] = {}
        self.table = JobTable(jobs)
        self._tick = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    # --- backends' progress (for /healthz, and for the job a step belongs to) -----------------------------------

    async def post(self, key: str, entry: dict[str, Any] | None) -> None:
        """Set a backend job's entry (`None` ends it)."""
        now = time.time()
        if entry is None:
            self._entries.pop(key, None)
            self._ended = {k: t for k, t in self._ended.items() if now - t < STALE_S}
            self._ended[key] = now
            return
        if key in self._ended:
            return
        self._entries[key] = {**entry, "updated_at": now}
        if "step" in entry and "total" in entry:
            # A job's image request carries the job's id as its request id.
            self.table.progress(str(entry.get("request_id")), str(entry.get("backend")), entry["step"], entry["total"])
            self._changed()

    async def jobs(self) -> list[dict[str, Any]]:
        """Backend jobs in flight (the name predates /api/jobs: these are what /healthz shows per backend)."""
        now = time.time()
        self._entries = {k: v for k, v in self._entries.items() if now - v["updated_at"] < STALE_S}
        return list(self._entries.values())

    async def describe(self, replica: str, info: dict[str, Any]) -> None:
        """A replica's standing facts (its memory plan, measured speed), reposted on every health check."""
        self._replicas[replica] = {**info, "updated_at": time.time()}

    async def replicas(self) -> list[dict[str, Any]]:
        now = time.time()
        self._replicas = {k: v for k, v in self._replicas.items() if now - v["updated_at"] < STALE_S}
        return list(self._replicas.values())

    # --- /api/jobs ---------------------------------------------------------------------------------------------

    async def create_job(
        self, job_id: str, owner: str, request: dict[str, Any], key_id: str | None = None
    ) -> dict[str, Any] | None:
        self._start_ticker()
        return self._after(self.table.create(job_id, owner, request, key_id))

    async def start_job(self, job_id: str, owner: str) -> bool:
        return self._after(self.table.start(job_id, owner))

    async def attempt_started(self, job_id: str, backend: str) -> None:
        self._after(self.table.attempt_started(job_id, backend))

    async def attempt_ended(self, job_id: str, attempt: dict[str, Any]) -> None:
        self._after(self.table.attempt_ended(job_id, attempt))

    async def finish_job(
        self,
        job_id: str,
        status: JobStatus,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> bool:
        return self._after(self.table.finish(job_id, status, result=result, error=error, attempts=attempts))

    async def cancel_job(self, job_id: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """Ask the job to stop; wait up to `wait_s` for it to end. Its view (None for an unknown job)."""
        view = self._after(self.table.cancel(job_id))
        deadline = time.monotonic() + wait_s
        while view is not None and view["status"] not in TERMINAL and time.monotonic() < deadline:
            await self._wait(deadline)
            view = self.table.view(job_id)
        return view

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self.table.view(job_id)

    async def job_events(self, job_id: str, after: int, wait_s: float) -> dict[str, Any] | None:
        """Events after `after`, waiting up to `wait_s` for one; `ended` once the job's last event is in the list."""
        deadline = time.monotonic() + wait_s
        while True:
            found = self.table.events_after(job_id, after)
            if found is None:
                return None
            events, ended = found
            if events or ended or time.monotonic() >= deadline:
                return {"events": events, "ended": ended}
            await self._wait(deadline)

    async def heartbeat(self, owner: str, job_ids: list[str]) -> dict[str, Any]:
        """Renew the leases of the jobs `owner` lists; parks until one of its jobs must stop, or a third of the
        lease has passed (so a replica heartbeats about three times a lease)."""
        self._start_ticker()
        deadline = time.monotonic() + self.table.settings.lease_s / 3
        stop = self.table.heartbeat(owner, job_ids)
        while not stop and time.monotonic() < deadline:
            await self._wait(deadline)
            if self.table.must_stop(owner):
                stop = self.table.heartbeat(owner, job_ids)
        return {"stop": stop, "lease_s": self.table.settings.lease_s}

    # --- inside -----------------------------------------------------------------------------------------------

    def _after(self, value: Any) -> Any:
        self._changed()
        return value

    def _changed(self) -> None:
        # Waiters hold the event current when they looked: setting it wakes exactly those, none is missed.
        self._tick.set()
        self._tick = asyncio.Event()

    async def _wait(self, deadline: float) -> None:
        tick = self._tick
        try:
            await asyncio.wait_for(tick.wait(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._expire_forever())

    async def _expire_forever(self) -> None:
        # Leases lapse with nobody calling: a client waiting on a dead replica's job must still hear `lost`.
        period = min(1.0, self.table.settings.lease_s / 4)
        while True:
            await asyncio.sleep(period)
            if self.table.expire():
                self._changed()
