"""Where image bytes live (`CASCADE_STORAGE_URL`): a folder, or `s3://bucket/prefix` on any S3-compatible store."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from cascade.store.base import (
    ByteRange,
    NotModified,
    ObjectMissing,
    ObjectStore,
    Opened,
    RangeNotSatisfiable,
    etag_matches,
)
from cascade.store.folder import FolderStore

__all__ = [
    "ByteRange",
    "FolderStore",
    "NotModified",
    "ObjectMissing",
    "ObjectStore",
    "Opened",
    "RangeNotSatisfiable",
    "etag_matches",
    "open_store",
    "parse_storage_url",
]


def parse_storage_url(url: str) -> tuple[str, str, str]:
    """("s3", bucket, prefix) or ("folder", path, ""); ValueError naming what is wrong."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment:
            raise ValueError("storage URL: expected s3://bucket or s3://bucket/prefix")
        return "s3", parts.netloc, parts.path
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("storage URL: file:// URLs name a local folder (file:///path)")
        return "folder", parts.path, ""
    if parts.scheme and len(parts.scheme) > 1:  # (a one-letter "scheme" is a Windows drive)
        raise ValueError(f"storage URL: unsupported scheme {parts.scheme!r} (a folder, file:///path or s3://bucket)")
    if not text:
        raise ValueError("storage URL: empty")
    return "folder", text, ""


def open_store(url: str, base: Path, timeout_s: float = 10.0) -> ObjectStore:
    """`s3://bucket[/prefix]`, `file:///abs/folder`, or a folder path (relative to `base`). ValueError otherwise."""
    kind, where, prefix = parse_storage_url(url)
    if kind == "s3":
        from cascade.store.s3 import S3Store, make_client

        return S3Store(where, prefix, make_client(timeout_s))
    return FolderStore(base / where)
