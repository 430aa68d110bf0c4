"""The web page at `/` and its files at `/web/<name>` (see cascade.web): static, so no gateway state is needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cascade.errors import NotFound
from cascade.web import asset

router = APIRouter(include_in_schema=False)


def _serve(name: str, request: Request) -> Response:
    found = asset(name)
    if found is None:
        raise NotFound(f"no page file {name[:80]!r}")
    headers = found.headers()
    if found.fresh_for(request.headers.get("if-none-match")):
        # A 304 carries the validators and caching headers a 200 would (RFC 9110 15.4.5), not the body's type.
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k != "content-type"})
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "content-length": str(len(found.body))})
    return Response(found.body, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    return _serve("index.html", request)


@router.api_route("/web/{name}", methods=["GET", "HEAD"])
async def page_file(name: str, request: Request) -> Response:
    if name == "index.html":  # one address for the page, so relative URLs in it always resolve the same way
        raise NotFound("the page is at /")
    return _serve(name, request)
