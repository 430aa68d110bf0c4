"""`/openapi.json` and `/docs`, built per replica so the schemas carry this deployment's limits and backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from cascade import openapi
from deployments.routes import GatewayDep, app_url

if TYPE_CHECKING:
    pass

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request, gw: GatewayDep) -> JSONResponse:
    doc = openapi.build(
        request.app.routes,
        limits=gw.settings.limits,
        backends=list(gw.settings.order),
        models=list(gw.models()),
        root_path=request.scope.get("root_path", ""),
        auth_required=gw.access.required,
    )
    return JSONResponse(doc)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=app_url(request, "/openapi.json"), title="Cascade")
