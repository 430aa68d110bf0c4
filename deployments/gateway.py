"""The ingress: validate, plan the chain, run it, store the image, answer (HTTP and Python handle alike)."""

# No `from __future__ import annotations`: FastAPI resolves route parameter types through Serve's class
# wrapper, which cannot see this module's names in string annotations.

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from cascade import observe, openapi
from cascade.access import INTERNAL, Grant
from cascade.circuit import CircuitBreaker
from cascade.config import GatewaySettings
from cascade.errors import (
    AllBackendsFailed,
    BackendFailed,
    CascadeError,
    Forbidden,
    RequestRejected,
    http_headers,
    http_status,
)
from cascade.fallback import ChainResult, ChainWatcher, Step, run_chain
from cascade.images import ImageService, NewImage, SaveOutcome
from cascade.images import api as history
from cascade.images.http import object_response
from cascade.images.schemas import ImagePage, ImageRecord
from cascade.schemas import AttemptModel, GenerateResponse, ImageRequest, decode_body, parse_request
from cascade.svg import svg_result
from cascade.types import ImageJob, ImageResult
from deployments import access
from deployments.access import Admitted, Identified, Viewer
from deployments.job_runner import JobRunner
from deployments.pillow import PillowGenerator, for_gateway
from deployments.plumbing import GatewayMetrics, HandleCall, ReplicaWatch, request_id
from deployments.routes import docs, jobs, openai, read_capped, web
from models.datauri import encode_data_uri
from models.imaging import encode_as
from models.seeds import stable_seed

logger = logging.getLogger("ray.serve")
# /openapi.json and /docs come from deployments.routes.docs: the schemas there carry this deployment's limits.
api = FastAPI(
    title="Cascade",
    description="Image generation with an ordered, observable fallback.",
    openapi_url=None,
    docs_url=None,
    redoc_url=None,
)
openai.install(api)
api.include_router(jobs.router)
api.include_router(docs.router)
api.include_router(web.router)
access.install(api)


@api.exception_handler(CascadeError)
async def _cascade_error(request: Request, exc: CascadeError) -> JSONResponse:
    if openai.is_openai(request):
        return openai.error_response(exc)
    body: dict[str, Any] = {"error": str(exc), "request_id": request_id()}
    if isinstance(exc, RequestRejected | Forbidden):
        body["field"] = exc.field
    if isinstance(exc, AllBackendsFailed | BackendFailed):
        body["attempts"] = [AttemptModel.of(a).model_dump() for a in exc.attempts]
    return JSONResponse(body, status_code=http_status(exc), headers=http_headers(exc))


@api.exception_handler(RequestValidationError)
async def _invalid_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own checks (query and path parameters) answer in the same shape as ours.
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
    field = str(first["loc"][-1]) if first.get("loc") else "request"
    return await _cascade_error(request, RequestRejected(field, first["msg"]))


def _done(result: ImageResult) -> asyncio.Future[ImageResult]:
    # The SVG is microseconds of pure Python: a thread hop would cost more than drawing it here.
    future: asyncio.Future[ImageResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _skip(name: str, reason: str) -> Step:
    """A step the chain reports as skipped without calling anything."""
    return Step(name, 0.0, _never, lambda: reason)


async def _never() -> ImageResult:
    raise RuntimeError("a skipped step is never called")


def _encoded(result: ImageResult, fmt: str, quality: int | None) -> ImageResult:
    data, mime = encode_as(result.data, fmt, quality)
    if mime == result.mime:
        return result
    return replace(result, data=data, mime=mime, meta={**result.meta, "encoded_from": result.mime})


# Module-level helpers stay above the class: Serve serialises the decorated class when it is defined.
@serve.deployment
@serve.ingress(api)
class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        backends: Mapping[str, DeploymentHandle],
        left_out: Mapping[str, str],
        board: DeploymentHandle | None = None,
    ) -> None:
        self.settings, self.left_out, self.board = settings, dict(left_out), board
        # Pillow run by this process (`runs_in: gateway`) stands in the map beside the handles.
        self.backends: dict[str, DeploymentHandle | PillowGenerator] = dict(backends)
        if settings.pillow_in_gateway:
            self.backends["pillow"] = for_gateway()
        # URLs left out of config come from this replica's environment (CASCADE_STORAGE_URL, CASCADE_DATABASE_URL).
        self.images = ImageService.open(settings.storage, Path(settings.storage_dir), os.environ)
        self.images.start()
        # Keys, limits and Sentry; refuses to start with auth off on a public HTTP host (deployments/access.py).
        self.access = access.replica_access(settings, self.images)
        # Which replica answered (its Serve id, not its address): tells replicas and nodes apart when debugging.
        self.served_by = {"x-cascade-replica": serve.get_replica_context().replica_id.unique_id}
        self.breakers = {
            name: CircuitBreaker(settings.circuit.failure_threshold, settings.circuit.cooldown_s)
            for name in self.backends
        }
        self.replicas = ReplicaWatch(serve.get_replica_context().app_name)
        self.metrics = GatewayMetrics()
        self._waking: dict[str, asyncio.Future[Any]] = {}
        context = serve.get_replica_context()
        # Jobs run as calls to this deployment's own `run_job`, made through its handle (see job_runner).
        self.runner = (
            None
            if board is None
            else JobRunner(
                board,
                context.replica_id.unique_id,
                lambda: serve.get_deployment_handle(context.deployment, context.app_name),
            )
        )

    # --- HTTP -------------------------------------------------------------------------------------------------

    @api.post("/api/generate/image", **openapi.GENERATE_IMAGE)
    async def http_generate(self, request: Request, grant: Admitted) -> Response:
        # A client that hangs up cancels this handler (Serve's proxy cancels the request), and with it the backend
        # call in flight (run_chain cancels its downstream call when it is cancelled itself).
        answer = await self.generate(await self.read_json(request), grant=grant)
        # pydantic writes the JSON bytes in one pass; the data URI is most of them (bench/RESULTS.md, issue 14).
        return Response(answer.model_dump_json(by_alias=True), media_type="application/json", headers=self.served_by)

    async def read_json(self, request: Request) -> Any:
        """The request's JSON body: size-capped, in time, content type checked, parsed (else 400/408/413/415)."""
        limits = self.settings.limits
        raw = await read_capped(request, limits.max_body_bytes, limits.body_read_timeout_s)
        return decode_body(raw, request.headers.get("content-type"), limits)

    @api.get("/generated/{name}", response_class=Response, **openapi.GENERATED)
    @api.head("/generated/{name}", response_class=Response, include_in_schema=False)
    async def generated(self, name: str, request: Request) -> Response:
        response = await object_response(self.images, name, request.headers, head=request.method == "HEAD")
        response.headers.update(self.served_by)
        return response

    @api.get("/api/images", response_model=ImagePage, **openapi.LIST_IMAGES)
    async def list_images(
        self,
        grant: Identified,
        limit: Annotated[int, Query(ge=1, le=history.MAX_PAGE)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        backend: Annotated[str | None, Query(max_length=64)] = None,
        q: Annotated[str | None, Query(max_length=200, description="case-insensitive substring of the prompt")] = None,
    ) -> ImagePage:
        return await history.list_images(self.images, limit, cursor, backend, q, self.access.owner(grant))

    @api.get("/api/images/{image_id}", response_model=ImageRecord, **openapi.GET_IMAGE)
    async def get_image(self, image_id: uuid.UUID, grant: Identified) -> ImageRecord:
        return await history.get_image(self.images, image_id, self.access.owner(grant))

    @api.delete("/api/images/{image_id}", status_code=204, response_class=Response, **openapi.DELETE_IMAGE)
    async def delete_image(self, image_id: uuid.UUID, grant: Identified) -> Response:
        await history.delete_image(self.images, image_id, self.access.owner(grant))
        return Response(status_code=204)

    @api.get("/healthz")
    async def healthz(self, viewer: Viewer) -> dict[str, Any]:
        if viewer is None or not self.access.sees_everything(viewer):
            # Open to load balancers and probes; what is deployed where, and why not, is for admin keys.
            return {"status": "ok", "auth": "required"}
        await self.replicas.fresh()
        jobs = await self._from_board("jobs")
        described = await self._from_board("replicas")
        backends: dict[str, Any] = {}
        for name in self.settings.order:
            route = self.settings.routes.get(name)
            entry: dict[str, Any] = {"deployed": name in self.backends or name == "svg"}
            if name in self.left_out:
                entry["reason"] = self.left_out[name]
            if isinstance(self.backends.get(name), PillowGenerator):
                entry["runs_in"] = "gateway"
            elif name in self.backends:
                entry["replicas"] = self.replicas.states(name) or {}
            if name in self.backends:
                entry["circuit"] = self.breakers[name].state
                entry["consecutive_failures"] = self.breakers[name].failures
                entry["jobs"] = [job for job in jobs if job.get("backend") == name]
                # What replicas post about themselves (Qwen-Image: memory plan, measured speed), if anything.
                if about := [info for info in described if info.get("backend") == name]:
                    entry["replica_info"] = about
                if failure := self.replicas.failure(name):
                    entry["failure"] = failure
            if route is not None:
                entry.update(timeout_s=route.timeout_s, cold_start=route.cold_start, remote=route.remote)
                entry["domain"] = None if route.domain is None else route.domain.name
            backends[name] = entry
        storage = await self.images.health()
        return {"status": "ok", "order": list(self.settings.order), "backends": backends, "storage": storage}

    async def _from_board(self, method: str) -> list[dict[str, Any]]:
        if self.board is None:
            return []
        try:
            return await asyncio.wait_for(getattr(self.board, method).remote(), 2.0)
        except Exception:  # health must answer even when the board does not
            logger.warning("progress board did not answer", exc_info=True)
            return []

    # --- Python callers (serve.get_app_handle(...).generate.remote(...)) and HTTP alike -----------------------

    def check(self, body: ImageRequest | Mapping[str, Any], grant: Grant | None = None) -> ImageRequest:
        """The validated request, or the RequestRejected (or the 403 for a backend the key may not use) that
        `generate` would raise for it."""
        request, _, _ = parse_request(body, self.settings.limits)
        self._plan(request)
        self.access.check_backend(grant or INTERNAL, request.backend)
        return request

    def models(self, grant: Grant | None = None) -> dict[str, str | None]:
        """What can serve, by OpenAI model id: `cascade` (the whole chain) and each deployed backend (those the
        caller's key may use, when `grant` is given)."""
        key = None if grant is None else grant.key
        deployed = [name for name in self.settings.order if name == "svg" or name in self.backends]
        return {"cascade": None, **{name: name for name in deployed if key is None or key.may_use(name)}}

    async def run_job(self, job_id: str, request: ImageRequest, grant: Grant | None = None) -> bool:
        """A job's run, called through this deployment's handle by the replica that took POST /api/jobs; whether it
        made its image. That replica admitted it and holds its image against the key's day (`prepaid`)."""
        if self.runner is None:
            return False
        return await self.runner.run(job_id, request, functools.partial(self.generate, grant=grant, prepaid=True))

    async def generate(
        self,
        body: ImageRequest | Mapping[str, Any],
        watcher: ChainWatcher | None = None,
        tag: str | None = None,
        *,
        grant: Grant | None = None,
        prepaid: bool = False,
    ) -> GenerateResponse:
        """`watcher` hears each attempt as it happens; `tag` (a job's id) replaces the request id towards the
        backends, so that their progress posts name the job. `grant`: who asks (from `Admitted`); None for Python
        handle callers, who are in the cluster and trusted. `prepaid`: the caller already counted this image
        against the key's day (a job, several images of one /v1 call)."""
        grant = grant or INTERNAL
        request, width, height = parse_request(body, self.settings.limits)
        names = self._plan(request)
        self.access.check_backend(grant, request.backend)
        rid = tag or request_id()
        with observe.request_scope(request_id=rid, key_id=grant.key_id, prompt=request.prompt):
            async with contextlib.nullcontext() if prepaid else self.access.images(grant):
                return await self._generate(request, width, height, names, grant, rid, watcher)

    async def _generate(
        self,
        request: ImageRequest,
        width: int,
        height: int,
        names: tuple[str, ...],
        grant: Grant,
        rid: str,
        watcher: ChainWatcher | None,
    ) -> GenerateResponse:
        await self.replicas.loaded()
        started = time.monotonic()
        job = ImageJob(
            prompt=request.prompt,
            width=width,
            height=height,
            seed=request.seed if request.seed is not None else stable_seed(request.prompt),
            options=request.options(),
            deadline=time.time() + self.settings.request_timeout_s,
            request_id=rid,
        )
        guard = self.access.chain(grant)
        steps = [guard.step(self._step(name, job, request)) for name in names]
        chain = await run_chain(steps, started + self.settings.request_timeout_s, watcher=watcher)
        self._account(chain, grant, job.request_id)
        if chain.refused is not None:
            raise chain.refused
        if chain.result is None:
            # A request that named a backend a limit kept it from gets that limit's answer (429), not a 503.
            raise guard.refusal(request.backend) or AllBackendsFailed(chain.attempts)
        # Encoding a multi-megabyte image would stall every other request on this replica's loop; the save
        # (object, then row) runs alongside it on the image service's own threads, bounded by its timeout.
        result = chain.result
        if request.output_format is not None:
            result = await asyncio.to_thread(_encoded, result, request.output_format, request.output_compression)
        data_uri, saved = await asyncio.gather(
            asyncio.to_thread(encode_data_uri, result.mime, result.data),
            self.images.save(self._new_image(request, job, result, chain, grant.key_id)),
        )
        return self._answer(job, result, chain, data_uri, saved)

    # --- the chain ----------------------------------------------------------------------------------------------

    def _plan(self, request: ImageRequest) -> tuple[str, ...]:
        if request.backend is None:
            return self.settings.order
        if request.backend not in self.settings.order:
            raise RequestRejected("backend", f"unknown backend {request.backend!r}; one of {list(self.settings.order)}")
        route = self.settings.routes.get(request.backend)
        if request.local and route is not None and route.remote:
            raise RequestRejected("backend", f"{request.backend} is remote but the request says local: true")
        return (request.backend,)

    def _step(self, name: str, job: ImageJob, request: ImageRequest) -> Step:
        if name == "svg":
            if request.output_format is not None:
                return _skip(name, f"draws SVG, and the request asks for {request.output_format}")
            return Step(name, 5.0, lambda: _done(svg_result(job)), instant=True)
        route = self.settings.routes[name]
        if name in self.left_out:
            return _skip(name, f"not deployed: {self.left_out[name]}")
        if request.local and route.remote:
            return _skip(name, "local request: remote backends are not called")
        # A request that names its backend gets it, on its domain or not.
        forced = request.backend is not None
        off_domain = None if forced or route.domain is None else route.domain.skip_reason(job.prompt)
        if off_domain is not None:
            return _skip(name, off_domain)
        backend = self.backends[name]
        if isinstance(backend, PillowGenerator):
            return Step(name, route.timeout_s, lambda: backend.start(job), self.breakers[name].skip_reason)
        return Step(name, route.timeout_s, lambda: HandleCall(backend, job), lambda: self._skip_reason(name))

    def _skip_reason(self, name: str) -> str | None:
        failure = self.replicas.failure(name)
        if failure is not None and not (self.replicas.states(name) or {}).get("RUNNING"):
            return f"deployment failed: {failure}"  # waiting would only run into the timeout
        if self.settings.routes[name].cold_start == "skip":
            states = self.replicas.states(name)
            if states is not None and states.get("RUNNING", 0) == 0:
                self._wake(name)
                return "no running replica (cold start policy: skip); waking it"
        # Last, because a half-open breaker hands its single probe to whoever asks.
        return self.breakers[name].skip_reason()

    def _wake(self, name: str) -> None:
        pending = self._waking.get(name)
        if pending is None or pending.done():
            # Any call makes Serve scale a deployment up from zero; `ping` is the cheapest one.
            self._waking[name] = asyncio.ensure_future(self._ping(name))

    async def _ping(self, name: str) -> None:
        try:
            await self.backends[name].ping.remote()
        except Exception:
            logger.info("waking %s failed", name, exc_info=True)

    def _account(self, chain: ChainResult, grant: Grant, rid: str) -> None:
        served = chain.result is not None
        for depth, attempt in enumerate(chain.attempts, start=1):
            observe.report_attempt(attempt, request_id=rid, key_id=grant.key_id)
            tags = {"backend": attempt.backend, "outcome": attempt.outcome}
            self.metrics.attempts.inc(tags=tags)
            self.metrics.latency.observe(attempt.elapsed_ms, tags=tags)
            if attempt.outcome == "ok":
                self.metrics.depth.observe(depth, tags={"backend": attempt.backend})
        for name, outcome in chain.health.items():
            if name in self.breakers:
                self.breakers[name].record(outcome)
        self.metrics.requests.inc(tags={"result": "ok" if served else "refused" if chain.refused else "failed"})
        outcomes = ", ".join(f"{a.backend}={a.outcome}" for a in chain.attempts)
        logger.info("chain: %s key=%s", outcomes, grant.key_id or grant.caller.key_id)

    def _new_image(
        self, request: ImageRequest, job: ImageJob, result: ImageResult, chain: ChainResult, key_id: str | None
    ) -> NewImage:
        return NewImage(
            data=result.data,
            mime=result.mime,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=job.width,
            height=job.height,
            seed=result.seed,
            backend=chain.backend or result.provider,
            provider=result.provider,
            attempts=[AttemptModel.of(a).model_dump() for a in chain.attempts],
            meta=dict(result.meta),
            request_id=job.request_id,
            api_key_id=key_id,
        )

    def _answer(
        self, job: ImageJob, result: ImageResult, chain: ChainResult, data_uri: str, saved: SaveOutcome
    ) -> GenerateResponse:
        url = f"/generated/{saved.name}" if saved.name else None
        return GenerateResponse(
            data_uri=data_uri,
            content=url or data_uri,
            saved=url,
            save_error=saved.error,
            image_id=str(saved.id) if saved.id else None,
            provider=result.provider,
            backend=chain.backend or result.provider,
            width=result.width,
            height=result.height,
            seed=result.seed,
            request_id=job.request_id,
            attempts=[AttemptModel.of(a) for a in chain.attempts],
            meta=dict(result.meta),
        )
