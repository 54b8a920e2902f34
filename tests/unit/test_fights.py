"""A fight: another writer undoing payguard's repair again and again. Told once (InSync DriftRepeated and
one Warning), not one Event per revert; over when the window passes without drift."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pass_world import NOW, World, conditions
from payguard import metrics
from payguard.fights import FIGHT_DRIFTS, DriftHistory

KEY = ("PeerAuthentication", "payments", "checkout-order-service")
WINDOW = timedelta(seconds=300)


def test_three_drifts_within_the_window_make_a_fight_that_ends_a_window_after_the_third_last() -> None:
    history = DriftHistory(window=WINDOW)
    for second, version in ((0, "1"), (10, "2")):
        history.record(KEY, version=version, by=("kubectl-edit",), now=NOW + timedelta(seconds=second))
    assert history.fights([KEY], now=NOW + timedelta(seconds=10)) == []

    history.record(KEY, version="3", by=("argocd-controller",), now=NOW + timedelta(seconds=20))
    (fight,) = history.fights([KEY], now=NOW + timedelta(seconds=20))

    assert (fight.drifts, fight.by, fight.ref) == (
        FIGHT_DRIFTS,
        ("argocd-controller",),
        "PeerAuthentication/checkout-order-service",
    )
    assert fight.ends == NOW + WINDOW
    assert history.fights([KEY], now=NOW + WINDOW) == []


def test_the_same_version_read_again_is_not_a_new_drift() -> None:
    history = DriftHistory(window=WINDOW)
    for second in range(5):  # drift left in place under Report, read by five passes
        history.record(KEY, version="7", by=(), now=NOW + timedelta(seconds=second))

    assert history.fights([KEY], now=NOW + timedelta(seconds=5)) == []


def test_drifts_older_than_the_window_are_forgotten() -> None:
    history = DriftHistory(window=WINDOW)
    history.record(KEY, version="1", by=(), now=NOW)
    history.record(KEY, version="2", by=(), now=NOW + WINDOW)
    history.record(KEY, version="3", by=(), now=NOW + WINDOW + timedelta(seconds=1))

    assert history.fights([KEY], now=NOW + WINDOW + timedelta(seconds=1)) == []


def _permissive(live: dict[str, Any]) -> None:
    live["spec"]["mtls"]["mode"] = "PERMISSIVE"


def test_a_fight_is_told_once_then_its_end_is_told_once() -> None:
    moment = [NOW]
    world = World(clock=lambda: moment[0])
    body = world.settled("checkout", driftPolicy="Revert")
    repeated_before = metrics.DRIFT_REPEATED.labels(kind="PeerAuthentication")._value.get()
    told: list[list[str]] = []

    for round_ in range(10):  # another writer flips the policy every second
        moment[0] = NOW + timedelta(seconds=round_)
        world.cluster.edit(*KEY, _permissive)
        world.cluster.deliver(world.cache)
        report = world.run(world.latest(body))
        told.append([event["reason"] for event in world.cluster.events])

    assert told[:2] == [["DriftReverted"], ["DriftReverted"]]
    assert told[2] == ["DriftRepeated"]  # the fight, told by InSync's transition
    assert told[3:] == [[]] * 7
    assert world.cluster.get(*KEY)["spec"]["mtls"]["mode"] == "STRICT"  # still repaired every time
    in_sync = conditions(world.latest(body))["InSync"]
    assert (in_sync["status"], in_sync["reason"]) == ("False", "DriftRepeated")
    assert "PeerAuthentication/checkout-order-service drifted 10 times" in in_sync["message"]
    repeated = metrics.DRIFT_REPEATED.labels(kind="PeerAuthentication")._value.get() - repeated_before
    assert repeated == 8  # the third drift on
    assert report.next_certificate_change == NOW + timedelta(seconds=7) + WINDOW  # woken when it ends

    moment[0] = NOW + timedelta(seconds=7) + WINDOW
    world.run(world.latest(body))

    assert [(e["type"], e["reason"]) for e in world.cluster.events] == [("Normal", "Recovered")]
    in_sync = conditions(world.latest(body))["InSync"]
    assert (in_sync["status"], in_sync["reason"]) == ("True", "NoDrift")
