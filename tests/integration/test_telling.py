"""Telling people what is wrong, and who did it, on a real API server: each problem is one Warning Event and
one WARNING log line, its recovery one Normal Event; drift names the field manager that made it; a fight
is a handful of Events and `DriftRepeated`, over when the other writer stops."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from test_operator_settings import separate_checkout, wait_reconciled
from test_reconcile import (
    KINDS,
    apply_and_wait_ready,
    checkout,
    condition,
    custom,
    foreign,
    get_child,
    get_service,
    patch_child,
    wait_condition,
)

from conftest import OperatorLog
from kube import TestCluster, list_events
from localcluster import free_port
from operator_harness import SEPARATE_SELECTOR, OperatorProcess, eventually

pytestmark = pytest.mark.usefixtures("payguard_operator")

QUIET_SECONDS = 3  # long enough for a few more passes to tell something twice, if they would


def payguard_events(cluster: TestCluster, namespace: str) -> list[Any]:
    events = list_events(cluster, namespace)
    return [e for e in events if e.regarding and e.regarding.name == "checkout"]


def warning_lines(log: OperatorLog, namespace: str) -> list[str]:
    return [
        line for line in log.lines if line.startswith("WARNING payguard") and f"{namespace}/checkout" in line
    ]


class Told:
    """What payguard told about one PaymentService after a moment: new Events and WARNING lines."""

    def __init__(self, cluster: TestCluster, namespace: str, log: OperatorLog) -> None:
        self.cluster, self.namespace, self.log = cluster, namespace, log
        self.mark()

    def mark(self) -> None:
        self._events = {e.metadata.name for e in payguard_events(self.cluster, self.namespace)}
        self._lines = len(warning_lines(self.log, self.namespace))

    def since(self) -> tuple[list[tuple[str, str]], list[str]]:
        time.sleep(QUIET_SECONDS)
        events = [
            (e.type, e.reason)
            for e in payguard_events(self.cluster, self.namespace)
            if e.metadata.name not in self._events
        ]
        lines = warning_lines(self.log, self.namespace)[self._lines :]
        self.mark()
        return events, lines


def mtls_mode(cluster: TestCluster, namespace: str) -> str:
    live = get_child(cluster, "PeerAuthentication", namespace, "checkout-order-service") or {}
    return str(live["spec"]["mtls"]["mode"])


def test_mtls_weakened_by_an_older_policy_is_one_warning_then_one_normal_when_removed(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    told = Told(cluster, namespace, operator_log)
    legacy = foreign(
        "PeerAuthentication",
        namespace,
        "order-legacy",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "order-service"}},
            "mtls": {"mode": "PERMISSIVE"},
        },
    )
    cluster.apply(legacy)
    time.sleep(1.1)  # creationTimestamp has one-second resolution; Istio picks the oldest policy
    cluster.enrol(checkout(namespace))

    cluster.apply(checkout(namespace))
    wait_condition(cluster, namespace, "MTLSStrict", status="False", reason="NotStrict")
    events, lines = told.since()

    assert [event for event in events if event[0] == "Warning"] == [("Warning", "NotStrict")], events
    assert len(lines) == 1 and f"PeerAuthentication {namespace}/order-legacy" in lines[0], lines

    group, version, plural = KINDS["PeerAuthentication"]
    custom(cluster).delete_namespaced_custom_object(group, version, namespace, plural, "order-legacy")
    wait_condition(cluster, namespace, "MTLSStrict", status="True")
    events, lines = told.since()

    assert events == [("Normal", "Recovered")], events
    assert lines == []


def test_drift_under_report_is_one_warning_then_one_normal_when_undone(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))
    told = Told(cluster, namespace, operator_log)
    policy = get_child(cluster, "AuthorizationPolicy", namespace, "checkout-order-service")
    assert policy is not None
    rules = policy["spec"]["rules"]

    widened = [*rules, {"from": [{"source": {"namespaces": ["anywhere"]}}]}]
    patch_child(
        cluster, "AuthorizationPolicy", namespace, "checkout-order-service", {"spec": {"rules": widened}}
    )
    wait_condition(cluster, namespace, "InSync", status="False", reason="DriftDetected")
    events, lines = told.since()

    # InSync and AuthorizationEnforced fail for one reason: one Event, one line.
    assert events == [("Warning", "DriftDetected")], events
    assert len(lines) == 1 and "AuthorizationPolicy/checkout-order-service: spec.rules" in lines[0], lines

    patch_child(
        cluster, "AuthorizationPolicy", namespace, "checkout-order-service", {"spec": {"rules": rules}}
    )
    wait_condition(cluster, namespace, "InSync", status="True")
    events, lines = told.since()

    assert events == [("Normal", "Recovered")], events
    assert lines == []


def test_a_foreign_widening_policy_is_one_warning_then_one_normal_when_removed(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    told = Told(cluster, namespace, operator_log)
    allow_all = foreign(
        "NetworkPolicy",
        namespace,
        "allow-all",
        {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
    )

    cluster.apply(allow_all)
    wait_condition(cluster, namespace, "LeastPrivilege", status="False")
    events, lines = told.since()

    assert events == [("Warning", "ForeignNetworkPolicy")], events
    assert len(lines) == 1 and "allow-all" in lines[0], lines

    client.NetworkingV1Api(cluster.api_client).delete_namespaced_network_policy("allow-all", namespace)
    wait_condition(cluster, namespace, "LeastPrivilege", status="True")
    events, lines = told.since()

    assert events == [("Normal", "Recovered")], events
    assert lines == []


def test_an_invalid_spec_is_one_warning_then_one_normal_when_fixed(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    told = Told(cluster, namespace, operator_log)
    body = checkout(namespace)
    body["spec"]["workloads"][2]["callers"] = [
        {"principal": {"namespace": namespace, "serviceAccount": "order-service"}}
    ]

    cluster.apply(body)
    wait_condition(cluster, namespace, "Ready", status="False", reason="InvalidSpec")
    events, lines = told.since()

    assert events == [("Warning", "InvalidSpec")], events
    assert len(lines) == 1 and "spec.workloads[2].callers[0].principal" in lines[0], lines

    cluster.apply(checkout(namespace))
    wait_condition(cluster, namespace, "Ready", status="True")
    events, lines = told.since()

    assert events == [("Normal", "Recovered")], events
    assert lines == []


def test_a_child_deleted_under_revert_is_one_drift_warning_not_a_creation(
    cluster: TestCluster, namespace: str, operator_log: OperatorLog
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    told = Told(cluster, namespace, operator_log)

    client.NetworkingV1Api(cluster.api_client).delete_namespaced_network_policy(
        "checkout-order-service", namespace
    )
    in_sync = wait_condition(cluster, namespace, "InSync", status="True", reason="DriftReverted")
    events, lines = told.since()

    assert events == [("Warning", "DriftReverted")], events
    assert "NetworkPolicy/checkout-order-service: (deleted)" in in_sync["message"]
    assert len(lines) == 1 and "(deleted)" in lines[0], lines


def test_drift_names_the_field_manager_that_made_it(cluster: TestCluster, namespace: str) -> None:
    apply_and_wait_ready(cluster, checkout(namespace, driftPolicy="Report"))
    group, version, plural = KINDS["PeerAuthentication"]

    custom(cluster).patch_namespaced_custom_object(
        group,
        version,
        namespace,
        plural,
        "checkout-order-service",
        {"spec": {"mtls": {"mode": "PERMISSIVE"}}},
        field_manager="tamper-test",
        _content_type="application/merge-patch+json",
    )

    in_sync = wait_condition(cluster, namespace, "InSync", status="False", reason="DriftDetected")
    assert "by tamper-test" in in_sync["message"], in_sync["message"]
    # The pass writes its status before it posts its Events: wait for the Event rather than race it.
    (drift,) = eventually(
        lambda: [e for e in payguard_events(cluster, namespace) if e.reason == "DriftDetected"],
        what="the DriftDetected Event",
    )
    assert "tamper-test" in drift.note, drift.note


@pytest.mark.parametrize(("before", "after"), [("Enforce", "Audit"), ("Audit", "Enforce")])
def test_switching_enforcement_posts_no_drift_event(
    cluster: TestCluster, namespace: str, before: str, after: str
) -> None:
    cluster.enrol(checkout(namespace))
    cluster.apply(checkout(namespace, enforcement=before))
    wait_condition(cluster, namespace, "InSync", status="True")

    cluster.apply(checkout(namespace, enforcement=after))
    wait_condition(cluster, namespace, "InSync", status="True")
    time.sleep(QUIET_SECONDS)

    reasons = {e.reason for e in payguard_events(cluster, namespace)}
    assert not reasons & {"DriftReverted", "DriftDetected", "DriftRepeated"}, reasons
    assert "Updated" in reasons


# --- a fight ----------------------------------------------------------------------------------------------

FIGHT_SECONDS = 60
FLIP_SECONDS = 0.2
FIGHT_WINDOW_SECONDS = 15  # --fight-window-seconds: the default 300 would keep InSync False for 5 minutes


def repeated_drifts(port: int) -> float:
    """payguard_drift_repeated_total for PeerAuthentications, as the PrometheusRule alert reads it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r'^payguard_drift_repeated_total\{kind="PeerAuthentication"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def fighting_operator(
    operator_kubeconfig: Path, tmp_path: Path, namespace: str, metrics_port: int
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(tmp_path / "payguard.log")
    flags = ["-n", namespace, "--selector", SEPARATE_SELECTOR, "--metrics-port", str(metrics_port)]
    process.start(operator_kubeconfig, [*flags, "--fight-window-seconds", str(FIGHT_WINDOW_SECONDS)])
    yield process
    process.stop()
    assert process.tracebacks() == ""


def flipping(cluster: TestCluster, namespace: str, stop: threading.Event) -> Callable[[], int]:
    """Another writer, `rival-controller`, applying PERMISSIVE every FLIP_SECONDS until stopped."""
    flips = [0]
    rival: dict[str, Any] = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "checkout-order-service", "namespace": namespace},
        "spec": {"mtls": {"mode": "PERMISSIVE"}},
    }

    def run() -> None:
        while not stop.wait(FLIP_SECONDS):
            cluster.apply(rival, field_manager="rival-controller")
            flips[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return lambda: flips[0]


def test_a_sixty_second_fight_is_a_handful_of_events_and_ends_when_the_rival_stops(
    cluster: TestCluster, namespace: str, fighting_operator: OperatorProcess, metrics_port: int
) -> None:
    body = separate_checkout(namespace)
    cluster.enrol(body)
    cluster.apply(body)
    wait_reconciled(cluster, namespace)
    eventually(
        lambda: condition(get_service(cluster, namespace), "Ready").get("status") == "True",
        timeout=60,
        what="Ready",
    )
    stop = threading.Event()

    flips = flipping(cluster, namespace, stop)
    fight = wait_condition(cluster, namespace, "InSync", status="False", reason="DriftRepeated", timeout=30)
    time.sleep(FIGHT_SECONDS)
    stop.set()

    assert flips() > FIGHT_SECONDS / FLIP_SECONDS / 2, flips()
    assert "PeerAuthentication/checkout-order-service" in fight["message"]
    assert "by rival-controller" in fight["message"], fight["message"]
    events = payguard_events(cluster, namespace)
    print(f"fight: {flips()} flips in {FIGHT_SECONDS} s, {len(events)} Events:", [e.reason for e in events])
    assert len(events) <= 10, [(e.reason, e.note) for e in events]
    assert "DriftRepeated" in {e.reason for e in events}
    assert repeated_drifts(metrics_port) > 0
    # payguard kept repairing: STRICT is back within moments of the rival stopping.
    eventually(
        lambda: mtls_mode(cluster, namespace) == "STRICT",
        timeout=10,
        what="STRICT restored",
    )
    in_sync = wait_condition(cluster, namespace, "InSync", status="True", timeout=FIGHT_WINDOW_SECONDS + 20)
    assert in_sync["reason"] in {"NoDrift", "DriftReverted"}, in_sync
