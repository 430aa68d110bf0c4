"""The gateway's Ray-facing helpers: handle calls as cancellable `Call`s, replica counts, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator
from typing import Any

from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from cascade.access_config import SentryConfig
from cascade.errors import BackendBusy
from cascade.types import ImageJob, ImageResult

logger = logging.getLogger("ray.serve")


class HandleCall:
    """One `generate` call on a backend deployment, with Ray's exceptions turned into ours."""

    def __init__(self, handle: DeploymentHandle, job: ImageJob) -> None:
        self._response: DeploymentResponse = handle.generate.remote(job)

    def __await__(self) -> Generator[Any, None, ImageResult]:
        return self._result().__await__()

    async def _result(self) -> ImageResult:
        try:
            return await self._response
        except BackPressureError as exc:
            raise BackendBusy(f"queue full ({exc.args[0]} waiting, limit {exc.args[1]})") from None
        except RayTaskError as exc:
            # Keep the backend's own exception: its message, not a remote traceback.
            raise exc.cause from None

    def cancel(self) -> None:
        self._response.cancel()


class ReplicaWatch:
    """Running replicas per deployment, from the controller, at most one refresh in flight.

    `serve.status()` blocks on the controller, so it runs in a thread and its answer is reused for `ttl_s`;
    readers never wait for it.
    """

    def __init__(self, app_name: str, ttl_s: float = 1.0) -> None:
        self.app_name, self.ttl_s = app_name, ttl_s
        self._counts: dict[str, dict[str, int]] = {}
        self._failures: dict[str, str] = {}
        self._at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    def states(self, deployment: str) -> dict[str, int] | None:
        """Replica states (e.g. {"RUNNING": 1}) as last seen; None before the first answer."""
        if time.monotonic() - self._at > self.ttl_s and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.ensure_future(self._update())
        return self._counts.get(deployment)

    def failure(self, deployment: str) -> str | None:
        """Why the controller gave up on the deployment (its replicas failed to start, or went unhealthy), if it did:
        the last line of its message, which is the error the replica raised."""
        return self._failures.get(deployment)

    async def fresh(self) -> None:
        await self._update()

    async def loaded(self) -> None:
        """Wait for the first answer only: before it, a cold backend would look warm and be waited on."""
        if self._at == 0.0:
            await self._update()

    async def _update(self) -> None:
        try:
            status = await asyncio.to_thread(serve.status)
            app = status.applications.get(self.app_name)
            deployments = app.deployments if app else {}
            self._counts = {name: dict(d.replica_states) for name, d in deployments.items()}
            self._failures = {
                name: _last_line(d.message)
                for name, d in deployments.items()
                if d.status in ("DEPLOY_FAILED", "UNHEALTHY") and d.message.strip()
            }
            self._at = time.monotonic()
        except Exception:
            logger.warning("could not read replica states from the controller", exc_info=True)


def _last_line(message: str, limit: int = 300) -> str:
    line = message.strip().splitlines()[-1].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


class GatewayMetrics:
    """Custom metrics on the Serve dashboard / Prometheus; deployment and replica tags are added by Ray."""

    def __init__(self) -> None:
        from ray.serve import metrics

        self.attempts = metrics.Counter(
            "cascade_backend_attempts", "Fallback attempts by backend and outcome.", tag_keys=("backend", "outcome")
        )
        self.latency = metrics.Histogram(
            "cascade_backend_attempt_latency_ms",
            "Time spent on one backend attempt.",
            boundaries=[1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000],
            tag_keys=("backend", "outcome"),
        )
        self.depth = metrics.Histogram(
            "cascade_fallback_depth",
            "Position in the chain of the backend that served (1 = first).",
            boundaries=[1, 2, 3, 4, 5, 6, 8],
            tag_keys=("backend",),
        )
        self.requests = metrics.Counter("cascade_requests", "Image requests by result.", tag_keys=("result",))


def share_serve_logging(name: str = "models") -> None:
    """Give our model code's loggers Serve's handlers: their lines then carry the request id and land in the
    replica's log file, like the deployment's own. Call from a replica's __init__ (Serve sets its handlers up
    when the replica starts)."""
    serve_logger = logging.getLogger("ray.serve")
    ours = logging.getLogger(name)
    ours.handlers = list(serve_logger.handlers)
    ours.setLevel(serve_logger.level)
    ours.propagate = False


def start_replica(component: str, sentry: SentryConfig | None) -> None:
    """What a backend replica's __init__ does first: our loggers on Serve's handlers, and Sentry (tagged with the
    component) when SENTRY_DSN is set in its environment."""
    share_serve_logging()
    from cascade import observe

    observe.init_sentry(sentry or SentryConfig(), component=component)


def request_id() -> str:
    # Serve puts the id (the client's X-Request-ID, or one it made) in every log line of the request.
    return serve.context._get_serve_request_context().request_id or ""
