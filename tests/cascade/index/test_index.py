"""The index on SQLite and on a real PostgreSQL (the `stack` fixture runs each test on both)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from cascade.index import Cursor, Generation, Index
from cascade.index.migrate import head
from cascade.index.schema import VERSION_TABLE
from tests.conftest import Stack

T0 = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=timezone.utc)


def row(prompt: str = "a red fox", created: datetime = T0, backend: str = "pillow", **extra: object) -> Generation:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "created": created,
        "prompt": prompt,
        "negative_prompt": None,
        "width": 64,
        "height": 48,
        "seed": 7,
        "backend": backend,
        "provider": backend,
        "attempts": [{"backend": backend, "outcome": "ok", "error": None, "elapsed_ms": 1.5}],
        "object_key": f"20261130T120000-{backend}-{uuid.uuid4().hex[:16]}.png",
        "mime": "image/png",
        "sha256": "ab" * 32,
        "bytes": 1234,
        "request_id": "req-1",
        **extra,
    }
    return Generation(**values)  # type: ignore[arg-type]


@pytest.fixture
def index(stack: Stack) -> Index:
    ix = Index(stack.database_url, timeout_s=10)
    ix.migrate()
    yield ix
    ix.close()


def test_replicas_starting_together_migrate_once_and_a_rerun_changes_nothing(stack: Stack) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def replica() -> None:
        ix = Index(stack.database_url, timeout_s=30)
        try:
            barrier.wait()
            results.append(ix.migrate())
        except BaseException as exc:
            errors.append(exc)
        finally:
            ix.close()

    threads = [threading.Thread(target=replica, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a migration is stuck (waiting on another's DDL?)"
    assert not errors, errors
    assert results == [head()] * 6
    ix = Index(stack.database_url)
    assert ix.migrate() == head() == ix.revision()
    with ix.engine.connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head()]
    ix.close()


def test_every_field_round_trips(index: Index) -> None:
    original = row(
        prompt="Été 🤖 \u0000-free <svg>&amp; 'quotes'",
        negative_prompt="blurry",
        seed=2**32 - 1,
        meta={"native_size": "16x16", "steps": 3, "nested": {"a": [1, 2]}},
        api_key_id="key-42",
        bytes=5_000_000_000,
    )
    index.insert(original)
    # PostgreSQL cannot store U+0000: both databases keep U+FFFD in its place (and find it by it).
    assert index.get(original.id) == dataclasses.replace(original, prompt=original.prompt.replace("\x00", "\ufffd"))
    assert [g.id for g in index.page(5, q="\x00-free").items] == [original.id]
    assert index.get(uuid.uuid4()) is None


def test_pages_are_newest_first_and_cursors_hold_while_rows_arrive(index: Index) -> None:
    # Several rows share a timestamp: the id breaks the tie, so no row is lost or repeated at a page boundary.
    rows = [row(f"p{i}", created=T0 + timedelta(seconds=i // 3)) for i in range(20)]
    for r in rows:
        index.insert(r)
    expected = sorted(rows, key=lambda r: (r.created, r.id), reverse=True)
    seen: list[Generation] = []
    cursor: Cursor | None = None
    while True:
        page = index.page(6, cursor)
        seen += page.items
        # Newer rows arriving mid-walk land before the cursor, never inside what is left to read.
        index.insert(row("newer", created=T0 + timedelta(hours=1)))
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert [r.id for r in seen] == [r.id for r in expected]


def test_search_is_a_case_insensitive_substring_and_like_wildcards_are_plain_characters(index: Index) -> None:
    prompts = ["100% Cotton", "1000 cottons", "a_b", "axb", "ÉTÉ à Paris", "back\\slash", "plain"]
    for i, p in enumerate(prompts):
        index.insert(row(p, created=T0 + timedelta(seconds=i), backend="svg" if p == "plain" else "pillow"))

    def found(q: str, backend: str | None = None) -> list[str]:
        return sorted(g.prompt for g in index.page(50, q=q, backend=backend).items)

    assert found("0%") == ["100% Cotton"]
    assert found("COTTON") == ["100% Cotton", "1000 cottons"]
    assert found("a_b") == ["a_b"]
    assert found("%") == ["100% Cotton"]
    assert found("_") == ["a_b"]
    assert found("été") == ["ÉTÉ à Paris"]
    assert found("\\") == ["back\\slash"]
    assert found("a", backend="svg") == ["plain"]
    assert found("nothing like it") == []


def test_a_delete_hides_the_row_at_once_and_can_be_finished_later(index: Index) -> None:
    kept, gone = row("kept"), row("gone", created=T0 + timedelta(seconds=1))
    index.insert(kept)
    index.insert(gone)
    assert index.begin_delete(gone.id) == gone.object_key
    assert index.get(gone.id) is None
    assert [g.id for g in index.page(10).items] == [kept.id]
    # Half-deleted: still known (the sweep must not take its object for an orphan) and listed for finishing.
    assert index.known_keys([gone.object_key, kept.object_key, "other.png"]) == {gone.object_key, kept.object_key}
    assert index.deleting() == [(gone.id, gone.object_key)]
    assert index.begin_delete(gone.id) == gone.object_key  # a repeated delete gets the key again
    index.finish_delete(gone.id)
    assert index.begin_delete(gone.id) is None and index.deleting() == []
    assert index.count() == 1


def test_known_keys_answers_for_more_keys_than_one_statement_takes(index: Index) -> None:
    rows = [row(f"k{i}") for i in range(3)]
    for r in rows:
        index.insert(r)
    asked = [f"20261130T120000-x-{i:016x}.png" for i in range(1200)] + [r.object_key for r in rows]
    assert index.known_keys(asked) == {r.object_key for r in rows}


def test_a_second_row_for_the_same_object_is_refused(index: Index) -> None:
    first = row()
    index.insert(first)
    with pytest.raises(Exception, match=r"(?i)unique"):
        index.insert(row(object_key=first.object_key))


def test_the_migrations_build_exactly_the_schema_the_code_uses(index: Index) -> None:
    # A later migration that forgets a column (or a schema.py change with no migration) fails here, on both databases.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cascade.index.schema import metadata

    with index.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []
