"""The history API's bodies (pydantic, so they appear in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from cascade.index import Generation
from cascade.schemas import AttemptModel


class ImageRecord(BaseModel):
    """One saved generation."""

    id: uuid.UUID
    created: datetime
    url: str = Field(description="Where the image is served: /generated/<name>, relative to the service's root.")
    name: str
    prompt: str
    negative_prompt: str | None
    size: str
    width: int
    height: int
    seed: int | None
    backend: str
    provider: str
    attempts: list[AttemptModel]
    mime: str
    sha256: str
    bytes: int
    request_id: str | None
    api_key_id: str | None = Field(description="The id of the API key that made it (none when auth was off).")
    meta: dict[str, Any]

    @classmethod
    def of(cls, g: Generation) -> ImageRecord:
        return cls(
            id=g.id,
            created=g.created,
            url=f"/generated/{g.object_key}",
            name=g.object_key,
            prompt=g.prompt,
            negative_prompt=g.negative_prompt,
            size=f"{g.width}x{g.height}",
            width=g.width,
            height=g.height,
            seed=g.seed,
            backend=g.backend,
            provider=g.provider,
            attempts=[AttemptModel.model_validate(a) for a in g.attempts],
            mime=g.mime,
            sha256=g.sha256,
            bytes=g.bytes,
            request_id=g.request_id,
            api_key_id=g.api_key_id,
            meta=dict(g.meta),
        )


class ImagePage(BaseModel):
    """Newest first. Pass `next_cursor` back as `cursor` (with the same filters) for the next page."""

    items: list[ImageRecord]
    next_cursor: str | None
