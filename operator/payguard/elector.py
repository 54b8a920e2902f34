"""Owns the election loop: every retry period it reads the group's Leases, renews what it holds, takes a
fair share of the free shards and releases its surplus, and keeps the fence in step. Runs in the
operator's event loop; Lease calls run on a thread of their own, so busy passes never delay a renew."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from payguard import metrics
from payguard.api import ApiError
from payguard.coordination import LeaseApi, LeaseConflictError
from payguard.fence import Fence
from payguard.leases import (
    LeaseRecord,
    Observation,
    departed,
    lease_body,
    live_holder,
    member_lease_name,
    observe,
    other_shard_counts,
    shard_lease_name,
)
from payguard.settings import Election
from payguard.sharding import plan_shards

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEPARTED_LEASES = 20  # lease durations after which a silent member Lease is deleted


class Elector:
    """One per process. `changed(shard, held)` tells the controller of every acquire, release and loss;
    `drained(shard)` returns once no pass of the shard runs, so a Lease is released only after this
    replica stopped writing for it."""

    def __init__(
        self,
        election: Election,
        *,
        leases: LeaseApi,
        fence: Fence,
        changed: Callable[[int, bool], None],
        drained: Callable[[int], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.election = election
        self._leases = leases
        self.fence = fence
        self._changed = changed
        self._drained = drained
        self._clock = clock
        self._seen: dict[str, Observation] = {}
        self._waiting: set[int] = set()  # other shard counts still held (a rollout changing --shards)
        self._held: set[int] = set()  # shards announced as acquired (metric, log), whatever the fence says
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payguard-leases")
        for shard in range(election.shards):
            metrics.SHARD_OWNED.labels(shard=str(shard)).set(0)

    async def run(self) -> None:
        while True:
            started = self._clock()
            try:
                await self.round()
            except Exception:
                logger.exception("Failed a round of Lease renewals")
            await asyncio.sleep(max(self.election.retry_period - (self._clock() - started), 0))

    async def round(self) -> None:
        election = self.election
        for shard in sorted(self._held - self.fence.held()):
            self._lost(shard, "its Lease was not renewed within the renew deadline")
        try:
            items = await self._call(self._leases.list, election.group)
        except ApiError as error:
            logger.warning("Failed to list Leases: %s", error)
            return
        now = self._clock()
        records = {record.name: record for record in map(LeaseRecord.from_body, items)}
        self._seen = {
            name: observe(self._seen.get(name), record, now=now) for name, record in records.items()
        }
        me = election.identity
        await self._write(member_lease_name(election.group, me), role="member", holder=me)
        members = {  # those splitting namespaces as this one does: a rollout to new --shards waits
            holder
            for name, seen in self._seen.items()
            if name.startswith(f"{election.group}-member-")
            and seen.record.shards in (None, election.shards)
            and (holder := live_holder(seen, now=now)) is not None
        } | {me}
        holders = {
            shard: live_holder(self._seen.get(shard_lease_name(election.group, shard)), now=now)
            for shard in range(election.shards)
        }
        for shard in sorted(self._held):
            record = records.get(shard_lease_name(election.group, shard))
            if record is None or record.holder != me:
                self._lost(shard, f"the Lease names {record.holder if record else 'nobody'}")
        await self._forget_departed(now)
        plan = plan_shards(
            identity=me, shards=election.shards, members=len(members), holders=holders, held=self._held
        )
        shard_leases = {n: o for n, o in self._seen.items() if n.startswith(f"{election.group}-shard-")}
        others = other_shard_counts(shard_leases, shards=election.shards, now=now)
        if others and others != self._waiting:
            logger.warning("Waiting to take shards: Leases of %s shards are still held", sorted(others))
        self._waiting = others
        if others:
            plan = replace(plan, acquire=())
        for shard in (*plan.renew, *plan.acquire):  # renewals first: a slow release must not delay them
            await self._claim(shard)
        for shard in plan.release:
            await self.release(shard)

    async def _forget_departed(self, now: float) -> None:
        """Deletes member Leases of replicas gone for DEPARTED_LEASES lease durations."""
        prefix = f"{self.election.group}-member-"
        after = DEPARTED_LEASES * self.election.lease_duration
        for name, seen in list(self._seen.items()):
            if name.startswith(prefix) and departed(seen, now=now, after=after):
                try:
                    version = seen.record.resource_version
                    await self._call(functools.partial(self._leases.delete, name, resource_version=version))
                except ApiError as error:
                    logger.warning("Failed to delete the Lease of departed replica %s: %s", name, error)
                    continue
                del self._seen[name]
                logger.info("Deleted Lease %s/%s of a departed replica", self._leases.namespace, name)

    async def _claim(self, shard: int) -> None:
        sent_at = self._clock()
        name = shard_lease_name(self.election.group, shard)
        try:
            await self._write(name, role="shard", holder=self.election.identity, quiet=False)
        except LeaseConflictError:
            if shard in self._held:
                self._lost(shard, "another replica updated its Lease")
            return
        except ApiError as error:
            logger.warning("Failed to renew Lease %s: %s", name, error)
            return
        self.fence.renewed(shard, sent_at=sent_at)
        if shard not in self._held:
            self._held.add(shard)
            metrics.SHARD_OWNED.labels(shard=str(shard)).set(1)
            metrics.LEASE_TRANSITIONS.labels(shard=str(shard), event="acquired").inc()
            logger.info("Acquired Lease %s/%s for shard %d", self._leases.namespace, name, shard)
            self._changed(shard, True)

    async def release(self, shard: int) -> None:
        """Stops writing for the shard, waits for its passes to end, then frees the Lease for others."""
        self.fence.revoke(shard)
        try:  # fenced passes end at their next write; only a request already sent can hold one up
            await asyncio.wait_for(self._drained(shard), timeout=self.election.retry_period)
        except TimeoutError:
            logger.warning("Released shard %d with a pass still running (its writes are refused)", shard)
        self._held.discard(shard)
        self._changed(shard, False)
        metrics.SHARD_OWNED.labels(shard=str(shard)).set(0)
        metrics.LEASE_TRANSITIONS.labels(shard=str(shard), event="released").inc()
        name = shard_lease_name(self.election.group, shard)
        try:
            await self._write(name, role="shard", holder=None, quiet=False)
        except ApiError as error:  # it expires on its own
            logger.warning("Failed to release Lease %s: %s", name, error)
            return
        logger.info("Released Lease %s/%s for shard %d", self._leases.namespace, name, shard)

    async def stop(self) -> None:
        """On shutdown: every shard released (after its passes ended), then the member Lease."""
        for shard in sorted(self._held):
            await self.release(shard)
        try:
            await self._write(member_lease_name(self.election.group, self.election.identity), "member", None)
        except ApiError as error:
            logger.warning("Failed to release the member Lease: %s", error)
        self._executor.shutdown(wait=False)

    def _lost(self, shard: int, why: str) -> None:
        self.fence.revoke(shard)
        self._held.discard(shard)
        self._changed(shard, False)
        metrics.SHARD_OWNED.labels(shard=str(shard)).set(0)
        metrics.LEASE_TRANSITIONS.labels(shard=str(shard), event="lost").inc()
        name = shard_lease_name(self.election.group, shard)
        logger.warning(
            "Lost Lease %s/%s for shard %d: %s; stopped writing for it",
            self._leases.namespace,
            name,
            shard,
            why,
        )

    async def _write(self, name: str, role: str, holder: str | None, *, quiet: bool = True) -> None:
        seen = self._seen.get(name)
        previous = seen.record if seen is not None else None
        if previous is None and holder is None:
            return  # nothing to release
        body = lease_body(
            name=name,
            namespace=self._leases.namespace,
            group=self.election.group,
            role=role,
            holder=holder,
            previous=previous,
            now=datetime.now(UTC),
            duration=int(self.election.lease_duration),
            shards=self.election.shards,
        )
        try:
            written = await self._call(self._leases.write, body)
        except ApiError:
            if role == "member" and quiet:
                return
            raise
        self._seen[name] = observe(seen, LeaseRecord.from_body(written), now=self._clock())

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
