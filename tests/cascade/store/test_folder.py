"""What only the folder store has to guard against: a folder is shared with everything else on the machine."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cascade.store import FolderStore, ObjectMissing
from cascade.store.keys import new_key

NAME = "20260101T000000-pillow-0123456789abcdef.png"


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / NAME).symlink_to("/etc/passwd")
    with pytest.raises(ObjectMissing):
        FolderStore(tmp_path).open(NAME)


def test_a_planted_fifo_or_folder_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / NAME)  # opening a FIFO for reading would wait for a writer forever
    other = NAME.replace("0123", "4567")
    (tmp_path / other).mkdir()
    for name in (NAME, other):
        with pytest.raises(ObjectMissing):
            FolderStore(tmp_path).open(name)


def test_a_name_with_a_trailing_newline_is_not_a_name(tmp_path: Path) -> None:
    # `re.match(r"...$")` accepts "x.png\n": `$` matches before a final newline. The file exists, so only a
    # full match keeps it from being served.
    (tmp_path / (NAME + "\n")).write_bytes(b"not an image of ours")
    with pytest.raises(ObjectMissing):
        FolderStore(tmp_path).open(NAME + "\n")


def test_images_saved_by_the_previous_version_are_still_served(tmp_path: Path) -> None:
    legacy = "20251125T181502-pillow-3fa2c1d09b7e.png"  # 12 hex digits, a JSON record beside it
    (tmp_path / legacy).write_bytes(b"old png")
    (tmp_path / legacy.replace(".png", ".json")).write_text("{}")
    opened = FolderStore(tmp_path).open(legacy)
    assert opened.body.read() == b"old png"
    opened.body.close()
    with pytest.raises(ObjectMissing):
        FolderStore(tmp_path).open(legacy.replace(".png", ".json"))


def test_writes_are_atomic_and_leftovers_of_dead_writes_are_cleaned_after_the_grace(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "images")
    name = new_key("pillow", "image/png")
    store.put(name, b"png", "image/png", "x")
    assert sorted(p.name for p in store.root.iterdir()) == [name]
    dead = store.root / ".tmp-dead-write"
    dead.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    fresh = store.root / ".tmp-in-progress"
    fresh.write_bytes(b"half")
    assert store.clean_partial(datetime.now(timezone.utc) - timedelta(minutes=15)) == 1
    assert not dead.exists() and fresh.exists() and (store.root / name).exists()


def test_an_unwritable_folder_fails_its_check_and_its_writes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    store = FolderStore(blocker / "images")
    with pytest.raises(OSError):
        store.check()
    with pytest.raises(OSError):
        store.put(new_key("pillow", "image/png"), b"x", "image/png", "x")
