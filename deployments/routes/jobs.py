"""`/api/jobs`: a generation as a job to watch (Server-Sent Events) and cancel, answered by any gateway replica."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cascade.errors import Conflict, NotFound, RequestRejected, Unavailable
from cascade.jobs import EVENT_TYPES, TERMINAL, JobView
from cascade.openapi import CAPPED_JSON_ERRORS, READS, SPENDS, ErrorBody, body_ref, responses
from cascade.schemas import ImageRequest
from deployments.access import Identified, Job
from deployments.routes import GatewayDep, app_url

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

    from cascade.access import Grant
    from deployments.gateway import Gateway
    from deployments.job_runner import JobRunner

router = APIRouter(prefix="/api/jobs", tags=["Jobs"])

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
# DELETE waits this long for the job to end, so a cancel usually answers with the final state.
CANCEL_WAIT_S = 5.0
# How soon an EventSource reconnects after the stream drops (it sends Last-Event-ID to resume).
RETRY_MS = 2000


def _view(view: dict[str, Any]) -> dict[str, Any]:
    return JobView.model_validate(view).model_dump(mode="json", by_alias=True)


def _runner(gw: Gateway) -> tuple[JobRunner, DeploymentHandle]:
    if gw.runner is None or gw.board is None:
        raise Unavailable("jobs need the progress board deployment, which this app was built without")
    return gw.runner, gw.board


async def _job(board: DeploymentHandle, job_id: str, gw: Gateway, grant: Grant) -> dict[str, Any]:
    """The job's view; 404 also for another key's job (admin keys see every job), so ids cannot be probed."""
    view = await board.get_job.remote(job_id) if _JOB_ID.match(job_id) else None
    if view is not None and not gw.access.sees_everything(grant) and view.get("key_id") != grant.key_id:
        view = None
    if view is None:
        raise NotFound(f"no job {job_id[:80]!r} (finished jobs are kept for a while, then forgotten)")
    return view  # type: ignore[no-any-return]


@router.post(
    "",
    status_code=202,
    response_model=None,
    summary="Start a generation as a job",
    responses={
        **responses(202, JobView, *CAPPED_JSON_ERRORS, *SPENDS),
        202: {"model": JobView, "headers": {"Location": {"schema": {"type": "string"}, "description": "The job."}}},
    },
    openapi_extra=body_ref(ImageRequest),
)
async def submit(request: Request, gw: GatewayDep, ticket: Job) -> JSONResponse:
    # Admitted like a generate (rate, concurrency: the job holds its slot until it ends), checked like one (400s,
    # 403 for a backend the key may not use), and its image counted against the key's day now: a job that could
    # never run is refused here, not after the client went away. Spend is held when the remote backend is called.
    runner, _ = _runner(gw)
    image_request = gw.check(await gw.read_json(request), ticket.grant)
    await ticket.hold_image()
    job_id = uuid.uuid4().hex
    view = await runner.submit(job_id, image_request, ticket.grant, ticket.hand_over())
    if view is None:
        raise Unavailable("too many unfinished jobs; try again later")
    location = app_url(request, f"/api/jobs/{job_id}")
    return JSONResponse(_view(view), status_code=202, headers={"location": location})


@router.get(
    "/{job_id}",
    response_model=None,
    summary="A job's state",
    responses=responses(200, JobView, 404, *READS),
)
async def get(job_id: str, gw: GatewayDep, grant: Identified) -> JSONResponse:
    _, board = _runner(gw)
    return JSONResponse(_view(await _job(board, job_id, gw, grant)))


@router.delete(
    "/{job_id}",
    response_model=None,
    summary="Cancel a job",
    description=f"Stops the backend at work (Qwen-Image at its next step). Answers 200 once the job has ended "
    f"`cancelled` (waiting up to {CANCEL_WAIT_S:g} s), 202 while it is still stopping, 409 when it had already "
    "ended otherwise.",
    responses={**responses(200, JobView, 404, 409, *READS), 202: {"model": JobView}},
)
async def cancel(job_id: str, gw: GatewayDep, grant: Identified) -> JSONResponse:
    _, board = _runner(gw)
    await _job(board, job_id, gw, grant)
    view = await board.cancel_job.remote(job_id, CANCEL_WAIT_S)
    if view is None:
        raise NotFound(f"no job {job_id!r}")
    if view["status"] in TERMINAL and view["status"] != "cancelled":
        raise Conflict(f"job {job_id} already ended: {view['status']}")
    return JSONResponse(_view(view), status_code=200 if view["status"] == "cancelled" else 202)


_EVENTS_DOC = (
    "Server-Sent Events, one per change: `queued`, `started`, `attempt_started` {backend}, `progress` {backend, "
    "step, total}, `attempt_ended` {backend, outcome, error, elapsed_ms}, `cancelling`, then one of `done` "
    "{result}, `failed` {error, attempts}, `cancelled`, `lost` {error}; each one's data also has `job_id` and `at` "
    "(Unix seconds). Each has an `id`: send the last one back "
    "as `Last-Event-ID` to resume. Comments (`: keep-alive`) come while nothing happens. 204 when a resumed "
    "stream has nothing more to say (the job ended), which tells an EventSource to stop reconnecting."
)


# One event of the stream (OpenAPI before 3.2 has a stream's `schema` describe each event).
_EVENT = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"enum": list(EVENT_TYPES)},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string", "description": "JSON: the job's id and what the event says."},
    },
}


@router.get(
    "/{job_id}/events",
    response_model=None,
    summary="A job's events, live",
    description=_EVENTS_DOC,
    responses={
        200: {"content": {"text/event-stream": {"schema": _EVENT}}, "description": "The event stream."},
        204: {"description": "The job ended and every event was already sent."},
        **responses(400, ErrorBody, 404, *READS),
    },
)
async def events(
    job_id: str,
    gw: GatewayDep,
    grant: Identified,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    _, board = _runner(gw)
    view = await _job(board, job_id, gw, grant)
    after = 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit() or len(last_event_id) > 12:
            raise RequestRejected("Last-Event-ID", "expected the id of an event of this stream", 400)
        after = int(last_event_id)
    if view["status"] in TERMINAL and after >= view["last_event_id"]:
        return Response(status_code=204)
    stream = _stream(board, job_id, after, gw.settings.jobs.events_heartbeat_s)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def _event(seq: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _stream(board: DeploymentHandle, job_id: str, after: int, heartbeat_s: float) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        batch = await board.job_events.remote(job_id, after, heartbeat_s)
        if batch is None:  # forgotten under our feet (the board restarted): say so rather than hang up mutely
            yield _event(after + 1, "lost", {"job_id": job_id, "status": "lost", "error": "the job is no longer known"})
            return
        for event in batch["events"]:
            # `at` (the board's clock, Unix seconds) lets a page draw the attempts on a time axis.
            yield _event(event["seq"], event["type"], {**event["data"], "at": event["at"]})
            after = event["seq"]
        if batch["ended"]:
            return
        if not batch["events"]:
            yield ": keep-alive\n\n"
