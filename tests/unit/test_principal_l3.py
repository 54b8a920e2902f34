"""Precise L3 for callers given by mesh identity: a principal's `selector` and `namespaceLabels` reach the
NetworkPolicy; without a selector the status notes, per workload, that L3 admits the whole namespace."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pass_world import World, conditions, example
from payguard.cli import main
from payguard.conditions import ConditionType
from payguard.judge import _summaries  # the status shape, without a whole pass
from payguard.model import Caller, InvalidSpec, Principal
from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service
from payguard.tools.callgraph import call_graph

CONSOLE = "spec.workloads[0].callers[0].principal"


def refunds(**principal: Any) -> dict[str, Any]:
    body = example("cross-namespace-caller")
    body["spec"]["workloads"][0]["callers"][0]["principal"] = {
        "namespace": "support-tools",
        "serviceAccount": "refund-console",
        **principal,
    }
    return body


def ingress_peers(body: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = [
        c
        for c in render_children(parse_payment_service(body), platform=Platform())
        if c["kind"] == "NetworkPolicy"
    ]
    return [rule["from"][0] for rule in policy["spec"]["ingress"]]


def test_a_selector_and_namespace_labels_narrow_the_peer_to_those_pods() -> None:
    console, auditor = ingress_peers(
        refunds(selector={"app": "console"}, namespaceLabels={"team": "support"})
    )
    assert console == {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "support-tools", "team": "support"}
        },
        "podSelector": {"matchLabels": {"app": "console"}},
    }
    assert auditor == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "support-tools"}}}


@pytest.mark.parametrize(
    ("principal", "path", "fragment"),
    [
        ({"selector": {}}, f"{CONSOLE}.selector", "must not be empty"),
        ({"selector": {"app": "a b"}}, f"{CONSOLE}.selector.app", "not a non-empty label value"),
        (
            {"namespaceLabels": {"kubernetes.io/metadata.name": "x"}},
            f"{CONSOLE}.namespaceLabels",
            "must not set",
        ),
        ({"podSelector": {"app": "x"}}, CONSOLE, "podSelector"),
    ],
)
def test_a_bad_principal_selector_is_invalid_spec_naming_the_field(
    principal: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_payment_service(refunds(**principal))
    assert refused.value.path.startswith(path) and fragment in str(refused.value)


def test_a_principal_without_selector_is_noted_per_workload_and_fails_nothing() -> None:
    world = World()
    body = world.create(refunds(selector={"app": "console"}))

    world.run(body)

    status = world.latest(body)["status"]
    (summary,) = status["workloads"]
    (note,) = summary["findings"]  # only the auditor: the console names its pods
    assert note.startswith("callers[1] support-tools/refund-auditor: L3 admits every pod of namespace")
    assert "L7 enforces the identity" in note
    assert conditions(world.latest(body))[ConditionType.LEAST_PRIVILEGE]["status"] == "True"


def test_no_findings_when_every_principal_names_its_pods() -> None:
    body = refunds(selector={"app": "console"})
    body["spec"]["workloads"][0]["callers"][1]["principal"]["selector"] = {"app": "auditor"}
    world = World()
    body = world.create(body)

    world.run(body)

    assert "findings" not in world.latest(body)["status"]["workloads"][0]


def test_the_call_graph_highlights_only_the_namespace_wide_principal() -> None:
    graph = call_graph([parse_payment_service(refunds(selector={"app": "console"}))], platform=Platform())
    highlights = {edge.source: edge.highlight for edge in graph.edges if edge.source.startswith("principal:")}
    assert highlights == {
        "principal:support-tools/refund-console": "",
        "principal:support-tools/refund-auditor": "L3 admits the whole namespace",
    }


def test_explain_places_a_principal_at_the_pods_its_selector_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = refunds(selector={"app": "console"})
    body["spec"]["workloads"][0]["callers"][1]["principal"]["selector"] = {"app": "auditor"}
    path = tmp_path / "refunds.yaml"
    path.write_text(yaml.safe_dump(body))
    argv = ["explain", "--from", "support-tools/refund-auditor", "--to", "refund-api", "--port", "8443"]
    main([*argv, "--method", "GET", "--path", "/v1/refunds/7", "-f", str(path), "-o", "json"])
    layers = {layer["layer"]: layer for layer in json.loads(capsys.readouterr().out)["layers"]}
    network = layers["network (L3/L4)"]
    assert (network["verdict"], network["decided_by"]) == (
        "allowed",
        "NetworkPolicy payments/refunds-refund-api ingress[1]",
    )


@pytest.mark.parametrize(
    ("principal", "complaint"),
    [
        (
            {"namespaceLabels": {"kubernetes.io/metadata.name": "other"}},
            "must not set kubernetes.io/metadata.name",
        ),
        ({"selector": {"-bad": "x"}}, "every key must be a label key"),
    ],
)
def test_check_refuses_a_bad_principal_selector_offline_with_admissions_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], principal: dict[str, Any], complaint: str
) -> None:
    path = tmp_path / "refunds.yaml"
    path.write_text(yaml.safe_dump(refunds(**principal)))
    assert main(["check", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{CONSOLE}" in out and complaint in out and "[admission]" in out


def test_findings_stay_within_the_crds_limit_with_break_glass_callers_on_top() -> None:
    body = refunds(selector={"app": "console"})
    callers = body["spec"]["workloads"][0]["callers"]
    callers[:] = [{"principal": {"namespace": f"team-{i}", "serviceAccount": "client"}} for i in range(32)]
    service = parse_payment_service(body)
    extra = [
        Caller(principal=Principal(namespace=f"incident-{i}", service_account="debugger")) for i in range(5)
    ]
    workload = dataclasses.replace(service.workloads[0], callers=(*service.workloads[0].callers, *extra))
    wide = dataclasses.replace(service, workloads=(workload,))

    summary = _summaries(wide, children=(), mtls=(), certificates=(), mesh=())

    (entry,) = summary["workloads"]
    assert len(entry["findings"]) == 32
    assert entry["findings"][-1] == "and 6 more"
