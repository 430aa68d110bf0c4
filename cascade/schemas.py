"""The HTTP edge: request validation against configured limits, and the response body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cascade.config import Limits
from cascade.errors import RequestRejected
from cascade.types import Attempt, Outcome

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


# StyleGAN3's input translation, in the network's input coordinates (a few units shift the whole picture).
_Coord = Annotated[StrictFloat | StrictInt, Field(ge=-1000, le=1000)]


class ImageRequest(BaseModel):
    """`POST /api/generate/image`. Unknown fields are refused so a typo ("sise") is not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: StrictStr
    size: StrictStr | None = None
    local: StrictBool = False
    seed: StrictInt | None = Field(default=None, ge=0, le=2**32 - 1)
    backend: StrictStr | None = None
    # Backend-specific extras; the backends that do not use one ignore it.
    negative_prompt: StrictStr | None = Field(default=None, max_length=4000)
    steps: StrictInt | None = Field(default=None, ge=1, le=200)
    guidance: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=50)
    truncation_psi: StrictFloat | StrictInt | None = Field(default=None, ge=-2, le=2)
    class_label: StrictInt | None = Field(default=None, ge=0)
    translate: tuple[_Coord, _Coord] | None = None
    rotate: Annotated[StrictFloat | StrictInt, Field(ge=-360, le=360)] | None = None
    # Re-encode the served image (the SVG last resort cannot be, so a request that names a format skips it).
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: StrictInt | None = Field(default=None, ge=0, le=100)

    @field_validator("prompt", "negative_prompt", mode="before")
    @classmethod
    def _encodable_text(cls, value: object) -> object:
        # JSON can carry a lone surrogate ("\ud800"); no UTF-8 encoder downstream (HTTP clients, files) can.
        # Checked before pydantic's own checks, whose length check would refuse it first with a vaguer message.
        if isinstance(value, str) and not _encodable(value):
            raise PydanticCustomError("unicode", "not valid Unicode (holds an unpaired surrogate)")
        return value

    def options(self) -> dict[str, Any]:
        extras = ("negative_prompt", "steps", "guidance", "truncation_psi", "class_label", "translate", "rotate")
        return {k: getattr(self, k) for k in extras if getattr(self, k) is not None}


def parse_size(text: str, limits: Limits) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match:
        raise RequestRejected("size", f"expected 'WIDTHxHEIGHT', e.g. '800x600', got {text[:40]!r}")
    width, height = int(match[1]), int(match[2])
    for side in (width, height):
        if not limits.min_side <= side <= limits.max_side:
            raise RequestRejected("size", f"each side must be {limits.min_side}..{limits.max_side} pixels, got {text}")
    if width * height > limits.max_pixels:
        raise RequestRejected("size", f"{width}x{height} is over the limit of {limits.max_pixels / 1e6:g} megapixels")
    return width, height


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_request(body: ImageRequest | Mapping[str, Any], limits: Limits) -> tuple[ImageRequest, int, int]:
    """Validate a request body (already decoded JSON, or a model from a Python caller)."""
    try:
        request = body if isinstance(body, ImageRequest) else ImageRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        # Keep the field and list positions ("translate.1"), not pydantic's union branch names ("rotate.float").
        field = ".".join([str(loc[0]), *(str(p) for p in loc[1:] if isinstance(p, int))]) if loc else "body"
        raise RequestRejected(field, first["msg"]) from None
    prompt = request.prompt.strip()
    if not prompt:
        raise RequestRejected("prompt", "must not be empty")
    if len(request.prompt) > limits.max_prompt_chars:
        raise RequestRejected("prompt", f"longer than {limits.max_prompt_chars} characters ({len(request.prompt)})")
    if request.output_compression is not None and request.output_format not in ("jpeg", "webp"):
        raise RequestRejected("output_compression", "applies to output_format jpeg or webp only")
    if request.output_format is not None and request.backend == "svg":
        raise RequestRejected("output_format", "the svg backend draws SVG only: leave output_format out")
    # An empty size is a bad size, not a missing one.
    width, height = parse_size(limits.default_size if request.size is None else request.size, limits)
    return request, width, height


def decode_body(raw: bytes, content_type: str | None, limits: Limits) -> Any:
    """The HTTP body's JSON, or a RequestRejected naming what is wrong with it."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise RequestRejected("content-type", f"expected application/json, got {media or 'nothing'}", 415)
    if len(raw) > limits.max_body_bytes:
        raise RequestRejected("body", f"over {limits.max_body_bytes} bytes", 413)
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise RequestRejected("body", f"not valid JSON ({exc})", 400) from None
    except RecursionError:
        raise RequestRejected("body", "JSON nested too deeply", 400) from None


class AttemptModel(BaseModel):
    backend: str
    outcome: Outcome
    error: str | None
    elapsed_ms: float

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptModel:
        return cls(backend=attempt.backend, outcome=attempt.outcome, error=attempt.error, elapsed_ms=attempt.elapsed_ms)


class GenerateResponse(BaseModel):
    """The 200 body over HTTP, and what `generate()` returns to Python callers."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    data_uri: str = Field(alias="dataUri")
    content: str
    saved: str | None
    save_error: str | None = None
    image_id: str | None = None  # the saved image's id in the history API (/api/images/{id})
    provider: str
    backend: str
    width: int
    height: int
    seed: int | None
    request_id: str
    attempts: list[AttemptModel]
    meta: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")
