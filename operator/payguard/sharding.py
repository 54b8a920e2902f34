"""Owns how PaymentServices are split over shards and how replicas share the shards: pure decisions only.

A shard is a stable hash of the namespace (namespaces keep cross-service posture local: a foreign policy
in the namespace widens every service in it, so one owner sees them all). Replicas take a fair share of
the shards; which shards each one prefers is a rendezvous hash of (identity, shard), so candidates
prefer different shards instead of racing for the same ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass


def shard_of(namespace: str, *, shards: int) -> int:
    """The shard of every PaymentService in `namespace`: sha256, so every replica and every Python
    process agrees (the built-in hash() is salted per process)."""
    digest = hashlib.sha256(namespace.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def fair_share(*, shards: int, members: int) -> int:
    """How many shards one replica may hold: ceil(shards / live replicas)."""
    return math.ceil(shards / max(members, 1))


def preference(identity: str, shard: int) -> int:
    """Rendezvous weight of a shard for one replica: higher is preferred."""
    return int.from_bytes(hashlib.sha256(f"{identity}/{shard}".encode()).digest()[:8], "big")


@dataclass(frozen=True)
class ShardPlan:
    """What one replica does with the shard Leases in one round."""

    acquire: tuple[int, ...]  # free or expired shards to take (compare-and-swap: a loser just retries)
    renew: tuple[int, ...]  # shards held and kept
    release: tuple[int, ...]  # surplus: released only after this replica stopped writing for them


def plan_shards(
    *,
    identity: str,
    shards: int,
    members: int,
    holders: Mapping[int, str | None],
    held: Collection[int],
) -> ShardPlan:
    """One round of shard ownership for `identity`.

    `holders` maps each shard to its live holder (None when the Lease is missing, released or expired in
    this replica's observation); `held` are the shards this replica holds and may still write for.
    Surplus shards (above the fair share, when replicas joined) are released, the least preferred first;
    free shards are taken up to the fair share, the most preferred first.
    """
    share = fair_share(shards=shards, members=members)
    kept = sorted(held, key=lambda shard: preference(identity, shard), reverse=True)
    release = tuple(sorted(kept[share:]))
    kept = kept[:share]
    free = [shard for shard in range(shards) if shard not in held and holders.get(shard) in (None, identity)]
    free.sort(key=lambda shard: preference(identity, shard), reverse=True)
    acquire = tuple(sorted(free[: max(share - len(kept), 0)]))
    return ShardPlan(acquire=acquire, renew=tuple(sorted(kept)), release=release)


def keeps_namespace(
    namespace: str, *, shards: int, owned: Collection[int] | None, mesh_root_namespace: str
) -> bool:
    """Whether a replica's cache keeps the objects of `namespace` ("" for cluster-scoped objects).

    Cluster-scoped objects (Namespaces, ClusterIssuers) and the mesh root namespace's (mesh-wide policies,
    the mesh config) are kept always: every shard's passes read them. Any other namespace only while its
    shard is owned: a pass reads its own namespace only (its children, pods, Services, Issuer, the
    PaymentServices it shares identities with). `owned` None keeps everything (one shard: a standby's
    cache stays warm)."""
    if owned is None or not namespace or namespace == mesh_root_namespace:
        return True
    return shard_of(namespace, shards=shards) in owned
