"""The history API's logic (`/api/images`), kept out of the gateway: the gateway's routes only call these.

`owner`: the API key whose images the caller may see and delete (None: every image; auth off, or an admin key).
Another key's image is answered as if it were not there.
"""

from __future__ import annotations

import uuid

from cascade.errors import NotFound, RequestRejected
from cascade.images.schemas import ImagePage, ImageRecord
from cascade.images.service import ImageService
from cascade.index import Cursor

MAX_PAGE = 100


async def list_images(
    images: ImageService, limit: int, cursor: str | None, backend: str | None, q: str | None, owner: str | None = None
) -> ImagePage:
    try:
        after = Cursor.decode(cursor) if cursor else None
    except ValueError:
        raise RequestRejected("cursor", "not a cursor from this API (pass next_cursor back unchanged)") from None
    page = await images.page(limit, after, backend or None, q or None, owner)
    return ImagePage(
        items=[ImageRecord.of(g) for g in page.items], next_cursor=page.next.encode() if page.next else None
    )


async def get_image(images: ImageService, image_id: uuid.UUID, owner: str | None = None) -> ImageRecord:
    found = await images.get(image_id, owner)
    if found is None:
        raise NotFound(f"no image with id {image_id}")
    return ImageRecord.of(found)


async def delete_image(images: ImageService, image_id: uuid.UUID, owner: str | None = None) -> None:
    """Idempotent: deleting an image that is not there (any more), or not the caller's, succeeds and changes nothing."""
    await images.delete(image_id, owner)
