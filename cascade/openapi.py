"""The OpenAPI document: real schemas for bodies the handlers read themselves, with this deployment's limits in them.

The routes read their raw bodies (to cap their size and name the bad field in our own words), so FastAPI cannot
see a body model; they point at components by name instead (`body_ref`), and `build` fills those components in
from the pydantic models, tightened to the configured limits and backends.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from cascade.config import Limits
from cascade.jobs import JobView
from cascade.openai_compat import EXTENSIONS, GenerationsBody, ImagesResponse, OpenAIErrorBody, OpenAIModel
from cascade.schemas import AttemptModel, GenerateResponse, ImageRequest

_REF = "#/components/schemas/{model}"


class ErrorBody(BaseModel):
    """Every error of the /api routes; `field` names the bad part of the request."""

    error: str
    request_id: str
    field: str | None = Field(default=None, description="On 400, 413, 415 and 422.")
    attempts: list[AttemptModel] | None = Field(default=None, description="When every backend failed (503).")


def _json_ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def body_ref(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model` (validated by the handler, not by FastAPI)."""
    return {"requestBody": {"required": True, "content": _json_ref(model)}}


def responses(ok: int, model: type[BaseModel] | None, *errors: int, error: type[BaseModel] = ErrorBody) -> Any:
    """`responses=` for a route: `ok` with `model`, each of `errors` with the error body."""
    answers: dict[int | str, dict[str, Any]] = {ok: {"model": model} if model else {}}
    for status in errors:
        answers[status] = {"model": error}
    return answers


# What the handlers behind each JSON body reject, documented once.
CAPPED_JSON_ERRORS = (400, 408, 413, 415, 422)
# What the access layer (deployments/access.py) answers. Routes that spend (a generation, a job) take a key (401), a
# backend it may use (403), its rate, concurrency, daily images and spend (429); routes that read take a key. 503: the
# key database, or a limit store that fails closed, did not answer. `build` marks the routes that answer 401 as
# secured, and documents the 401's and 429's headers.
SPENDS = (401, 403, 429, 503)
READS = (401, 503)

GENERATE_IMAGE: dict[str, Any] = {
    "response_model": None,
    "summary": "Generate an image through the fallback chain",
    "responses": responses(200, GenerateResponse, *CAPPED_JSON_ERRORS, *SPENDS),
    "openapi_extra": body_ref(ImageRequest),
}

_IMAGE_BYTES = {
    mime: {"schema": {"type": "string", "format": "binary"}}
    for mime in ("image/png", "image/jpeg", "image/webp", "image/svg+xml")
}

GENERATED: dict[str, Any] = {
    "response_model": None,
    "summary": "A saved image (Range, If-None-Match and If-Range honoured)",
    "responses": {
        200: {"description": "The image.", "content": _IMAGE_BYTES},
        206: {"description": "The requested byte range of the image.", "content": _IMAGE_BYTES},
        304: {"description": "Not modified (the client's ETag matches)."},
        307: {"description": "Redirect to a presigned URL of the object store (`storage.redirect: true`)."},
        404: {"model": ErrorBody},
        416: {"description": "The range lies outside the image."},
        503: {"model": ErrorBody},
    },
}

# The history API (/api/images): the path's id and the query are checked by FastAPI (422), the store may be down.
# With auth required, a key sees its own generations only (admin keys see all).
LIST_IMAGES: dict[str, Any] = {
    "summary": "Saved generations, newest first",
    "responses": responses(200, None, 422, *READS),
}
GET_IMAGE: dict[str, Any] = {
    "summary": "One saved generation",
    "responses": responses(200, None, 404, 422, *READS),
}
DELETE_IMAGE: dict[str, Any] = {
    "summary": "Delete a generation (its image and its record); deleting twice is fine",
    "responses": responses(204, None, 422, *READS),
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`, a key made with `python -m cascade.keys create`.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The same key, as `x-api-key`."},
}
_SECURED = [{"bearer": []}, {"apiKey": []}]

_INT_HEADER = {"schema": {"type": "integer", "minimum": 0}}
_LIMIT_HEADERS = {
    "x-ratelimit-limit": {**_INT_HEADER, "description": "Requests the key's rate allows in a burst."},
    "x-ratelimit-remaining": {**_INT_HEADER, "description": "Requests left in that burst now."},
    "x-ratelimit-reset": {**_INT_HEADER, "description": "Seconds until the burst is whole again."},
}
_ANSWER_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="cascade"'}},
    "429": {
        "Retry-After": {**_INT_HEADER, "description": "Seconds to wait before asking again."},
        **_LIMIT_HEADERS,
    },
}


def _secure(operations: dict[str, Any], auth_required: bool) -> None:
    """Routes that may answer 401 take a key when auth is required. With auth off they take none (a key sent is not
    looked at), so they carry no `security`."""
    for operation in operations.values():
        answers = operation.get("responses", {})
        if "401" in answers and auth_required:
            operation["security"] = list(_SECURED)
        for status, headers in _ANSWER_HEADERS.items():
            if status in answers:
                answers[status].setdefault("headers", {}).update(copy.deepcopy(headers))


# Python's str.isspace() set, spelled out: a pattern's `\s` differs between Python and ECMA-262 (U+001C..U+001F).
_BLANK = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SIZE_PATTERN = r"^\s*\d{1,5}\s*[xX×]\s*\d{1,5}\s*$"


def _prompt(schema: dict[str, Any], limits: Limits) -> None:
    schema.update(minLength=1, maxLength=limits.max_prompt_chars, pattern=f"[^{_BLANK}]")
    schema["description"] = "What to draw: at least one non-blank character."


def _size(limits: Limits, auto: bool = False) -> dict[str, Any]:
    text = (
        f"`WIDTHxHEIGHT`, each side {limits.min_side}..{limits.max_side} pixels, at most "
        f"{limits.max_pixels / 1e6:g} megapixels; default {limits.default_size}."
    )
    size: dict[str, Any] = {"type": "string", "pattern": _SIZE_PATTERN, "description": text}
    if auto:
        size = {"anyOf": [size, {"const": "auto"}], "description": text + " `auto`: the default."}
    return {"anyOf": [size, {"type": "null"}], "description": size["description"]}


def _nullable_enum(values: Sequence[str], description: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": list(values)}, {"type": "null"}], "description": description}


def _pair(schema: dict[str, Any]) -> None:
    """Tuples come out as prefixItems (2020-12); plain `items` with a fixed length says the same to every tool."""
    for branch in schema.get("anyOf", [schema]):
        if "prefixItems" in branch:
            branch["items"] = branch.pop("prefixItems")[0]


def _components(limits: Limits, backends: Sequence[str], models: Sequence[str]) -> dict[str, Any]:
    modes: list[tuple[type[BaseModel], Any]] = [
        (ImageRequest, "validation"),
        (GenerationsBody, "validation"),
        (GenerateResponse, "serialization"),
        (ErrorBody, "serialization"),
        (JobView, "serialization"),
        (ImagesResponse, "serialization"),
        (OpenAIModel, "serialization"),
        (OpenAIErrorBody, "serialization"),
    ]
    _, top = models_json_schema(modes, ref_template=_REF)
    schemas: dict[str, Any] = copy.deepcopy(top.get("$defs", {}))

    image = schemas["ImageRequest"]["properties"]
    _prompt(image["prompt"], limits)
    image["size"] = _size(limits)
    image["backend"] = _nullable_enum(backends, "Use this one backend alone (no fallback).")
    _pair(image["translate"])

    openai = schemas["GenerationsBody"]
    props = openai["properties"]
    _prompt(props["prompt"], limits)
    props["size"] = _size(limits, auto=True)
    props["model"] = _nullable_enum(models, "`cascade` (the whole chain, the default) or one backend.")
    # Cascade's own fields ride along (the SDK's extra_body): documented, so a fuzzer does not call them unknown.
    for name in EXTENSIONS:
        props[name] = copy.deepcopy(image[name])
    return schemas


def build(
    routes: Sequence[BaseRoute],
    *,
    limits: Limits,
    backends: Sequence[str],
    models: Sequence[str],
    root_path: str = "",
    auth_required: bool = False,
) -> dict[str, Any]:
    """The document for `routes`, with components sized to `limits` and enums of the deployed names; the routes
    that take a key are secured when `auth_required`."""
    doc = get_openapi(
        title="Cascade",
        version="0.1.0",
        description="Image generation with an ordered, observable fallback.",
        routes=list(routes),
        servers=[{"url": root_path}] if root_path else None,
    )
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(_components(limits, backends, models))
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    for path, operations in doc.get("paths", {}).items():
        _secure(operations, auth_required)
        if path.startswith("/v1/"):
            for operation in operations.values():
                # FastAPI documents a 422 for any path parameter; on /v1 such an error is OpenAI's 400.
                if operation["responses"].pop("422", None) is not None:
                    operation["responses"].setdefault(
                        "400", {"description": "Bad Request", "content": _json_ref(OpenAIErrorBody)}
                    )
    return doc
