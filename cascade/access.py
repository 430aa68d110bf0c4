"""Who is calling and what they may spend: keys, limits and the guards around each backend call, in one object.

Ray-free: the gateway builds one `Access` per replica (deployments/access.py) and calls it; tests drive it directly.

A request's life: `admit(headers)` (401 without a valid key when auth is required; 429 past the key's rate or
concurrency) gives a `Grant`; `finish(grant)` frees its concurrency slot. A job (`/api/jobs`) keeps both for as long
as it may run: `hold_image` at submission, `end_job` once it has ended. For each image, `images(grant)` counts it
against the key's day (given back if no image came). `chain(grant)` wraps the fallback chain's steps: a backend the
key may not use is skipped, a backend whose global cap is full is busy, and the remote backend holds the key's spend
before the call and settles what was bought after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from cascade.access_config import AccessConfig
from cascade.errors import BackendBusy, BackendFailed, RateLimited
from cascade.fallback import Skipped, Step
from cascade.keys import Authenticator, KeyRecord, KeyStore, require_backend
from cascade.limits.guard import Admission, Caller, Guard, ImageHold, SpendHold
from cascade.limits.quota import Quota
from cascade.limits.store import LimitStore
from cascade.types import ImageResult

logger = logging.getLogger("cascade.access")


@dataclass(frozen=True)
class Grant:
    """Who a request is and what it was admitted with. Frozen and picklable: it may travel with a job."""

    # None: auth is off (every HTTP caller is "anonymous") or the caller is trusted (an in-cluster handle call).
    key: KeyRecord | None
    caller: Caller
    admission: Admission | None = None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.id

    @property
    def headers(self) -> dict[str, str]:
        """x-ratelimit-* for the response (empty when the caller has no rate limit)."""
        return {} if self.admission is None else dict(self.admission.headers)


# Python handle callers (serve.get_app_handle(...).generate.remote(...)): inside the Ray cluster already, so trusted
# like any other in-cluster code. No key, no per-key limits; the backends' global caps still hold.
INTERNAL = Grant(None, Caller("internal", Quota()))


class Access:
    def __init__(
        self,
        config: AccessConfig,
        guard: Guard,
        authenticator: Authenticator | None,
        remote: Mapping[str, bool] | None = None,
    ) -> None:
        """`authenticator`: required when `config.auth` is required. `remote`: backend name -> spends money."""
        if config.auth == "required" and authenticator is None:
            raise ValueError("auth is required but there is no key store to check keys against")
        self.config, self.guard, self.authenticator = config, guard, authenticator
        self.remote = dict(remote or {})

    @classmethod
    def open(
        cls,
        config: AccessConfig,
        keys: KeyStore | None,
        limits: LimitStore,
        *,
        request_timeout_s: float,
        remote: Mapping[str, bool] | None = None,
    ) -> Access:
        authenticator = None
        if config.auth == "required" and keys is not None:
            authenticator = Authenticator(keys, cache_s=config.key_cache_s, stale_s=config.key_stale_s)
        return cls(config, Guard(limits, config.limits.policy(request_timeout_s)), authenticator, remote)

    @property
    def required(self) -> bool:
        return self.config.auth == "required"

    # --- per request ----------------------------------------------------------------------------------------

    async def identify(self, headers: Mapping[str, Any]) -> Grant:
        """Authentication alone (401, or 503 when the key store is down). With auth off everyone is anonymous and a
        key, if sent, is not looked at."""
        if self.authenticator is None:
            return Grant(None, self.config.limits.caller(None))
        record = await self.authenticator.authenticate(headers)
        return Grant(record, self.config.limits.caller(record))

    async def admit(self, headers: Mapping[str, Any]) -> Grant:
        """Authenticate, then take the caller's rate and concurrency (429 with Retry-After). `finish` it after."""
        grant = await self.identify(headers)
        return replace(grant, admission=await self.guard.admit(grant.caller, images=0))

    async def finish(self, grant: Grant) -> None:
        if grant.admission is not None:
            await self.guard.finish(grant.admission, images_made=0)

    def check_backend(self, grant: Grant, backend: str | None) -> None:
        """403 when the request names a backend its key may not use."""
        if backend is not None:
            require_backend(grant.key, backend)

    def sees_everything(self, grant: Grant) -> bool:
        """Every key's history and /healthz in full: with auth off, for admin keys and for in-cluster callers."""
        return not self.required or grant is INTERNAL or (grant.key is not None and grant.key.admin)

    def owner(self, grant: Grant) -> str | None:
        """The key whose history this caller may see; None for all of it."""
        return None if self.sees_everything(grant) else grant.key_id

    @asynccontextmanager
    async def images(self, grant: Grant, count: int = 1) -> AsyncIterator[None]:
        """Count `count` images against the caller's day for the block (429 when it cannot); given back when the
        block raises (no image came)."""
        hold = await self.guard.hold_images(grant.caller, count)
        try:
            yield
        except BaseException:
            await self.guard.release_images(hold, made=0)
            raise

    async def hold_image(self, grant: Grant) -> ImageHold | None:
        """One image counted against the caller's day now (429 when it cannot be), for a job that makes it later;
        `end_job` keeps or gives it back."""
        return await self.guard.hold_images(grant.caller, 1)

    async def end_job(self, grant: Grant, hold: ImageHold | None, made: bool) -> None:
        """A job can no longer make its image: free its concurrency slot, give its image back unless it was made.
        Never raises."""
        await self.guard.release_images(hold, made=1 if made else 0)
        await self.finish(grant)

    def chain(self, grant: Grant) -> ChainGuard:
        return ChainGuard(self, grant)


@dataclass
class ChainGuard:
    """One request's guards around its chain's steps."""

    access: Access
    grant: Grant
    # A limit that kept a backend out of this request (the spend limit): the answer when the request named it.
    refusals: dict[str, RateLimited] = field(default_factory=dict)

    def step(self, step: Step) -> Step:
        key, name = self.grant.key, step.name
        if key is not None and not key.may_use(name):
            reason = f"key {key.id} may not use {name}"
            return Step(name, 0.0, _never, lambda: reason)
        capped = name in self.access.guard.policy.backend_caps
        spends = self.access.remote.get(name, False) and self.grant.caller.quota.daily_spend_usd is not None
        if not (capped or spends):
            return step
        return replace(step, start=lambda: asyncio.ensure_future(self._guarded(step, spends)))

    def refusal(self, backend: str | None) -> RateLimited | None:
        """The limit that kept the named backend out, if one did: a request that named it gets that limit's 429."""
        return None if backend is None else self.refusals.get(backend)

    async def _guarded(self, step: Step, spends: bool) -> ImageResult:
        guard = self.access.guard
        hold: SpendHold | None = None
        if spends:
            try:
                hold = await guard.hold_spend(self.grant.caller)
            except RateLimited as exc:
                self.refusals[step.name] = exc
                raise Skipped(str(exc)) from None
        slot = await guard.backend_slot(step.name)
        if slot is None:
            if hold is not None:
                await guard.settle_spend(hold, None)
            cap = guard.policy.backend_caps[step.name]
            raise BackendBusy(f"{cap} calls in flight across the gateway replicas (limits.backend_caps)")
        bought: str | None = None
        settle = hold is not None
        try:
            call = step.start()
            try:
                result = await call
            except asyncio.CancelledError:
                call.cancel()
                # Timed out or abandoned: the provider may have sold the image all the same. The hold stays charged.
                settle = False
                raise
            except BackendFailed:
                raise  # every provider answered with an error: nothing was bought, the hold is given back
            except Exception:
                settle = False  # the call died on the way (a replica lost): whether it bought is unknown
                raise
            bought = result.provider
            return result
        finally:
            await guard.release_slot(slot)
            if settle and hold is not None:
                await guard.settle_spend(hold, bought)


async def _never() -> ImageResult:
    raise RuntimeError("a skipped step is never called")
