"""The fence, with a fake clock: writes only for held shards, and none once the renew deadline passed."""

from __future__ import annotations

import pytest
from kubernetes import client

from payguard.api import FencedError
from payguard.cluster import Cluster
from payguard.fence import Fence
from payguard.sharding import shard_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fence_holding(namespace: str, clock: Clock) -> Fence:
    fence = Fence(shards=4, renew_deadline=3.0, clock=clock)
    fence.renewed(shard_of(namespace, shards=4), sent_at=clock.now)
    return fence


def test_writes_pass_within_the_renew_deadline_and_stop_at_it() -> None:
    clock = Clock()
    fence = fence_holding("payments", clock)
    clock.now += 2.9
    fence.check("payments", "Apply")
    clock.now += 0.1
    with pytest.raises(FencedError, match="not renewed within the renew deadline"):
        fence.check("payments", "Apply")
    assert fence.held() == set()


def test_writes_for_a_shard_not_held_are_refused() -> None:
    clock = Clock()
    fence = fence_holding("payments", clock)
    other = next(f"ns-{i}" for i in range(100) if fence.shard(f"ns-{i}") != fence.shard("payments"))
    with pytest.raises(FencedError, match="is not held"):
        fence.check(other, "Apply")


def test_a_revoked_shard_is_refused_at_once() -> None:
    clock = Clock()
    fence = fence_holding("payments", clock)
    fence.revoke(fence.shard("payments"))
    assert not fence.owns("payments")


def test_the_cluster_refuses_a_fenced_write_before_sending_it() -> None:
    # The host does not exist: a request sent would fail differently from a FencedError.
    api = client.ApiClient(client.Configuration(host="https://unreachable.invalid:1"))
    clock = Clock()
    cluster = Cluster(api, fence=Fence(shards=1, renew_deadline=3.0, clock=clock))
    manifest = {"kind": "NetworkPolicy", "metadata": {"namespace": "payments", "name": "n"}}
    for write in (
        lambda: cluster.apply(manifest),
        lambda: cluster.patch_status(namespace="payments", name="n", status={}),
        lambda: cluster.delete(kind="NetworkPolicy", namespace="payments", name="n", uid="u"),
    ):
        with pytest.raises(FencedError):
            write()
    cluster.post_event(
        regarding={"metadata": {"namespace": "payments", "name": "n"}},
        warning=False,
        reason="R",
        action="A",
        note="n",
    )  # refused quietly: Events never fail a pass
