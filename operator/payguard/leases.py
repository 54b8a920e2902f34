"""Owns the Lease decisions of leader election (client-go's semantics), pure: may a candidate acquire a
Lease, is a holder's renew deadline past, and the Lease bodies to write. No clock, no I/O.

Like client-go, expiry is judged by when *this* replica last saw the record change (its own monotonic
clock), never by comparing renewTime with the local wall clock: clock skew between nodes cannot make a
live holder look expired. A candidate waits a full lease duration without seeing a renewal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LEASE_GROUP_LABEL = "payguard.dev/lease-group"
LEASE_ROLE_LABEL = "payguard.dev/lease-role"  # "shard" or "member"
SHARDS_LABEL = "payguard.dev/shards"  # how many shards the writer splits namespaces into


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says, plus the resourceVersion to update it with (optimistic concurrency)."""

    name: str
    holder: str | None
    renew_time: str | None
    acquire_time: str | None
    duration_seconds: int
    transitions: int
    resource_version: str
    shards: int | None = None  # the writer's --shards (the label)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> LeaseRecord:
        spec = body.get("spec") or {}
        shards = ((body["metadata"].get("labels") or {}).get(SHARDS_LABEL) or "").strip()
        return cls(
            name=body["metadata"]["name"],
            holder=spec.get("holderIdentity") or None,
            renew_time=spec.get("renewTime"),
            acquire_time=spec.get("acquireTime"),
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(body["metadata"].get("resourceVersion", "")),
            shards=int(shards) if shards.isdigit() else None,
        )

    @property
    def version(self) -> tuple[str | None, str | None]:
        """What changes on every acquire, renew and release: a change restarts the candidates' wait."""
        return (self.holder, self.renew_time)


@dataclass(frozen=True)
class Observation:
    """A Lease as this replica last saw it, and when (monotonic seconds) it last saw it change."""

    record: LeaseRecord
    changed_at: float


def observe(previous: Observation | None, record: LeaseRecord, *, now: float) -> Observation:
    """The new observation: the change time moves only when holder or renewTime moved."""
    if previous is not None and previous.record.version == record.version:
        return Observation(record, previous.changed_at)
    return Observation(record, now)


def live_holder(observation: Observation | None, *, now: float) -> str | None:
    """The holder a candidate must respect: None when the Lease is missing, released, or not renewed for
    its whole leaseDurationSeconds as seen from here."""
    if observation is None or observation.record.holder is None:
        return None
    duration = observation.record.duration_seconds
    if now >= observation.changed_at + duration:
        return None
    return observation.record.holder


def other_shard_counts(observations: Mapping[str, Observation], *, shards: int, now: float) -> set[int]:
    """Shard counts of live shard Leases other than ours: replicas split namespaces differently (a
    rollout changing --shards), so taking any shard could make two owners of one namespace."""
    return {
        seen.record.shards
        for seen in observations.values()
        if seen.record.shards not in (None, shards) and live_holder(seen, now=now) is not None
    }


def departed(observation: Observation, *, now: float, after: float) -> bool:
    """A member Lease unchanged for `after` seconds on this clock: its replica is gone for good (pod
    names change on every restart), so the Lease is clutter to delete."""
    return live_holder(observation, now=now) is None and now - observation.changed_at >= after


def member_lease_name(group: str, identity: str) -> str:
    """Each replica announces itself with a Lease of its own, so every replica can count the live ones."""
    return f"{group}-member-{identity}"


def shard_lease_name(group: str, shard: int) -> str:
    return f"{group}-shard-{shard}"


def lease_body(
    *,
    name: str,
    namespace: str,
    group: str,
    role: str,
    holder: str | None,
    previous: LeaseRecord | None,
    now: datetime,
    duration: int,
    shards: int | None = None,
) -> dict[str, Any]:
    """The Lease to create or update: an acquire (holder changes), a renew (same holder) or a release
    (holder None, as client-go's ReleaseOnCancel leaves it). Updates carry the resourceVersion that was
    read, so two candidates racing for one Lease cannot both win."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec: dict[str, Any] = {"leaseDurationSeconds": duration if holder else 1, "renewTime": stamp}
    changed_hands = previous is None or previous.holder != holder
    if holder:
        spec["holderIdentity"] = holder
    transitions = previous.transitions if previous is not None else 0
    if holder and changed_hands:
        spec["acquireTime"] = stamp
        if previous is not None and previous.holder is not None:
            transitions += 1
    elif holder and previous is not None and previous.acquire_time:
        spec["acquireTime"] = previous.acquire_time  # an update replaces the whole spec
    spec["leaseTransitions"] = transitions
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {LEASE_GROUP_LABEL: group, LEASE_ROLE_LABEL: role},
    }
    if shards is not None:
        metadata["labels"][SHARDS_LABEL] = str(shards)
    if previous is not None:
        metadata["resourceVersion"] = previous.resource_version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
