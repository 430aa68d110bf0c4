"""A loopback reverse proxy in front of a gateway that records what each call carried (method, path, the
Authorization and Last-Event-ID headers) and passes everything on. It can drop each job's first event stream after
a few events, as a flaky network or a proxy's idle timeout would, to test that the page resumes with Last-Event-ID.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy's own server sets.
_DROP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    last_event_id: str | None


@dataclass
class RecordingProxy:
    upstream: str  # e.g. http://127.0.0.1:8000
    cut_streams_after: int | None = None  # events of a job's first stream before the proxy drops it
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cut: set[str] = set()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- serving ----------------------------------------------------------------------------------------------

    def start(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        methods = ["GET", "HEAD", "POST", "DELETE", "PUT", "PATCH"]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        for _ in range(200):
            if self._server.started:
                return f"http://127.0.0.1:{port}"
            threading.Event().wait(0.05)
        raise TimeoutError("the recording proxy did not start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    # --- one request ------------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.seen.append(
            Seen(request.method, path, request.headers.get("authorization"), request.headers.get("last-event-id"))
        )
        client = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        upstream = client.build_request(
            request.method,
            self.upstream + path,
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        reply = await client.send(upstream, stream=True)
        out = {k: v for k, v in reply.headers.items() if k.lower() not in _DROP}
        body: AsyncIterator[bytes] = reply.aiter_raw()
        if self.cut_streams_after is not None and path.endswith("/events") and reply.status_code == 200:
            if path not in self._cut:
                self._cut.add(path)
                body = _first_events(reply.aiter_raw(), self.cut_streams_after)

        async def close() -> None:
            await reply.aclose()
            await client.aclose()

        return StreamingResponse(body, status_code=reply.status_code, headers=out, background=BackgroundTask(close))


async def _first_events(chunks: AsyncIterator[bytes], count: int) -> AsyncIterator[bytes]:
    """The stream up to the end of its `count`-th event (a block with `data:`), then nothing: a dropped stream."""
    buffer = b""
    sent = 0
    async for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            yield block + b"\n\n"
            if any(line.startswith(b"data:") for line in block.split(b"\n")):
                sent += 1
                if sent >= count:
                    return
