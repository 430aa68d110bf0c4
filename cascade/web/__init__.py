"""The web page: a few static files (cascade/web/static), served with a strict Content-Security-Policy and ETags.

Nothing is built: the page is plain HTML, CSS and ES modules the browser loads as they are. Every URL in them is
relative, so the page works under any route prefix. Ray-free; the route is `deployments.routes.web`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

# No inline script or style, nothing from another origin (the page runs offline); images may be data: or blob:
# URLs (a job whose image could not be saved answers a data URI; an image fetched with an API key is a blob).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Revalidated on every load (a 304 when unchanged): an upgraded service never runs yesterday's script.
CACHE_CONTROL = "no-cache"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}\.(html|js|css)$")


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    etag: str

    def headers(self) -> dict[str, str]:
        return {
            "content-type": self.content_type,
            "etag": self.etag,
            "cache-control": CACHE_CONTROL,
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
        }

    def fresh_for(self, if_none_match: str | None) -> bool:
        """Whether the client's copy (If-None-Match, RFC 9110 13.1.2: weak comparison) is this one."""
        if not if_none_match:
            return False
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or self.etag in tags


@functools.cache
def asset(name: str) -> Asset | None:
    """The named file of the page (`index.html`, `app.js`...), or None. Read once per process."""
    if not _NAME.match(name):
        return None
    path = resources.files(__package__).joinpath("static", name)
    if not path.is_file():
        return None
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(name, body, TYPES[name[name.rindex(".") :]], etag)
