"""API keys and limits for the gateway's routes: FastAPI dependencies a route opts into with one parameter.

    @api.post("/api/generate/image")
    async def http_generate(self, request: Request, grant: Admitted) -> JSONResponse:
        ...await self.generate(body, grant)...

- `Admitted`: the key checked (401), its rate and concurrency taken (429 with Retry-After), before the handler runs
  and before its body is read; the concurrency slot is freed when the handler returns. For routes that spend.
- `Identified`: the key checked only. For routes that read (history, jobs).
- `Job`: admitted like `Admitted`, but the slot (and the image the route holds with `hold_image`) outlives the
  request: the route hands them over to the job, which releases them when it ends.
- `Viewer`: the key when one is sent, else None (routes open to all that show more to admins: /healthz).

With `auth: off` every caller is anonymous (the config's `limits.anonymous`). `install(api)` adds the admitted
request's x-ratelimit-* headers (and the replica's id) to every response, errors included. The dependencies find
the replica's `Access` as the ingress object's `access` attribute.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from ray import serve
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cascade import observe
from cascade.access import Access, Grant
from cascade.errors import CascadeError, http_status
from cascade.keys import presented_key
from cascade.limits.guard import ImageHold

if TYPE_CHECKING:
    from cascade.config import GatewaySettings
    from cascade.images import ImageService

logger = logging.getLogger("ray.serve")
_HEADERS = "cascade_response_headers"


def replica_access(settings: GatewaySettings, images: ImageService) -> Access:
    """What a gateway replica's __init__ calls. Raises ValueError (the replica refuses to start) when auth is off
    on a public HTTP host without `auth_off_on_public_host`."""
    config = settings.access
    observe.init_sentry(config.sentry, component="gateway")
    config.check_host(settings.http_host or serve_http_host())
    keys = None
    if config.auth == "required":
        from cascade.keys.sql import SqlKeyStore

        # The metadata index's own engine; lookups wait for its migrations like image rows do.
        keys = SqlKeyStore(images.index.engine, timeout_s=min(images.args.timeout_s, 5.0), ready=images.ready)
    redis_url = (os.environ.get("CASCADE_REDIS_URL") or "").strip()
    limits = config.limits.open_store(redis_url or None)
    logger.info(
        "access: auth %s, limits %s",
        config.auth,
        "in Redis (CASCADE_REDIS_URL)" if redis_url else "in this replica (no CASCADE_REDIS_URL)",
    )
    remote = {name: route.remote for name, route in settings.routes.items()}
    return Access.open(config, keys, limits, request_timeout_s=settings.request_timeout_s, remote=remote)


def serve_http_host(environ: Mapping[str, str] = os.environ) -> str:
    """The host Serve's HTTP servers bind, as the controller holds it ("" when they are off)."""
    if environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
        # Ray then binds each ingress replica's own HTTP port (30000 and up) on every interface, whatever
        # http_options.host says, so that HAProxy on other nodes can reach it: the gateway is public.
        return "0.0.0.0"
    from ray.serve.context import _get_global_client

    return _get_global_client().http_config.host or ""


def _access() -> Access:
    return serve.get_replica_context().servable_object.access  # type: ignore[attr-defined, no-any-return]


class _Refusals:
    """Refusals by status and limit, on the Serve dashboard beside the chain's metrics."""

    counter: Any = None

    @classmethod
    def count(cls, exc: CascadeError) -> None:
        if cls.counter is None:
            from ray.serve import metrics

            cls.counter = metrics.Counter(
                "cascade_access_refusals", "Requests refused by auth or limits.", tag_keys=("status", "limit")
            )
        cls.counter.inc(tags={"status": str(http_status(exc)), "limit": str(getattr(exc, "limit", "auth"))})


async def _counted(pending: Awaitable[Grant]) -> Grant:
    try:
        return await pending
    except CascadeError as exc:
        _Refusals.count(exc)
        raise


async def _admitted(request: Request) -> AsyncIterator[Grant]:
    access = _access()
    grant = await _counted(access.admit(request.headers))
    setattr(request.state, _HEADERS, grant.headers)
    try:
        yield grant
    finally:
        await access.finish(grant)


async def _identified(request: Request) -> Grant:
    return await _counted(_access().identify(request.headers))


async def _viewer(request: Request) -> Grant | None:
    access = _access()
    if access.required and presented_key(request.headers) is None:
        return None
    return await _counted(access.identify(request.headers))


@dataclass
class JobTicket:
    """A job's admission (`POST /api/jobs`): its rate and concurrency taken like a generate's, its image held against
    the key's day, both kept past the response for as long as the job may run, by whoever it is handed over to."""

    access: Access
    grant: Grant
    hold: ImageHold | None = None
    handed: bool = False

    async def hold_image(self) -> None:
        self.hold = await self.access.hold_image(self.grant)

    def hand_over(self) -> Callable[[bool], Awaitable[None]]:
        """The job's `settle(made)`, to await once it has ended; the request no longer releases anything itself."""
        self.handed = True
        return self.end

    async def end(self, made: bool) -> None:
        await self.access.end_job(self.grant, self.hold, made)


async def _job_ticket(request: Request) -> AsyncIterator[JobTicket]:
    access = _access()
    grant = await _counted(access.admit(request.headers))
    setattr(request.state, _HEADERS, grant.headers)
    ticket = JobTicket(access, grant)
    try:
        yield ticket
    finally:
        if not ticket.handed:  # refused before it was queued (a bad body, a 403, the day used up)
            await ticket.end(False)


# scope="function": the slot is freed when the handler returns, before the response goes out, so a client's next
# request never finds its own last one still counted.
Admitted = Annotated[Grant, Depends(_admitted, scope="function")]
Identified = Annotated[Grant, Depends(_identified)]
Job = Annotated[JobTicket, Depends(_job_ticket, scope="function")]
Viewer = Annotated[Grant | None, Depends(_viewer)]


class _ResponseHeaders:
    """Adds the limit headers an admitted request earned, and which replica answered, to its response (errors too:
    a 422 still used up a request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = {"x-cascade-replica": _replica_id(), **state.get(_HEADERS, {})}
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if v and k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _replica_id() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside a replica (a plain FastAPI test client)
        return ""


def install(api: FastAPI) -> None:
    api.add_middleware(_ResponseHeaders)
