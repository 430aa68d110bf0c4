from __future__ import annotations

import asyncio
import base64

import pytest

from cascade.errors import Forbidden, StorageUnavailable, Unauthorized, http_headers, http_status
from cascade.keys import (
    Authenticator,
    DuplicateKey,
    KeyRecord,
    MemoryKeyStore,
    create_key,
    presented_key,
    require_backend,
    tokens,
)
from cascade.limits.quota import Quota


def test_keys_are_long_random_and_only_their_hash_is_kept() -> None:
    made = {tokens.generate() for _ in range(200)}
    assert len({m.key for m in made}) == 200 and len({m.key_id for m in made}) == 200
    one = next(iter(made))
    assert one.key.startswith(f"csk_{one.key_id}_") and len(one.key) == 4 + 12 + 1 + 43
    # 32 random bytes behind the secret part.
    assert len(base64.urlsafe_b64decode(one.key[len(f"csk_{one.key_id}_") :] + "=")) == 32
    assert tokens.key_id_of(one.key) == one.key_id
    assert one.key_hash == tokens.hash_key(one.key) and len(one.key_hash) == 64
    assert one.key not in repr(one)
    assert tokens.hashes_match(one.key_hash, one.key)
    assert not tokens.hashes_match(one.key_hash, one.key[:-1] + ("A" if one.key[-1] != "A" else "B"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "csk_",
        "sk-proj-abc",
        "csk_0123456789ab_short",
        "csk_0123456789AB_" + "a" * 43,
        "csk_0123456789ab_" + "a" * 44,
    ],
)
def test_text_that_cannot_be_a_key_has_no_id(text: str) -> None:
    assert tokens.key_id_of(text) is None


def test_the_store_keeps_records_and_revoking_is_once() -> None:
    async def main() -> None:
        store = MemoryKeyStore()
        record, key = await create_key(
            store, " ci bot ", allowed_backends=["pillow", "svg"], quota=Quota(rate_per_s=2, daily_images=100)
        )
        assert record.name == "ci bot" and record.allowed_backends == frozenset({"pillow", "svg"})
        assert key not in repr(record) and record.key_hash not in repr(record)
        assert await store.lookup(tokens.hash_key(key)) == record
        assert record.may_use("pillow") and not record.may_use("qwen_image")
        with pytest.raises(DuplicateKey):
            await store.create(record)
        revoked = await store.revoke(record.id)
        assert revoked is not None and revoked.revoked
        again = await store.revoke(record.id)
        assert again is not None and again.revoked_at == revoked.revoked_at
        assert await store.revoke("000000000000") is None
        assert await store.list() == []
        assert [r.id for r in await store.list(include_revoked=True)] == [record.id]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "backends"),
    [("", None), ("x" * 201, None), ("ok", []), ("ok", [" "])],
    ids=["empty", "long", "none", "blank"],
)
def test_a_key_needs_a_name_and_a_usable_backend_list(name: str, backends: list[str] | None) -> None:
    with pytest.raises(ValueError):
        asyncio.run(create_key(MemoryKeyStore(), name, allowed_backends=backends))


def test_either_header_carries_the_key() -> None:
    assert presented_key({}) is None
    assert presented_key({"Authorization": "Bearer abc"}) == "abc"
    assert presented_key({"authorization": "bearer   abc  "}) == "abc"
    assert presented_key({"X-API-Key": " abc "}) == "abc"
    assert presented_key({"authorization": "Bearer abc", "x-api-key": "abc"}) == "abc"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"authorization": "Basic dXNlcjpwYXNz"}, "scheme must be Bearer"),
        ({"authorization": "Bearer"}, "malformed Authorization"),
        ({"authorization": "Bearer a b"}, "malformed Authorization"),
        ({"authorization": "csk_0123456789ab_x"}, "scheme must be Bearer"),
        ({"x-api-key": "  "}, "malformed x-api-key"),
        ({"authorization": "Bearer one", "x-api-key": "two"}, "different keys"),
    ],
)
def test_malformed_credentials_are_a_401_that_says_what_is_wrong(headers: dict[str, str], says: str) -> None:
    with pytest.raises(Unauthorized, match=says) as caught:
        presented_key(headers)
    assert http_status(caught.value) == 401
    assert http_headers(caught.value)["www-authenticate"].startswith("Bearer")


def test_repeated_credential_headers_are_refused() -> None:
    from starlette.datastructures import Headers

    twice = Headers(raw=[(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])
    with pytest.raises(Unauthorized, match="more than one"):
        presented_key(twice)


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        self.lookups += 1
        return await super().lookup(key_hash)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_authenticate_accepts_a_live_key_and_never_echoes_a_wrong_one() -> None:
    async def main() -> None:
        store = MemoryKeyStore()
        record, key = await create_key(store, "app")
        auth = Authenticator(store)
        assert (await auth.authenticate({"authorization": f"Bearer {key}"})).id == record.id
        assert (await auth.authenticate({"x-api-key": key})).id == record.id
        forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        for headers, says in [
            ({}, "an API key is required"),
            ({"x-api-key": "not-a-key-at-all"}, "invalid API key"),
            ({"x-api-key": forged}, "invalid API key"),
            ({"x-api-key": tokens.generate().key}, "invalid API key"),
        ]:
            with pytest.raises(Unauthorized, match=says) as caught:
                await auth.authenticate(headers)
            for secret in headers.values():
                assert secret not in str(caught.value) and secret not in repr(caught.value.args)

    asyncio.run(main())


def test_lookups_are_cached_and_a_revocation_lands_within_the_cache_time() -> None:
    async def main() -> None:
        store, clock = CountingStore(), Clock()
        record, key = await create_key(store, "app")
        auth = Authenticator(store, cache_s=5, clock=clock)
        for _ in range(3):
            await auth.authenticate({"x-api-key": key})
        assert store.lookups == 1
        await store.revoke(record.id)
        await auth.authenticate({"x-api-key": key})  # still trusted from the cache
        clock.now += 5
        with pytest.raises(Unauthorized, match=f"API key {record.id} was revoked"):
            await auth.authenticate({"x-api-key": key})
        assert store.lookups == 2

    asyncio.run(main())


class FlakyStore(CountingStore):
    down = False

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        if self.down:
            raise StorageUnavailable("key store unavailable (OperationalError)")
        return await super().lookup(key_hash)


def test_while_the_store_is_down_keys_seen_valid_recently_still_work_and_others_get_503() -> None:
    async def main() -> None:
        store, clock = FlakyStore(), Clock()
        _, seen = await create_key(store, "seen")
        _, unseen = await create_key(store, "unseen")
        auth = Authenticator(store, cache_s=5, stale_s=60, clock=clock)
        await auth.authenticate({"x-api-key": seen})
        store.down = True
        clock.now += 30  # past the cache, within the stale window
        await auth.authenticate({"x-api-key": seen})
        with pytest.raises(StorageUnavailable) as caught:
            await auth.authenticate({"x-api-key": unseen})
        assert http_status(caught.value) == 503
        clock.now += 31  # past the stale window too
        with pytest.raises(StorageUnavailable):
            await auth.authenticate({"x-api-key": seen})

    asyncio.run(main())


def test_the_cache_is_bounded() -> None:
    async def main() -> int:
        store = CountingStore()
        auth = Authenticator(store, cache_size=3)
        for _ in range(10):
            with pytest.raises(Unauthorized):
                await auth.authenticate({"x-api-key": tokens.generate().key})
        return len(auth._cache)

    assert asyncio.run(main()) == 3


def test_a_key_limited_to_pillow_gets_403_for_qwen_image() -> None:
    record = KeyRecord(id="0123456789ab", name="n", key_hash="h", allowed_backends=frozenset({"pillow", "svg"}))
    require_backend(record, "pillow")
    require_backend(None, "qwen_image")  # auth off
    require_backend(KeyRecord(id="0123456789ac", name="all", key_hash="h2"), "qwen_image")
    with pytest.raises(Forbidden) as refused:
        require_backend(record, "qwen_image")
    assert http_status(refused.value) == 403 and refused.value.field == "backend"
    assert "may use: pillow, svg" in str(refused.value)
