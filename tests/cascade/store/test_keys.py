from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cascade.store import open_store
from cascade.store.folder import FolderStore
from cascade.store.keys import is_current, is_servable, mime_of, new_key, stamp


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


# Every type a backend answers with: PNG (Pillow, StyleGAN3, Qwen-Image), SVG (the last resort), JPEG and WebP
# (remote providers asked for them, or serving them from a URL).
@pytest.mark.parametrize(
    ("mime", "ext"),
    [("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"), ("image/svg+xml", "svg")],
)
def test_every_image_type_a_backend_returns_is_stored_and_served_as_itself(tmp_path: Path, mime: str, ext: str) -> None:
    name = new_key("remote:openai", mime)
    assert name.endswith("." + ext) and is_current(name) and mime_of(name) == mime
    store = FolderStore(tmp_path)
    store.put(name, b"image bytes", mime, "x")
    opened = store.open(name)
    assert opened.body.read() == b"image bytes"
    opened.body.close()


@pytest.mark.parametrize(
    ("backend", "slug"),
    [
        ("remote:openai", "remote_openai"),
        ("Qwen-Image", "qwen_image"),
        ("stylegan3", "stylegan3"),
        ("cpu_pool", "cpu_pool"),
        ("svg", "svg"),
        ("", "image"),
        ("a" * 40, "a" * 32),
        ("Ünïcode/../x", "_n_code____x"),
    ],
)
def test_any_backend_name_gives_a_name_that_can_be_served(tmp_path: Path, backend: str, slug: str) -> None:
    name = new_key(backend, "image/png", datetime(2026, 11, 30, 5, 15, 2, tzinfo=timezone.utc))
    assert name.startswith(f"20261130T051502-{slug}-") and is_current(name)
    store = FolderStore(tmp_path)
    store.put(name, b"png", "image/png", "x")
    opened = store.open(name)
    assert opened.body.read() == b"png"
    opened.body.close()


def test_names_are_in_utc_so_they_sort_as_their_times_do_whatever_the_clock_zone() -> None:
    berlin = timezone(timedelta(hours=1))
    early = new_key("pillow", "image/png", datetime(2026, 11, 30, 6, 0, 0, tzinfo=berlin))  # 05:00 UTC
    late = new_key("pillow", "image/png", datetime(2026, 11, 30, 5, 30, 0, tzinfo=timezone.utc))
    assert early.startswith("20261130T050000-") and early < late
    assert stamp(datetime(2026, 11, 30, 6, 0, 0, tzinfo=berlin)) == "20261130T050000"
    assert new_key("pillow", "image/png") > new_key(
        "pillow", "image/png", datetime.now(timezone.utc) - timedelta(seconds=2)
    )
