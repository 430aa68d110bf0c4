from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cascade.storage import ImageStore


def test_saves_image_and_record_atomically_with_unique_names(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    a = store.save(b"\x89PNG one", "image/png", "pillow", {"prompt": "p", "seed": 1})
    b = store.save(b"\x89PNG one", "image/png", "pillow", {"prompt": "p", "seed": 1})
    assert a.name != b.name and a.name.endswith(".png") and "-pillow-" in a.name
    path, mime = store.open(a.name)
    assert path.read_bytes() == b"\x89PNG one" and mime == "image/png"
    record = json.loads((tmp_path / a.name.replace(".png", ".json")).read_text())
    assert record["sha256"] == hashlib.sha256(b"\x89PNG one").hexdigest() == a.sha256
    assert record["prompt"] == "p" and record["backend"] == "pillow" and record["created"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "..", "/etc/passwd", "a/b.png", "%2e%2e%2fx.png", "x.png", "", "notes.json"]
)
def test_open_refuses_anything_but_a_saved_image(tmp_path: Path, name: str) -> None:
    store = ImageStore(tmp_path)
    saved = store.save(b"data", "image/png", "svg", {})
    with pytest.raises(KeyError):
        store.open(name)
    with pytest.raises(KeyError):
        store.open(saved.name.replace(".png", ".json"))  # records are not served


def test_unknown_types_and_unwritable_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ImageStore(tmp_path).save(b"x", "text/html", "pillow", {})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        ImageStore(blocker / "images").save(b"x", "image/png", "pillow", {})
