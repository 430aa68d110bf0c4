"""`python -m cascade.keys create|list|revoke`, against the metadata database the gateway reads keys from."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cascade.config import StorageArgs
from cascade.keys.cli import parser, run

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
BUILDER = "deployments.app:build_app"


def database_url(flag: str | None, environ: Mapping[str, str], config: Path) -> str:
    """The flag, else CASCADE_DATABASE_URL, else what the serve config's gateway would open (its storage.database_url,
    else the SQLite file in its storage_dir). ValueError when none of them says."""
    if flag:
        return flag
    if url := (environ.get("CASCADE_DATABASE_URL") or "").strip():
        return url
    if not config.is_file():
        raise ValueError(f"no database: pass --database-url, set CASCADE_DATABASE_URL, or --config (no {config})")
    args = _builder_args(yaml.safe_load(config.read_text()) or {})
    storage = StorageArgs.model_validate(args.get("storage") or {})
    if storage.database_url:
        return storage.database_url
    # As deployments/app.py resolves it: storage_dir relative to the project, the SQLite file inside.
    folder = PROJECT_ROOT / str(args.get("storage_dir") or "generated_images")
    return f"sqlite:///{folder / 'cascade.sqlite3'}"


def _builder_args(config: dict[str, Any]) -> dict[str, Any]:
    for app in config.get("applications") or []:
        if isinstance(app, dict) and app.get("import_path") == BUILDER:
            return dict(app.get("args") or {})
    raise ValueError(f"the serve config has no application built by {BUILDER}")


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from cascade.index import Index
    from cascade.keys.sql import SqlKeyStore

    try:
        url = database_url(args.database_url, os.environ, Path(args.config))
        index = Index(url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        index.migrate()
        print(f"keys database: {index.url}", file=sys.stderr)
        store = SqlKeyStore(index.engine, timeout_s=30)
        try:
            return asyncio.run(run(argv, store))
        finally:
            store.close()
    except Exception as exc:
        from cascade.images.service import describe

        # One line, the driver's own (psycopg names the host it could not reach, never the password).
        print(f"error: the keys database failed: {describe(exc)}", file=sys.stderr)
        return 1
    finally:
        index.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
