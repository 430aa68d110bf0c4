"""`GET /generated/<name>` from whichever store: streamed, with ETag, single byte ranges, 304, or a redirect to a
presigned URL."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.responses import RedirectResponse, Response, StreamingResponse

from cascade.errors import NotFound
from cascade.images.service import ImageService
from cascade.store import ByteRange, NotModified, ObjectMissing, RangeNotSatisfiable
from cascade.store.keys import is_servable

# Names are unique and never rewritten: a saved image never changes.
IMMUTABLE = "public, max-age=31536000, immutable"
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


def parse_range(header: str | None) -> ByteRange | None:
    """One `bytes=` range, or None to send the whole object: a missing, malformed or multi-part Range is ignored,
    as RFC 9110 allows."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match[1], match[2]
    if not first and not last:
        return None
    if not first:
        return ByteRange(None, int(last))
    if last and int(last) < int(first):
        return None
    return ByteRange(int(first), int(last) if last else None)


def _not_found(name: str) -> NotFound:
    return NotFound(f"no saved image named {name[:80]!r}")


async def object_response(images: ImageService, name: str, headers: Mapping[str, str], head: bool = False) -> Response:
    """`head`: the same status and headers, no body (HEAD)."""
    if not is_servable(name):
        raise _not_found(name)
    if images.args.redirect:
        url = await images.presign(name)
        if url is not None:
            # Shorter than the URL's life, so a cached redirect never points at an expired signature.
            ttl = images.args.presign_ttl_s // 2
            return RedirectResponse(url, status_code=307, headers={"cache-control": f"private, max-age={ttl}"})
    byte_range = parse_range(headers.get("range"))
    if_range = headers.get("if-range")
    try:
        opened = await images.open_object(name, byte_range, headers.get("if-none-match"))
        if byte_range is not None and if_range is not None and if_range.strip() != opened.etag:
            # The client's partial copy is of another version: it gets the whole object.
            await images.close_object(opened)
            byte_range = None
            opened = await images.open_object(name, None, None)
    except ObjectMissing:
        raise _not_found(name) from None
    except NotModified as exc:
        return Response(status_code=304, headers={"etag": exc.etag, "cache-control": IMMUTABLE})
    except RangeNotSatisfiable as exc:
        return Response(status_code=416, headers={"content-range": f"bytes */{exc.size}"})
    mime = images.mime(name)
    out = {
        "etag": opened.etag,
        "accept-ranges": "bytes",
        "content-length": str(opened.length),
        "cache-control": IMMUTABLE,
        "x-content-type-options": "nosniff",
    }
    if mime == "image/svg+xml":
        # An SVG opened on its own is a document: no scripts, nothing fetched.
        out["content-security-policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    if byte_range is not None:
        out["content-range"] = f"bytes {opened.start}-{opened.end}/{opened.size}"
    status = 206 if byte_range else 200
    if head:
        await images.close_object(opened)
        return Response(status_code=status, media_type=mime, headers=out)
    return StreamingResponse(images.chunks(opened), status_code=status, media_type=mime, headers=out)
