"""The SQL key store on SQLite and on a real PostgreSQL, and `python -m cascade.keys` against them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cascade.errors import StorageUnavailable, Unauthorized, http_status
from cascade.index import Index
from cascade.index.schema import api_keys
from cascade.keys import Authenticator, DuplicateKey, create_key, tokens
from cascade.keys.__main__ import database_url
from cascade.keys.sql import SqlKeyStore
from cascade.limits.quota import Quota
from tests.cascade.index.test_index import row
from tests.conftest import ROOT
from tests.services.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database()


@pytest.fixture
def index(url: str) -> Iterator[Index]:
    ix = Index(url, timeout_s=10)
    ix.migrate()
    yield ix
    ix.close()


def test_keys_round_trip_with_their_limits_and_only_the_hash_is_stored(index: Index) -> None:
    async def main() -> None:
        store = SqlKeyStore(index.engine)
        quota = Quota(rate_per_s=2.5, burst=4, max_concurrency=3, daily_images=100, daily_spend_usd=1.25)
        record, key = await create_key(store, "ci bot", allowed_backends=["svg", "pillow"], quota=quota, admin=True)
        found = await store.lookup(tokens.hash_key(key))
        assert found == record
        assert found.allowed_backends == frozenset({"pillow", "svg"}) and found.quota == quota and found.admin
        plain, _ = await create_key(store, "plain")
        assert (await store.lookup(plain.key_hash)) == plain
        assert plain.allowed_backends is None and plain.quota == Quota() and not plain.admin
        assert [r.id for r in await store.list()] == [record.id, plain.id]
        with pytest.raises(DuplicateKey):
            await store.create(record)
        store.close()

    asyncio.run(main())
    with index.engine.connect() as conn:
        dump = json.dumps([list(map(str, row)) for row in conn.execute(select(api_keys))])
        columns = set(conn.execute(select(api_keys)).keys())
    assert "csk_" not in dump  # no key text anywhere, only hashes
    assert "key" not in columns and "key_hash" in columns


def test_revoking_is_once_and_a_revoked_key_is_refused(index: Index) -> None:
    async def main() -> None:
        store = SqlKeyStore(index.engine)
        record, key = await create_key(store, "temp")
        auth = Authenticator(store, cache_s=0)
        assert (await auth.authenticate({"authorization": f"Bearer {key}"})).id == record.id
        revoked = await store.revoke(record.id)
        assert revoked is not None and revoked.revoked
        again = await store.revoke(record.id)
        assert again is not None and again.revoked_at == revoked.revoked_at
        assert await store.revoke("000000000000") is None
        with pytest.raises(Unauthorized, match="was revoked"):
            await auth.authenticate({"x-api-key": key})
        assert await store.list() == []
        assert [r.id for r in await store.list(include_revoked=True)] == [record.id]
        store.close()

    asyncio.run(main())


def test_a_database_that_does_not_answer_is_a_503_not_a_500() -> None:
    async def main() -> None:
        # Nothing listens on port 9: the driver fails at once.
        ix = Index("postgresql://cascade@127.0.0.1:9/nowhere", timeout_s=2)
        store = SqlKeyStore(ix.engine, timeout_s=2)
        key = tokens.generate().key
        with pytest.raises(StorageUnavailable) as caught:
            await Authenticator(store).authenticate({"x-api-key": key})
        assert http_status(caught.value) == 503 and key not in str(caught.value)
        store.close()
        ix.close()

    asyncio.run(main())


def test_the_keys_table_arrives_on_a_database_the_first_migration_made(url: str) -> None:
    """An index made before keys existed (revision 0001, with a generation in it) gains the table and keeps its rows."""
    from alembic import command

    from cascade.index.migrate import _config

    ix = Index(url)
    if ix.dialect == "sqlite":
        Path(ix.engine.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    with ix.engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
    ix.insert(row("made before keys"))
    assert ix.migrate() == "0002"
    assert ix.count() == 1
    with ix.engine.connect() as conn:
        assert conn.execute(select(api_keys)).all() == []
    ix.close()


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CASCADE_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "cascade.keys", *argv],
        cwd=ROOT,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_prints_the_key_alone_on_stdout_and_the_gateway_store_accepts_it(url: str) -> None:
    made = cli("--database-url", url, "create", "app", "--backends", "pillow", "--rate", "2")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert tokens.key_id_of(key) is not None and made.stdout == key + "\n"
    assert "not shown again" in made.stderr and key not in made.stderr
    # The same database through the environment, as a gateway replica reads it.
    listed = cli("list", "--json", env={"CASCADE_DATABASE_URL": url})
    assert listed.returncode == 0, listed.stderr
    row = json.loads(listed.stdout)
    assert row["id"] == key[4:16] and row["backends"] == ["pillow"] and key not in listed.stdout

    async def check() -> None:
        ix = Index(url)
        record = await Authenticator(SqlKeyStore(ix.engine)).authenticate({"x-api-key": key})
        assert record.quota.rate_per_s == 2 and record.allowed_backends == frozenset({"pillow"})
        ix.close()

    asyncio.run(check())
    revoked = cli("--database-url", url, "revoke", key[4:16])
    assert revoked.returncode == 0 and f"revoked {key[4:16]}" in revoked.stdout


def test_the_cli_finds_the_database_the_serve_config_names(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    app = {"name": "cascade", "import_path": "deployments.app:build_app"}
    config.write_text(json.dumps({"applications": [{**app, "args": {"storage_dir": str(tmp_path / "imgs")}}]}))
    assert database_url(None, {}, config) == f"sqlite:///{tmp_path / 'imgs' / 'cascade.sqlite3'}"
    assert database_url(None, {"CASCADE_DATABASE_URL": "sqlite:///e.db"}, config) == "sqlite:///e.db"
    assert database_url("sqlite:///f.db", {"CASCADE_DATABASE_URL": "sqlite:///e.db"}, config) == "sqlite:///f.db"
    pg = "postgresql://u:p@db/x"
    config.write_text(json.dumps({"applications": [{**app, "args": {"storage": {"database_url": pg}}}]}))
    assert database_url(None, {}, config) == pg
    # The embedded default: the README's serve_config.yaml keeps its SQLite file in generated_images/.
    assert (
        database_url(None, {}, ROOT / "serve_config.yaml")
        == f"sqlite:///{ROOT / 'generated_images' / 'cascade.sqlite3'}"
    )
    with pytest.raises(ValueError, match="no database"):
        database_url(None, {}, tmp_path / "missing.yaml")
    failed = cli("--database-url", "mysql://x/y", "list")
    assert failed.returncode == 2 and failed.stderr.startswith("error: database URL: unsupported scheme")
