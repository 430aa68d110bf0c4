"""Orphan sweep: objects whose row never came (the save died between the two, or its row write failed), rows a
delete left half-done, and temporary files of writes that died mid-way.

It runs in every gateway replica, every `sweep_interval_s` (jittered, so replicas started together do not sweep
together). Names start with their UTC time, so each pass lists only the names made since its last pass, up to
`sweep_grace_s` ago: a save still under way (bounded by timeout_s, far below the grace) is never taken for an
orphan. Replicas sweeping the same window at once do the same idempotent deletes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from cascade.store.keys import is_current, stamp

if TYPE_CHECKING:
    from cascade.images.service import ImageService

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class SweepReport:
    at: str
    window: tuple[str, str]
    listed: int
    orphans_removed: int
    deletes_finished: int
    partial_removed: int


class Sweeper:
    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.swept_to: str | None = None
        self.last: SweepReport | None = None
        self.last_error: str | None = None

    async def run_forever(self) -> None:
        interval = self.service.args.sweep_interval_s
        await asyncio.sleep(random.uniform(0.1, 1.0) * min(interval, 60.0))
        while True:
            try:
                await self.sweep()
                self.last_error = None
            except Exception as exc:  # the next pass retries; nothing here may stop the loop
                self.last_error = str(exc)
                logger.warning("orphan sweep failed: %s", exc)
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        svc, args = self.service, self.service.args
        now = now or datetime.now(timezone.utc)
        await svc.ready()
        upto = stamp(now - timedelta(seconds=args.sweep_grace_s))
        start = self.swept_to or stamp(now - timedelta(seconds=args.sweep_grace_s + args.sweep_lookback_s))

        def listing() -> list[str]:
            return [name for name in svc.store.names_between(start, upto) if is_current(name)]

        names = await svc.bounded("object store", svc._objects, listing)
        known = await svc.bounded("index", svc._rows, svc.index.known_keys, names) if names else set()
        orphans = [name for name in names if name not in known]
        for name in orphans:
            await svc.bounded("object store", svc._objects, svc.store.delete, name)
        if orphans:
            logger.info("sweep removed %d objects without a row: %s", len(orphans), ", ".join(orphans[:10]))
        finished = 0
        for ident, key in await svc.bounded("index", svc._rows, svc.index.deleting):
            await svc.bounded("object store", svc._objects, svc.store.delete, key)
            await svc.bounded("index", svc._rows, svc.index.finish_delete, ident)
            finished += 1
        cutoff = now - timedelta(seconds=args.sweep_grace_s)
        partial = await svc.bounded("object store", svc._objects, svc.store.clean_partial, cutoff)
        # Only now: a pass that failed part-way is redone whole by the next one.
        self.swept_to = max(upto, start)
        self.last = SweepReport(now.isoformat(), (start, upto), len(names), len(orphans), finished, partial)
        return self.last

    def report(self) -> dict[str, Any]:
        return {
            "interval_s": self.service.args.sweep_interval_s,
            "grace_s": self.service.args.sweep_grace_s,
            "last": asdict(self.last) if self.last else None,
            "last_error": self.last_error,
        }
