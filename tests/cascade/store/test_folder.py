"""What only the folder store has to guard against: a folder is shared with everything else on the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cascade.store import ByteRange, FolderStore, NotModified, ObjectMissing, RangeNotSatisfiable
from cascade.store.keys import new_key

ROOT = Path(__file__).resolve().parents[3]
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


def test_a_leftover_is_swept_only_when_strictly_older_than_the_cutoff(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    cutoff = datetime.fromtimestamp(int(time.time()) - 900, tz=timezone.utc)
    at_cutoff, just_before = tmp_path / ".tmp-at-cutoff", tmp_path / ".tmp-just-before"
    for path, ns in ((at_cutoff, 0), (just_before, -1_000)):
        path.write_bytes(b"half")
        stamp = int(cutoff.timestamp()) * 1_000_000_000 + ns
        os.utime(path, ns=(stamp, stamp))
    assert store.clean_partial(cutoff) == 1
    assert at_cutoff.exists() and not just_before.exists()


def test_two_replicas_sweeping_the_same_folder_do_not_trip_over_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replicas share the folder: another one's sweep may remove a leftover after ours listed it.
    store = FolderStore(tmp_path)
    old = time.time() - 3600
    for name in (".tmp-a", ".tmp-b", ".tmp-c"):
        (tmp_path / name).write_bytes(b"half")
        os.utime(tmp_path / name, (old, old))
    real_scandir = os.scandir

    def listed_then_swept_by_another_replica(path: str | os.PathLike[str]) -> list[os.DirEntry[str]]:
        gone = (".tmp-a", ".tmp-c")
        entries = sorted(real_scandir(path), key=lambda e: e.name not in gone)  # the vanished ones come first
        for entry in entries:
            if entry.name in gone:
                os.unlink(entry.path)
        return entries

    monkeypatch.setattr(os, "scandir", listed_then_swept_by_another_replica)
    assert store.clean_partial(datetime.now(timezone.utc)) == 1
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_unwritable_folder_fails_its_check_and_its_writes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    store = FolderStore(blocker / "images")
    with pytest.raises(OSError):
        store.check()
    with pytest.raises(OSError):
        store.put(new_key("pillow", "image/png"), b"x", "image/png", "x")


def test_the_folder_and_its_parents_are_made_on_first_use(tmp_path: Path) -> None:
    # A fresh install: storage_dir does not exist yet, neither for /healthz's check nor for the first save.
    checked = FolderStore(tmp_path / "a" / "b")
    checked.check()
    assert checked.root.is_dir()
    saved = FolderStore(tmp_path / "c" / "d")
    name = new_key("svg", "image/svg+xml")
    saved.put(name, b"<svg/>", "image/svg+xml", "x")
    assert (saved.root / name).read_bytes() == b"<svg/>"


# The service as a user that cannot write where the folder's modes forbid it. Here (and in CI) the tests run as
# root, who may write anywhere: the child keeps uid 0 but loses the capabilities that override file modes.
_UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
_CHECK_AND_SAVE = """
import sys
from cascade.store.folder import FolderStore
from cascade.store.keys import new_key
store = FolderStore(sys.argv[1])
for what, step in (("check", store.check), ("put", lambda: store.put(new_key("pillow", "image/png"), b"x", "", ""))):
    try:
        step()
        print(what, "ok")
    except PermissionError as exc:
        print(what, "PermissionError", exc)
"""


def test_a_folder_the_service_may_not_write_fails_its_check_and_its_saves(tmp_path: Path) -> None:
    if _UNPRIVILEGED and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux) to drop the right to write anywhere")
    folder = tmp_path / "images"
    folder.mkdir(mode=0o555)  # a volume mounted for another user, or read-only
    folder.chmod(0o555)
    done = subprocess.run(
        [*_UNPRIVILEGED, sys.executable, "-c", _CHECK_AND_SAVE, str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    check, put = done.stdout.splitlines()
    assert check == f"check PermissionError {folder} is not writable"
    assert put.startswith("put PermissionError")
    assert list(folder.iterdir()) == []


def test_a_save_that_fails_half_way_leaves_nothing_behind(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    name = new_key("pillow", "image/png")
    # The bytes are written, then the rename onto the name fails (here: a folder squats on it).
    (tmp_path / name).mkdir()
    (tmp_path / name / "keep").write_text("x")
    with pytest.raises(OSError):
        store.put(name, b"png bytes", "image/png", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert store.clean_partial(datetime.now(timezone.utc) + timedelta(days=1)) == 0


def test_a_folder_not_made_yet_lists_and_cleans_nothing(tmp_path: Path) -> None:
    # The sweep runs on a fresh install before the first image made the folder.
    store = FolderStore(tmp_path / "never-made")
    assert list(store.names_between("00000000T000000", "99999999T999999")) == []
    assert store.clean_partial(datetime.now(timezone.utc)) == 0
    assert not store.root.exists()


def test_the_sweep_cleans_only_old_temporary_files(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    old = time.time() - 3600
    kept = [new_key("pillow", "image/png"), "notes.txt", ".tmp-folder"]
    (tmp_path / kept[0]).write_bytes(b"png")
    (tmp_path / kept[1]).write_text("someone else's file")
    (tmp_path / kept[2]).mkdir()  # not a file a write of ours left
    (tmp_path / ".tmp-link").symlink_to(tmp_path / kept[1])  # planted: not something a write of ours leaves
    kept.append(".tmp-link")
    gone = [".tmp-a", ".tmp-b"]
    for name in gone:
        (tmp_path / name).write_bytes(b"half")
    for name in kept + gone:
        os.utime(tmp_path / name, (old, old), follow_symlinks=False)
    assert store.clean_partial(datetime.now(timezone.utc) - timedelta(minutes=15)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_a_range_is_read_in_pieces_without_passing_its_end(tmp_path: Path) -> None:
    data = bytes(range(200))
    name = new_key("pillow", "image/png")
    store = FolderStore(tmp_path)
    store.put(name, data, "image/png", "x")
    opened = store.open(name, ByteRange(10, 29))
    pieces = [opened.body.read(0), opened.body.read(7), opened.body.read(7), opened.body.read(7), opened.body.read(7)]
    opened.body.close()
    assert pieces == [b"", data[10:17], data[17:24], data[24:30], b""]
    assert (opened.start, opened.end, opened.size, opened.length) == (10, 29, 200, 20)


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_file_is_left_open_whatever_the_answer(tmp_path: Path) -> None:
    # A replica serves images for weeks: one descriptor leaked per request ends in EMFILE.
    store = FolderStore(tmp_path)
    name = new_key("pillow", "image/png")
    store.put(name, b"0123456789", "image/png", "x")
    etag = store.open(name).etag
    before = _open_files()
    for _ in range(20):
        store.put(new_key("pillow", "image/png"), b"png", "image/png", "x")
        opened = store.open(name, ByteRange(2, 5))
        assert opened.body.read() == b"2345"
        opened.body.close()
        with pytest.raises(NotModified):
            store.open(name, if_none_match=etag)
        with pytest.raises(RangeNotSatisfiable):
            store.open(name, ByteRange(10, None))
        with pytest.raises(ObjectMissing):
            store.open(NAME)
    assert _open_files() == before


def test_health_describes_the_folder(tmp_path: Path) -> None:
    assert FolderStore(tmp_path / "images").describe() == {"kind": "folder", "path": str(tmp_path / "images")}
