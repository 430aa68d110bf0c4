"""`/v1`: the OpenAI Images API, so the `openai` SDK and the apps built on it work by changing their base URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from cascade.openai_compat import (
    GenerationsBody,
    ImagesResponse,
    ModelList,
    ModelNotFound,
    OpenAIErrorBody,
    OpenAIModel,
    error_body,
    http_error_body,
    images_response,
    model_list,
    plan_generation,
)
from cascade.openapi import CAPPED_JSON_ERRORS, READS, SPENDS, body_ref, responses
from deployments.access import Admitted, Identified
from deployments.plumbing import request_id
from deployments.routes import GatewayDep, route_path

if TYPE_CHECKING:
    pass

T = TypeVar("T")
router = APIRouter(prefix="/v1", tags=["OpenAI Images API"])


@router.post(
    "/images/generations",
    response_model=None,
    summary="Create images (OpenAI-compatible)",
    responses=responses(200, ImagesResponse, *CAPPED_JSON_ERRORS[:-1], 404, *SPENDS, error=OpenAIErrorBody),
    openapi_extra=body_ref(GenerationsBody),
)
async def generations(request: Request, gw: GatewayDep, grant: Admitted) -> JSONResponse:
    raw = await gw.read_json(request)
    # Every deployed model, not only the key's: a model the key may not use is a 403, not a 404.
    gen = plan_generation(raw, gw.models(), unavailable=gw.left_out)
    gw.check(gen.requests[0], grant)  # the n requests differ only in their seeds: refuse a bad one before any work
    # All n images counted against the key's day at once: a day that cannot cover them all refuses the call.
    async with gw.access.images(grant, len(gen.requests)):
        results = await _all(gw.generate(body, grant=grant, prepaid=True) for body in gen.requests)
    base = gw.settings.public_base_url or str(request.base_url)
    answer = images_response(gen, results, base, int(time.time()), request_id())
    return JSONResponse(answer.model_dump(mode="json"))


@router.get(
    "/models",
    response_model=None,
    summary="Models that can serve (those the key may use)",
    responses=responses(200, ModelList, *READS, error=OpenAIErrorBody),
)
async def models(gw: GatewayDep, grant: Identified) -> JSONResponse:
    # The models this key may use.
    return JSONResponse(model_list(list(gw.models(grant)), int(gw.settings.built_at)).model_dump(mode="json"))


@router.get(
    "/models/{model_id}",
    response_model=None,
    summary="One model",
    responses=responses(200, OpenAIModel, 403, 404, *READS, error=OpenAIErrorBody),
)
async def model(model_id: str, gw: GatewayDep, grant: Identified) -> JSONResponse:
    available = gw.models()
    if model_id not in available:
        raise ModelNotFound(model_id, list(gw.models(grant)), gw.left_out.get(model_id))
    if available[model_id] is not None:
        gw.access.check_backend(grant, available[model_id])
    return JSONResponse(OpenAIModel(id=model_id, created=int(gw.settings.built_at)).model_dump(mode="json"))


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Every call's answer; at the first failure the others are cancelled (their backends too) and it is raised."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
                task.add_done_callback(lambda t: t.cancelled() or t.exception())


# --- errors in OpenAI's shape on /v1, our own elsewhere -----------------------------------------------------------


def is_openai(request: Request) -> bool:
    return route_path(request).startswith("/v1/")


def error_response(exc: BaseException) -> JSONResponse:
    status, body, headers = error_body(exc)
    return JSONResponse(body.to_json(), status_code=status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if not is_openai(request):
        return await http_exception_handler(request, exc)
    detail = f"Invalid URL ({request.method} {route_path(request)})" if exc.status_code == 404 else str(exc.detail)
    body = http_error_body(exc.status_code, detail).to_json()
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not is_openai(request):
        return await request_validation_exception_handler(request, exc)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ())]
    body = http_error_body(400, f"Invalid value for '{loc[-1] if loc else 'request'}': {first.get('msg', '')}.")
    return JSONResponse(body.to_json(), status_code=400)


def install(api: FastAPI) -> None:
    """Route /v1 and word Starlette's and FastAPI's own errors on it (no route, bad path parameter) as OpenAI does."""
    api.include_router(router)
    api.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
