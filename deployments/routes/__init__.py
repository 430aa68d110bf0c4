"""HTTP routes beside the gateway's own, as plain FastAPI routers that reach the gateway replica serving them.

Serve binds the ingress class's own methods to its instance; routes in these routers get that instance through
`current_gateway` (the replica's servable object), so each module holds one front door's logic.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from ray import serve

from cascade.errors import RequestRejected

if TYPE_CHECKING:
    from deployments.gateway import Gateway


def current_gateway() -> Gateway:
    return serve.get_replica_context().servable_object  # type: ignore[no-any-return]


if TYPE_CHECKING:
    GatewayDep = Gateway
else:
    # FastAPI resolves annotations at run time, where the gateway module (which imports this one) is not loaded yet.
    GatewayDep = Annotated[Any, Depends(current_gateway)]


def route_path(request: Request) -> str:
    """The path inside the app: Serve mounts it at its route prefix, which Starlette keeps in the full path."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def app_url(request: Request, path: str) -> str:
    """An absolute path for `path` inside this app (under Serve's route prefix)."""
    return request.scope.get("root_path", "").rstrip("/") + path


async def read_capped(request: Request, limit: int, deadline_s: float) -> bytes:
    """The body, refused as soon as it passes `limit` (a chunked body declares no length up front), or when it has
    not all arrived within `deadline_s` (408)."""
    too_big = RequestRejected("body", f"over {limit} bytes", 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), deadline_s)
    except asyncio.TimeoutError:
        raise RequestRejected("body", f"not received within {deadline_s:g} s", 408) from None
    return b"".join(chunks)
