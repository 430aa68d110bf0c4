from __future__ import annotations

import asyncio
import io
import json

import pytest

from cascade.keys import Authenticator, MemoryKeyStore
from cascade.keys.cli import run
from cascade.limits.quota import Quota


def cli(store: MemoryKeyStore, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = asyncio.run(run(list(argv), store, out, err))
    return code, out.getvalue(), err.getvalue()


def test_create_prints_a_working_key_once_and_list_never_shows_it() -> None:
    store = MemoryKeyStore()
    code, out, err = cli(store, "create", "ci bot", "--backends", "pillow,svg", "--rate", "2", "--daily-images", "50")
    assert code == 0 and "not shown again" in err
    key = out.strip()
    record = asyncio.run(Authenticator(store).authenticate({"x-api-key": key}))
    assert record.name == "ci bot" and record.allowed_backends == frozenset({"pillow", "svg"})
    assert record.quota == Quota(rate_per_s=2, daily_images=50)
    code, listed, _ = cli(store, "list", "--json")
    row = json.loads(listed)
    assert row["id"] == record.id and row["backends"] == ["pillow", "svg"] and row["rate_per_s"] == 2
    assert key not in listed and record.key_hash not in listed
    code, human, _ = cli(store, "list")
    assert record.id in human and "'ci bot'" in human and key not in human


def test_revoke_by_id_then_the_key_is_refused_and_listed_only_with_all() -> None:
    store = MemoryKeyStore()
    key = cli(store, "create", "temp")[1].strip()
    key_id = key[4:16]
    code, out, _ = cli(store, "revoke", key_id)
    assert code == 0 and f"revoked {key_id}" in out
    assert cli(store, "list")[1] == ""
    assert json.loads(cli(store, "list", "--all", "--json")[1])["revoked"]
    assert cli(store, "revoke", "ffffffffffff")[0] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["create", " "],
        ["create", "x", "--backends", ","],
        ["create", "x", "--rate", "0"],
        ["create", "x", "--burst", "0"],
    ],
)
def test_bad_create_arguments_are_an_error_naming_what_is_wrong(argv: list[str]) -> None:
    store = MemoryKeyStore()
    code, out, err = cli(store, *argv)
    assert code == 2 and out == "" and err.startswith("error: ")
    assert asyncio.run(store.list()) == []
