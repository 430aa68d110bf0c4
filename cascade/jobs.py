"""Jobs: one record per submitted generation, its events in order, and leases that end an abandoned job `lost`.

Ray-free and single-threaded: the progress board deployment holds one JobTable for every gateway replica.
A job's owner is the gateway replica that acts on it: the one that queued it, then the one that runs it; a cancel
goes to the owner. Each replica's heartbeat lists the jobs it holds (queued or running) and so renews their lease;
an unfinished job no live replica has listed for `lease_s` was abandoned (its replicas died), and ends `lost`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade.config import JobArgs
from cascade.schemas import AttemptModel, GenerateResponse

JobStatus = Literal["queued", "running", "done", "failed", "cancelled", "lost"]
TERMINAL: frozenset[str] = frozenset({"done", "failed", "cancelled", "lost"})
EVENT_TYPES = ("queued", "started", "attempt_started", "progress", "attempt_ended", "cancelling", *sorted(TERMINAL))


@dataclass(frozen=True)
class JobEvent:
    seq: int
    type: str
    data: dict[str, Any]
    at: float


@dataclass
class _Job:
    id: str
    owner: str
    request: dict[str, Any]
    created_at: float
    renewed_at: float
    status: JobStatus = "queued"
    started_at: float | None = None
    ended_at: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    current: str | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    events: list[JobEvent] = field(default_factory=list)
    key_id: str | None = None  # the API key that submitted it (None: auth off, or an in-cluster caller)


class JobTable:
    def __init__(self, settings: JobArgs | None = None, clock: Callable[[], float] = time.time) -> None:
        # Past max_jobs, finished jobs are forgotten oldest first; unfinished ones are never dropped (refused).
        self.settings, self._clock = settings or JobArgs(), clock
        self._jobs: dict[str, _Job] = {}  # in creation order: the oldest are forgotten first
        self._stop: dict[str, set[str]] = {}  # owner -> jobs it must stop

    # --- the job's life ---------------------------------------------------------------------------------------

    def create(
        self, job_id: str, owner: str, request: dict[str, Any], key_id: str | None = None
    ) -> dict[str, Any] | None:
        """The new job's view, or None when the table is full of unfinished jobs."""
        now = self._clock()
        self._forget(now)
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} exists")
        if len(self._jobs) >= self.settings.max_jobs:
            return None
        job = self._jobs[job_id] = _Job(job_id, owner, dict(request), now, now, key_id=key_id)
        self._emit(job, "queued", {"status": "queued"})
        return self.view(job_id)

    def start(self, job_id: str, owner: str) -> bool:
        """Whether `owner` should run the job (False: unknown, or it ended before it started: cancelled, lost)."""
        job = self._live(job_id)
        if job is None:
            return False
        now = self._clock()
        job.owner, job.status, job.started_at, job.renewed_at = owner, "running", now, now
        self._emit(job, "started", {"status": "running"})
        return True

    def attempt_started(self, job_id: str, backend: str) -> None:
        job = self._live(job_id)
        if job is not None:
            job.current, job.progress = backend, None
            self._emit(job, "attempt_started", {"backend": backend})

    def attempt_ended(self, job_id: str, attempt: dict[str, Any]) -> None:
        job = self._live(job_id)
        if job is not None:
            job.attempts.append(dict(attempt))
            job.current, job.progress = None, None
            self._emit(job, "attempt_ended", dict(attempt))

    def progress(self, job_id: str, backend: str, step: int, total: int) -> None:
        job = self._live(job_id)
        if job is not None:
            job.progress = {"backend": backend, "step": step, "total": total}
            if len(job.events) < self.settings.max_events:
                self._emit(job, "progress", dict(job.progress))

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> bool:
        """End a job; False when it had already ended (the first ending stands)."""
        if status not in TERMINAL:
            raise ValueError(f"{status} is not an ending")
        job = self._live(job_id)
        if job is None:
            return False
        job.status, job.ended_at = status, self._clock()
        job.result, job.error = result, error
        if attempts is not None:
            job.attempts = [dict(a) for a in attempts]
        job.progress = None
        data: dict[str, Any] = {"status": status, "error": error, "attempts": job.attempts}
        if status == "cancelled" and job.current is not None:
            data["interrupted"] = job.current
        if result is not None:
            data["result"] = result
        job.current = None
        self._emit(job, status, data)
        return True

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Ask for a job to stop: a queued one ends at once, a running one when its owner hears of it."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.status == "queued":
            self.finish(job_id, "cancelled", error="cancelled before it started")
            self._stop.setdefault(job.owner, set()).add(job_id)  # the queuer drops its queued call
        elif job.status == "running" and not job.cancel_requested:
            job.cancel_requested = True
            self._stop.setdefault(job.owner, set()).add(job_id)
            self._emit(job, "cancelling", {"status": "running", "backend": job.current})
        return self.view(job_id)

    # --- owners -----------------------------------------------------------------------------------------------

    def heartbeat(self, owner: str, job_ids: list[str]) -> list[str]:
        """Renew the leases of the jobs `owner` holds; those among them (and any it owns) that it must stop now."""
        now = self._clock()
        for job_id in job_ids:
            job = self._live(job_id)
            if job is not None:
                job.renewed_at = now
        stop = self._stop.pop(owner, set())
        # Ended without the owner's word (lost to a lapsed lease, cancelled while queued) or forgotten entirely.
        stop.update(j for j in job_ids if j not in self._jobs or self._jobs[j].status in TERMINAL)
        return sorted(stop)

    def must_stop(self, owner: str) -> bool:
        return bool(self._stop.get(owner))

    def expire(self) -> bool:
        """End the jobs whose lease lapsed, forget old finished jobs; True when anything changed."""
        now = self._clock()
        changed = False
        for job in list(self._jobs.values()):
            if job.status not in TERMINAL and now - job.renewed_at > self.settings.lease_s:
                why = f"no gateway replica holds it any more (no heartbeat for {self.settings.lease_s:g} s)"
                changed |= self.finish(job.id, "lost", error=why)
        held = {job.owner for job in self._jobs.values() if job.status not in TERMINAL}
        self._stop = {owner: jobs for owner, jobs in self._stop.items() if owner in held}
        return self._forget(now) or changed

    # --- reading ----------------------------------------------------------------------------------------------

    def view(self, job_id: str) -> dict[str, Any] | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        return {
            "id": job.id,
            "status": job.status,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "ended_at": job.ended_at,
            "request": dict(job.request),
            "attempts": [dict(a) for a in job.attempts],
            "current": job.current,
            "progress": dict(job.progress) if job.progress else None,
            "result": job.result,
            "error": job.error,
            "cancel_requested": job.cancel_requested,
            "last_event_id": job.events[-1].seq if job.events else 0,
            "key_id": job.key_id,
        }

    def events_after(self, job_id: str, seq: int) -> tuple[list[dict[str, Any]], bool] | None:
        """The job's events after `seq` and whether it has ended; None for an unknown job."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        return [asdict(e) for e in job.events if e.seq > seq], job.status in TERMINAL

    # --- inside -----------------------------------------------------------------------------------------------

    def _live(self, job_id: str) -> _Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.status not in TERMINAL else None

    def _emit(self, job: _Job, kind: str, data: dict[str, Any]) -> None:
        seq = job.events[-1].seq + 1 if job.events else 1
        job.events.append(JobEvent(seq, kind, {"job_id": job.id, **data}, self._clock()))

    def _forget(self, now: float) -> bool:
        ended = [j for j in self._jobs.values() if j.status in TERMINAL]
        gone = [j.id for j in ended if j.ended_at is not None and now - j.ended_at > self.settings.keep_s]
        overflow = len(self._jobs) - len(gone) - self.settings.max_jobs + 1
        if overflow > 0:
            gone += [j.id for j in ended if j.id not in gone][:overflow]
        for job_id in gone:
            del self._jobs[job_id]
        return bool(gone)


# --- what the HTTP routes answer (documented in /openapi.json) ----------------------------------------------------


class JobResult(GenerateResponse):
    """The finished generation, as `POST /api/generate/image` answers it; `dataUri` is left out when the image
    was saved (fetch `saved`), to keep finished jobs small."""

    data_uri: str | None = Field(default=None, alias="dataUri")


class JobProgress(BaseModel):
    backend: str
    step: int
    total: int


class JobView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: JobStatus
    created_at: float
    started_at: float | None
    ended_at: float | None
    request: dict[str, Any]
    attempts: list[AttemptModel] = Field(description="Every attempt so far, in order.")
    current: str | None = Field(description="The backend being tried now.")
    progress: JobProgress | None = Field(description="Denoising steps of the attempt in flight (Qwen-Image).")
    result: JobResult | None
    error: str | None
    cancel_requested: bool
    last_event_id: int = Field(description="The id of the job's latest event (see /events).")
    key_id: str | None = Field(default=None, description="The id of the API key that submitted it (never the key).")
