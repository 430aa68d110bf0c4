"""The OpenAI Images API on Cascade: its request to our ImageRequests, our answers and errors to its shapes. Ray-free.

Shapes follow the official `openai` Python SDK 3.57 (types/image_generate_params.py, types/images_response.py,
types/image.py, types/model.py, and `_make_status_error` in _client.py, which picks the exception class from the
HTTP status alone), and OpenAI's error body `{"error": {"message", "type", "param", "code"}}`, whose unknown-model
answer is 404 `model_not_found` and whose unknown-field answer is 400 `unknown_parameter`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from cascade.errors import AllBackendsFailed, CascadeError, NotFound, Refused, RequestRejected, http_status
from cascade.schemas import AttemptModel, GenerateResponse

DEFAULT_MODEL = "cascade"  # the whole chain, as configured
MAX_N = 4
SEED_SPACE = 2**32

# Cascade's own request fields a client may add (the SDK's `extra_body`); ImageRequest validates them.
EXTENSIONS = (
    "seed",
    "local",
    "negative_prompt",
    "steps",
    "guidance",
    "truncation_psi",
    "class_label",
    "translate",
    "rotate",
)
# Our field names where OpenAI has its own.
_PARAM = {"backend": "model", "body": None, "content-type": None}


class ParamError(RequestRejected):
    """A 400 in OpenAI's words: `code` as OpenAI would give it (invalid_value, unknown_parameter...)."""

    def __init__(self, param: str, message: str, code: str = "invalid_value", status: int = 400) -> None:
        super().__init__(param, message, status)
        self.args = (param, message, code, status)
        self.code = code


class ModelNotFound(NotFound):
    def __init__(self, model: str, available: Sequence[str], why: str | None = None) -> None:
        super().__init__(model, tuple(available), why)
        self.model, self.available, self.why = model, tuple(available), why

    def __str__(self) -> str:
        reason = f" (not deployed: {self.why})" if self.why else ""
        return f"The model '{self.model[:100]}' does not exist here{reason}; available: {', '.join(self.available)}"


class GenerationsBody(BaseModel):
    """`POST /v1/images/generations`. OpenAI parameters with no meaning here are accepted and ignored
    (quality, style, moderation, user, safety_identifier, complexity, partial_images)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: StrictStr
    model: StrictStr | None = Field(default=None, description="`cascade` (the whole chain) or one backend's name.")
    n: StrictInt | None = Field(default=None, ge=1, le=MAX_N, description="Images, each its own run of the chain.")
    size: StrictStr | None = Field(default=None, description="`WIDTHxHEIGHT` within the configured limits, or auto.")
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp", "svg"] | None = Field(
        default=None, description="png by default; svg from the svg model only."
    )
    output_compression: StrictInt | None = Field(default=None, ge=0, le=100, description="jpeg/webp quality.")
    background: Literal["transparent", "opaque", "auto"] | None = Field(
        default=None, description="transparent is refused: no backend draws one."
    )
    stream: StrictBool | None = Field(default=None, description="true is refused: POST /api/jobs streams progress.")
    quality: Literal["low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"] | None = None
    style: Literal["vivid", "natural"] | None = None
    moderation: Literal["low", "auto"] | None = None
    user: StrictStr | None = None
    safety_identifier: StrictStr | None = None
    complexity: Literal["low", "medium", "high"] | None = None
    partial_images: StrictInt | None = Field(default=None, ge=0, le=3)


@dataclass(frozen=True)
class Generation:
    """One `/v1/images/generations` call: n image requests and how to answer them."""

    model: str
    requests: tuple[dict[str, Any], ...]  # ImageRequest bodies, one per image, seeds seed, seed+1, ...
    response_format: Literal["b64_json", "url"]
    output_format: str


def _rejected(exc: ValidationError) -> ParamError:
    first = exc.errors()[0]
    loc = first["loc"]
    param = str(loc[0]) if loc else "body"
    if first["type"] == "extra_forbidden":
        return ParamError(param, f"Unknown parameter: '{param[:100]}'.", "unknown_parameter")
    if first["type"] == "missing":
        return ParamError(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")
    return ParamError(param, f"Invalid value for '{param}': {first['msg']}.")


def plan_generation(
    raw: Any,
    models: Mapping[str, str | None],
    *,
    unavailable: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> Generation:
    """Validate an OpenAI body. `models` maps each servable model id to its backend (None: the whole chain);
    `unavailable` names configured backends left out, with the reason (said in the 404)."""
    if not isinstance(raw, dict):
        raise ParamError("body", "The request body must be a JSON object.", "invalid_type")
    ours = {k: raw[k] for k in EXTENSIONS if k in raw}
    theirs = {k: v for k, v in raw.items() if k not in EXTENSIONS}
    try:
        body = GenerationsBody.model_validate(theirs)
    except ValidationError as exc:
        raise _rejected(exc) from None
    model = DEFAULT_MODEL if body.model is None else body.model
    if model not in models:
        raise ModelNotFound(model, list(models), (unavailable or {}).get(model))
    if body.stream:
        raise ParamError("stream", "Streaming is not supported: POST /api/jobs streams progress as events.")
    if body.background == "transparent":
        raise ParamError("background", "No backend here draws a transparent background.")
    svg = models[model] == "svg"
    fmt = body.output_format or ("svg" if svg else "png")
    if svg != (fmt == "svg"):
        raise ParamError("output_format", "Only the svg model answers SVG, and it answers nothing else.")
    seed = ours.pop("seed", None)
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_SPACE):
        raise ParamError("seed", f"Invalid value for 'seed': an integer 0..{SEED_SPACE - 1}.")
    # OpenAI clients expect a new picture each time they ask, so no seed means a random one (each is reported).
    base = seed if seed is not None else (rng or random.SystemRandom()).randrange(2**31)
    common: dict[str, Any] = {**ours, "prompt": body.prompt}
    if body.size not in (None, "auto"):
        common["size"] = body.size
    if models[model] is not None:
        common["backend"] = models[model]
    if not svg:
        common["output_format"] = fmt
        if body.output_compression is not None:
            common["output_compression"] = body.output_compression
    elif body.output_compression is not None:
        raise ParamError("output_compression", "Applies to jpeg and webp only.")
    requests = tuple({**common, "seed": (base + i) % SEED_SPACE} for i in range(body.n or 1))
    return Generation(model, requests, body.response_format or "b64_json", fmt)


# --- answers --------------------------------------------------------------------------------------------------


class OpenAIImage(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = Field(default=None, description="The prompt as used (Cascade does not rewrite it).")
    seed: int | None = None
    backend: str
    provider: str
    attempts: list[AttemptModel]
    save_error: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[OpenAIImage]
    background: Literal["opaque"] = "opaque"
    output_format: Literal["png", "jpeg", "webp", "svg"]
    size: str
    request_id: str


_FORMAT_OF = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/svg+xml": "svg"}


def image_url(saved: str | None, data_uri: str, base_url: str) -> str:
    """An absolute URL for a saved image (`base_url` + its path), or its data URI when it was not saved."""
    if saved is None:
        return data_uri
    if saved.startswith(("http://", "https://")):
        return saved
    return base_url.rstrip("/") + "/" + saved.lstrip("/")


def images_response(
    gen: Generation, results: Sequence[GenerateResponse], base_url: str, created: int, request_id: str
) -> ImagesResponse:
    data = []
    for result in results:
        payload = result.data_uri.partition(";base64,")[2]
        item = OpenAIImage(
            revised_prompt=str(gen.requests[0]["prompt"]),
            seed=result.seed,
            backend=result.backend,
            provider=result.provider,
            attempts=result.attempts,
            save_error=result.save_error,
        )
        if gen.response_format == "url":
            item.url = image_url(result.saved, result.data_uri, base_url)
        else:
            item.b64_json = payload
        data.append(item)
    first = results[0]
    fmt = _FORMAT_OF.get(first.data_uri.partition(";")[0].removeprefix("data:"), gen.output_format)
    return ImagesResponse(
        created=created,
        data=data,
        output_format=fmt,  # type: ignore[arg-type]
        size=f"{first.width}x{first.height}",
        request_id=request_id,
    )


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cascade"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


def model_list(models: Sequence[str], created: int) -> ModelList:
    return ModelList(data=[OpenAIModel(id=m, created=created) for m in models])


# --- errors ---------------------------------------------------------------------------------------------------


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None
    attempts: list[AttemptModel] | None = Field(default=None, description="When every backend failed.")


class OpenAIErrorBody(BaseModel):
    error: OpenAIError

    def to_json(self) -> dict[str, Any]:
        """OpenAI's four keys always (null where they mean nothing), ours only when they carry something."""
        body = self.model_dump(mode="json")
        if body["error"]["attempts"] is None:
            del body["error"]["attempts"]
        return body


_TYPE = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error", 503: "server_error"}
_CODE = {
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
}


def error_body(exc: BaseException) -> tuple[int, OpenAIErrorBody, dict[str, str]]:
    """Status, body and headers for any error raised while answering a /v1 route."""
    status = http_status(exc)
    headers = dict(getattr(exc, "headers", None) or {}) if isinstance(exc, CascadeError) else {}
    field: str | None = getattr(exc, "field", None)
    param = _PARAM.get(field, field) if field is not None else None
    attempts = None
    if isinstance(exc, ParamError):
        kind, code = "invalid_request_error", exc.code
    elif isinstance(exc, ModelNotFound):
        kind, code, param = "invalid_request_error", "model_not_found", "model"
    elif isinstance(exc, Refused):
        # What OpenAI answers for a prompt its safety system refuses: a 400 the client must not retry.
        status, kind, code = 400, "image_generation_user_error", "content_policy_violation"
        attempts = [AttemptModel.of(a) for a in exc.attempts]
    elif isinstance(exc, AllBackendsFailed):
        kind, code = "server_error", "all_backends_failed"
        attempts = [AttemptModel.of(a) for a in exc.attempts]
    elif status < 500:
        # OpenAI answers invalid values with 400; 422 stays ours (the SDK would raise UnprocessableEntityError).
        status = 400 if status == 422 else status
        kind, code = _TYPE.get(status, "invalid_request_error"), _CODE.get(status, "invalid_value")
    else:
        kind, code = _TYPE.get(status, "server_error"), None
    message = str(exc) if isinstance(exc, CascadeError) else "The server had an error while processing your request."
    return (
        status,
        OpenAIErrorBody(error=OpenAIError(message=message, type=kind, param=param, code=code, attempts=attempts)),
        headers,
    )


def http_error_body(status: int, detail: str) -> OpenAIErrorBody:
    """Starlette's own errors on /v1 paths (no such route, wrong method), worded as OpenAI words them."""
    return OpenAIErrorBody(
        error=OpenAIError(message=detail, type="invalid_request_error", param=None, code=_CODE.get(status))
    )
