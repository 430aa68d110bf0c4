from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cascade.store import open_store
from cascade.store.folder import FolderStore
from cascade.store.keys import is_current, is_servable, new_key, stamp


def test_names_are_unique_time_first_and_ours() -> None:
    t = datetime(2026, 11, 30, 5, 15, 2, tzinfo=timezone.utc)
    names = {new_key("remote:openai", "image/png", t) for _ in range(1000)}
    assert len(names) == 1000
    name = next(iter(names))
    assert name.startswith(stamp(t) + "-remote_openai-") and name.endswith(".png")
    assert is_current(name) and is_servable(name)
    with pytest.raises(ValueError, match="text/html"):
        new_key("pillow", "text/html")


@pytest.mark.parametrize(
    "name",
    [
        "20261130T051502-pillow-0123456789abcdef.png\n",
        "20261130T051502-pillow-0123456789abcdef.png\x00",
        " 20261130T051502-pillow-0123456789abcdef.png",
        "20261130T051502-pillow-0123456789abcdef.png/",
        "20261130T051502-Pillow-0123456789abcdef.png",
        "20261130T051502-pillow-0123456789abcdef.json",
        "20261130T051502-pillow-0123456789abcdef.PNG",
    ],
)
def test_near_misses_are_not_names(name: str) -> None:
    assert not is_servable(name) and not is_current(name)


def test_storage_urls(tmp_path) -> None:
    assert isinstance(open_store("generated_images", tmp_path), FolderStore)
    assert open_store("generated_images", tmp_path).root == tmp_path / "generated_images"
    assert open_store("file:///srv/images", tmp_path).root.as_posix() == "/srv/images"
    for bad in ("gs://bucket/x", "s3://", "s3://bucket?x=1", "", "file://host/x"):
        with pytest.raises(ValueError, match="storage URL"):
            open_store(bad, tmp_path)
