"""--pod-cidr / --service-cidr: an egress CIDR overlapping the cluster's networks is InvalidSpec naming the
field, in the operator (keeping the last good controls) and in `payguard render`."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pass_world import CHILD_KINDS, World, conditions, example
from payguard.breakglass import merge_exceptions, read_exception
from payguard.cli import main
from payguard.conditions import ConditionType, Reason
from payguard.platform import Platform
from payguard.spec import parse_payment_service

REPO = Path(__file__).resolve().parents[2]
PROCESSOR = "spec.workloads[3].egress[0].cidr"  # checkout's settlement-gateway -> 203.0.113.0/24


def cluster_networks(*, pods: str = "", services: str = "") -> Platform:
    return Platform(
        pod_cidrs=(ipaddress.ip_network(pods),) if pods else (),
        service_cidrs=(ipaddress.ip_network(services),) if services else (),
    )


@pytest.mark.parametrize(
    ("platform", "flag"),
    [
        (cluster_networks(pods="203.0.112.0/23"), "--pod-cidr"),  # contains the processor's network
        (cluster_networks(services="203.0.113.128/25"), "--service-cidr"),  # inside it
    ],
)
def test_an_egress_cidr_overlapping_a_cluster_network_is_invalid_spec(platform: Platform, flag: str) -> None:
    world = World(platform=platform)
    body = world.create(example("checkout"))

    report = world.run(body)

    assert PROCESSOR in report.invalid and flag in report.invalid
    ready = conditions(world.latest(body))[ConditionType.READY]
    assert (ready["status"], ready["reason"]) == ("False", Reason.INVALID_SPEC)
    assert PROCESSOR in ready["message"]
    for kind in CHILD_KINDS:
        assert world.cluster.stored(kind) == []


def test_networks_that_do_not_overlap_or_are_another_family_change_nothing() -> None:
    platform = Platform(
        pod_cidrs=(ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00:10::/56")),
        service_cidrs=(ipaddress.ip_network("10.96.0.0/12"),),
    )
    world = World(platform=platform)
    body = world.create(example("checkout"))

    assert not world.run(body).invalid
    assert len(world.cluster.stored("NetworkPolicy")) == 4


def test_configuring_an_overlapping_cluster_network_keeps_the_last_good_controls() -> None:
    world = World()
    body = world.settled("checkout")
    children = {kind: world.cluster.stored(kind) for kind in CHILD_KINDS}
    restarted = dataclasses.replace(world.context, platform=cluster_networks(pods="203.0.113.0/24"))

    report = world.run(body, restarted)

    assert PROCESSOR in report.invalid
    assert world.verbs() == ["patch_status", "post_event"]  # the InvalidSpec condition and Warning
    assert {kind: world.cluster.stored(kind) for kind in CHILD_KINDS} == children


def test_render_refuses_an_overlapping_cidr_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["render", "-f", str(REPO / "examples" / "checkout.yaml")]
    assert main([*argv, "--pod-cidr", "203.0.113.0/24"]) == 1
    assert PROCESSOR in capsys.readouterr().err
    assert main([*argv, "--pod-cidr", "10.244.0.0/16"]) == 0
    rendered: list[dict[str, Any]] = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(rendered) == 16


def test_graph_refuses_an_overlapping_cidr_like_the_operator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["graph", "-f", str(REPO / "examples" / "checkout.yaml"), "-o", str(tmp_path / "g.dot")]
    assert main([*argv, "--service-cidr", "203.0.113.0/24"]) == 2
    assert PROCESSOR in capsys.readouterr().err
    assert main(argv) == 0


def test_a_break_glass_egress_overlapping_a_cluster_network_is_refused_naming_its_field() -> None:
    body = example("checkout")
    exception = read_exception(
        {
            "apiVersion": "payguard.dev/v1alpha1",
            "kind": "PaymentServiceException",
            "metadata": {
                "name": "incident-1",
                "namespace": "payments",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {
                "paymentService": "checkout",
                "workload": "order-service",
                "allow": {"egress": {"cidr": "10.244.3.0/24", "ports": [443]}},
                "reason": "INC-1",
                "ticket": "INC-1",
                "requestedBy": "alice",
                "duration": "1h",
            },
        }
    )
    assert exception is not None
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    service = parse_payment_service(body)

    allowed = merge_exceptions(body, service, [exception], now=now)
    refused = merge_exceptions(
        body,
        service,
        [exception],
        now=now,
        networks=cluster_networks(pods="10.244.0.0/16").cluster_networks(),
    )

    assert [item.name for item in allowed.active] == ["incident-1"]
    [(_item, message)] = refused.refused
    assert message.startswith("spec.allow.egress.cidr") and "--pod-cidr" in message
    assert refused.service == service
