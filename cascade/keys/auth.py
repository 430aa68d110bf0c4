"""From request headers to a key record, or a 401 that says what is wrong (never what the key was)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from cascade.errors import Forbidden, StorageUnavailable, Unauthorized
from cascade.keys import tokens
from cascade.keys.store import KeyRecord, KeyStore

HOW = "send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    # Starlette's Headers keep repeated headers (getlist); a plain dict is matched case-insensitively.
    getlist: Callable[[str], list[str]] | None = getattr(headers, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    return [v for k, v in headers.items() if k.lower() == name]


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key the request carries, or None when it carries none. Malformed credentials are a 401."""
    auth, api_key = _values(headers, "authorization"), _values(headers, "x-api-key")
    if len(auth) > 1 or len(api_key) > 1:
        raise Unauthorized(f"more than one credential header: {HOW}, once")
    from_auth = from_header = None
    if auth:
        scheme, _, token = auth[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized(f"the Authorization scheme must be Bearer: {HOW}")
        token = token.strip()
        if not token or any(c.isspace() for c in token):
            raise Unauthorized(f"malformed Authorization header: {HOW}")
        from_auth = token
    if api_key:
        from_header = api_key[0].strip()
        if not from_header or any(c.isspace() for c in from_header):
            raise Unauthorized(f"malformed x-api-key header: {HOW}")
    if from_auth and from_header and from_auth != from_header:
        raise Unauthorized("Authorization and x-api-key carry different keys: send one")
    return from_auth or from_header


def require_backend(record: KeyRecord | None, backend: str) -> None:
    """403 when a request names a backend its key may not use (no key: auth is off, anything goes). In a
    fallback chain the gateway skips such backends instead (`record.may_use`)."""
    if record is not None and not record.may_use(backend):
        allowed = ", ".join(sorted(record.allowed_backends or ()))
        raise Forbidden("backend", f"key {record.id} may not use backend {backend!r} (it may use: {allowed})")


class Authenticator:
    """Checks keys against a store, remembering answers for `cache_s` so a request costs no store round trip.

    A revocation therefore takes effect on every replica within `cache_s`. Unknown keys are remembered too
    (a client stuck retrying a wrong key costs one lookup per `cache_s`), in a bounded LRU. While the store does not
    answer, a key this replica saw valid within `stale_s` stays valid (a database blip must not lock every client
    out); any other key gets the store's 503.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        cache_s: float = 5.0,
        cache_size: int = 10_000,
        stale_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.cache_s, self.cache_size, self._clock = store, cache_s, cache_size, clock
        self.stale_s = stale_s
        self._cache: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()

    async def authenticate(self, headers: Mapping[str, Any]) -> KeyRecord:
        key = presented_key(headers)
        if key is None:
            raise Unauthorized(f"an API key is required: {HOW}")
        key_id = tokens.key_id_of(key)
        if key_id is None:
            raise Unauthorized("invalid API key")
        key_hash = tokens.hash_key(key)
        record = await self._lookup(key_hash)
        # The store found the row by its hash; the constant-time comparison is what decides.
        if record is None or record.id != key_id or not tokens.hashes_match(record.key_hash, key):
            raise Unauthorized("invalid API key")
        if record.revoked:
            raise Unauthorized(f"API key {record.id} was revoked")
        return record

    async def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = self._clock()
        hit = self._cache.get(key_hash)
        if hit is not None and now - hit[0] < self.cache_s:
            self._cache.move_to_end(key_hash)
            return hit[1]
        try:
            record = await self.store.lookup(key_hash)
        except StorageUnavailable:
            if hit is not None and hit[1] is not None and now - hit[0] < max(self.stale_s, self.cache_s):
                return hit[1]
            raise
        self._cache[key_hash] = (now, record)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return record
