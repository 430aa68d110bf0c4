"""`python -m cascade.keys create|list|revoke`: the commands, over any `KeyStore`.

`create` prints the key once, on stdout alone (so `KEY=$(python -m cascade.keys create app)` works); what to do
with it goes to stderr. Nothing else ever prints a key: `list` shows ids, names and limits.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from cascade.keys.store import KeyRecord, KeyStore, create_key
from cascade.limits.quota import Quota


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cascade.keys",
        description="Manage Cascade API keys in the metadata database: --database-url, else CASCADE_DATABASE_URL, "
        "else the serve config's storage.database_url, else its storage_dir's SQLite file (the embedded default).",
    )
    p.add_argument("--database-url", help="sqlite:///path or postgresql://... (default: see above)")
    p.add_argument("--config", default="serve_config.yaml", help="serve config to read the database from")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make a key and print it (once)")
    create.add_argument("name", help="who or what the key is for")
    create.add_argument("--backends", help="comma-separated backends the key may use (default: all)")
    create.add_argument("--rate", type=float, dest="rate_per_s", help="requests per second")
    create.add_argument("--burst", type=int, help="requests at once after a quiet spell (default: 1 s of --rate)")
    create.add_argument("--concurrency", type=int, dest="max_concurrency", help="requests in flight at once")
    create.add_argument("--daily-images", type=int, help="images per UTC day")
    create.add_argument("--daily-spend-usd", type=float, help="remote-provider spend per UTC day, in USD")
    create.add_argument("--admin", action="store_true", help="may read and delete every key's history")
    listing = sub.add_parser("list", help="show keys (never the keys themselves)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return p


def describe(record: KeyRecord) -> dict[str, Any]:
    q = record.quota
    return {
        "id": record.id,
        "name": record.name,
        "backends": sorted(record.allowed_backends) if record.allowed_backends is not None else "all",
        "rate_per_s": q.rate_per_s,
        "burst": q.burst,
        "max_concurrency": q.max_concurrency,
        "daily_images": q.daily_images,
        "daily_spend_usd": q.daily_spend_usd,
        "admin": record.admin,
        "created": record.created_at.isoformat(timespec="seconds"),
        "revoked": record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else None,
    }


async def run(argv: list[str], store: KeyStore, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = parser().parse_args(argv)
    if args.command == "create":
        backends = None if args.backends is None else args.backends.split(",")
        try:
            quota = Quota(
                rate_per_s=args.rate_per_s,
                burst=args.burst,
                max_concurrency=args.max_concurrency,
                daily_images=args.daily_images,
                daily_spend_usd=args.daily_spend_usd,
            )
            record, key = await create_key(store, args.name, allowed_backends=backends, quota=quota, admin=args.admin)
        except ValueError as exc:
            print(f"error: {exc}", file=err)
            return 2
        print(key, file=out)
        print(f"created key {record.id} ({record.name}): store it now, it is not shown again", file=err)
        return 0
    if args.command == "list":
        records = await store.list(include_revoked=args.all)
        for record in records:
            row = describe(record)
            if args.json:
                print(json.dumps(row), file=out)
            else:
                limits = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("id", "name", "created") and v)
                print(f"{row['id']}  {row['name']!r}  created {row['created']}  {limits}", file=out)
        return 0
    record = await store.revoke(args.key_id)
    if record is None:
        print(f"error: no key {args.key_id!r}", file=err)
        return 1
    print(f"revoked {record.id} ({record.name}) at {record.revoked_at:%Y-%m-%dT%H:%M:%S%z}", file=out)
    return 0
