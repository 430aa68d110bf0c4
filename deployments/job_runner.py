"""A gateway replica's side of `/api/jobs`: queue a job, run one, keep the leases, stop what the board says to stop.

A job runs as a call to the gateway's own `run_job` through its deployment handle, not as a loose task: Serve
counts it as an ongoing request (autoscaling sees it, a replica shutting down waits for it), routes it to the
least loaded gateway replica, and queues it while every replica is full (the job is then `queued`).
The replica that queued it awaits that call and reports `lost` at once if the runner dies; both list the job in
their heartbeats to the board, where a job that no live replica lists for a lease ends `lost`: never just gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, RequestCancelledError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from cascade.access import INTERNAL, Grant
from cascade.errors import AllBackendsFailed, CascadeError, Refused
from cascade.fallback import ChainWatcher
from cascade.schemas import AttemptModel, GenerateResponse, ImageRequest
from cascade.types import Attempt

logger = logging.getLogger("ray.serve")

# A stop can overtake the reply that starts the run it is for; it waits this long for the run to show up.
_EARLY_KEEP_S = 60.0

Generate = Callable[[ImageRequest, ChainWatcher, str], Awaitable[GenerateResponse]]
Settle = Callable[[bool], Awaitable[None]]


class _Reporter:
    """The chain's attempts, posted to the board in the order they happened without ever slowing the chain."""

    def __init__(self, board: DeploymentHandle, job_id: str) -> None:
        self.board, self.job_id = board, job_id
        self._queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._sender = asyncio.ensure_future(self._send())

    def started(self, backend: str) -> None:
        self._queue.put_nowait(("attempt_started", backend))

    def ended(self, attempt: Attempt) -> None:
        self._queue.put_nowait(("attempt_ended", AttemptModel.of(attempt).model_dump()))

    async def close(self) -> None:
        self._queue.put_nowait(None)
        await self._sender

    async def _send(self) -> None:
        while (item := await self._queue.get()) is not None:
            method, arg = item
            try:
                await getattr(self.board, method).remote(self.job_id, arg)
            except Exception:  # progress is best effort; the job's ending carries every attempt again
                logger.warning("job %s: could not post %s", self.job_id, method, exc_info=True)


async def _settle(settle: Settle | None, job_id: str, made: bool) -> None:
    if settle is None:
        return
    try:
        await settle(made)
    except Exception:  # the limits' own cleanup never raises; this is belt and braces for a job's ending
        logger.warning("job %s: could not settle its limits", job_id, exc_info=True)


def finished(response: GenerateResponse) -> dict[str, Any]:
    """A done job's result: the image itself only when it was not saved (otherwise `saved` has it)."""
    body = response.to_json()
    if response.saved is not None:
        body["dataUri"] = None
    return body


class JobRunner:
    def __init__(self, board: DeploymentHandle, owner: str, gateway: Callable[[], DeploymentHandle]) -> None:
        self.board, self.owner, self._make_gateway = board, owner, gateway
        self._gateway: DeploymentHandle | None = None
        self.queued: dict[str, DeploymentResponse] = {}  # jobs this replica queued, until their run ends
        self.running: dict[str, asyncio.Task[GenerateResponse]] = {}  # jobs this replica runs
        self._early: dict[str, float] = {}  # told to stop before its run registered itself: id -> when
        self._beating: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Task[None]] = set()

    # --- the replica that took POST /api/jobs -------------------------------------------------------------------

    async def submit(
        self, job_id: str, request: ImageRequest, grant: Grant = INTERNAL, settle: Settle | None = None
    ) -> dict[str, Any] | None:
        """Record the job and queue its run; its view, or None when the board holds too many jobs.

        `grant`: who submitted it (its key id goes on the job, its limits go with the run). `settle(made)` is awaited
        once the job can no longer make its image (its concurrency slot freed, its held image kept or given back),
        also when it is not queued at all."""
        summary = request.model_dump(mode="json", exclude_none=True)
        try:
            view = await self.board.create_job.remote(job_id, self.owner, summary, grant.key_id)
        except BaseException:
            await _settle(settle, job_id, False)
            raise
        if view is None:
            await _settle(settle, job_id, False)
            return None
        if self._gateway is None:
            self._gateway = self._make_gateway()
        # The run needs who asked and their limits, not this replica's concurrency lease (released here).
        response = self._gateway.run_job.remote(job_id, request, replace(grant, admission=None))
        self.queued[job_id] = response
        waiter = asyncio.ensure_future(self._await_run(job_id, response, settle))
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)
        self._beat()
        return view

    async def _await_run(self, job_id: str, response: DeploymentResponse, settle: Settle | None) -> None:
        # Whether the image was made; unknown when the run died on the way, and then it stays counted (the safe side).
        made = True
        try:
            made = bool(await response)
        except (RequestCancelledError, asyncio.CancelledError):
            made = False  # cancelled while queued: the board already says so
        except BackPressureError:
            made = False
            await self._end(job_id, "failed", "every gateway replica is busy and their queue is full")
        except RayActorError:
            await self._end(job_id, "lost", "the gateway replica running it died")
        except Exception as exc:
            logger.warning("job %s: its run failed outside the chain", job_id, exc_info=True)
            await self._end(job_id, "lost", f"its run failed: {type(exc).__name__}")
        finally:
            self.queued.pop(job_id, None)
            await _settle(settle, job_id, made)

    async def _end(self, job_id: str, status: str, why: str) -> None:
        try:
            await self.board.finish_job.remote(job_id, status, None, why)  # ignored if the run ended it already
        except Exception:
            logger.warning("job %s: could not report it %s", job_id, status, exc_info=True)

    # --- the replica that runs it (inside its own `run_job` request) ------------------------------------------

    async def run(self, job_id: str, request: ImageRequest, generate: Generate) -> bool:
        """Whether the job made its image."""
        if not await self.board.start_job.remote(job_id, self.owner):
            return False  # cancelled (or lost) while it waited in the queue
        reporter = _Reporter(self.board, job_id)
        task = asyncio.ensure_future(generate(request, reporter, job_id))
        self.running[job_id] = task
        if job_id in self._early:
            task.cancel()
        self._beat()
        status, result, error, attempts = "failed", None, None, None
        try:
            response = await asyncio.shield(task)
            status, result = "done", finished(response)
        except asyncio.CancelledError:
            # Either the board said stop (the task was cancelled) or this request itself was: stop the chain,
            # which cancels the backend call in flight (Qwen-Image then stops at its next step).
            task.cancel()
            await asyncio.wait({task})
            status, error = "cancelled", "cancelled by the client"
        except (AllBackendsFailed, Refused) as exc:
            error, attempts = str(exc), [AttemptModel.of(a).model_dump() for a in exc.attempts]
        except CascadeError as exc:
            error = str(exc)
        except Exception as exc:
            logger.warning("job %s failed", job_id, exc_info=True)
            error = f"internal error: {type(exc).__name__}"
        finally:
            self.running.pop(job_id, None)
            self._early.pop(job_id, None)
            await reporter.close()
        logger.info("job %s %s%s", job_id, status, f": {error}" if error else "")
        await self.board.finish_job.remote(job_id, status, result, error, attempts)
        return status == "done"

    # --- leases and stops ----------------------------------------------------------------------------------------

    def _beat(self) -> None:
        if self._beating is None or self._beating.done():
            self._beating = asyncio.ensure_future(self._heartbeat())

    async def _heartbeat(self) -> None:
        while self.queued or self.running:
            try:
                # Parks on the board until a job of ours must stop, or a third of the lease has passed.
                reply = await self.board.heartbeat.remote(self.owner, sorted({*self.queued, *self.running}))
            except Exception:
                logger.warning("jobs: heartbeat to the board failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for job_id in reply["stop"]:
                self._stop(job_id)

    def _stop(self, job_id: str) -> None:
        if job_id in self.running:
            self.running[job_id].cancel()
        elif job_id in self.queued:
            self.queued[job_id].cancel()  # still in Serve's queue: it never starts
        else:
            now = time.monotonic()
            self._early = {j: t for j, t in self._early.items() if now - t < _EARLY_KEEP_S}
            self._early[job_id] = now
