"""The `payguard` command line parses what the README documents."""

from __future__ import annotations

import argparse

import pytest

from payguard.cli import build_parser, parse_selector, settings_from
from payguard.settings import LabelRequirement, Platform, RunSettings


def test_run_watches_all_namespaces_by_default() -> None:
    args = build_parser().parse_args(["run"])
    settings = RunSettings(namespaces=tuple(args.namespace))
    assert settings.clusterwide
    assert settings.namespaces == ()


def test_run_accepts_repeated_namespaces() -> None:
    args = build_parser().parse_args(["run", "--namespace", "payments", "-n", "edge"])
    settings = RunSettings(namespaces=tuple(args.namespace))
    assert not settings.clusterwide
    assert settings.namespaces == ("payments", "edge")


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])
    assert exited.value.code == 2


def test_selector_is_parsed_into_sorted_requirements_ignoring_a_trailing_comma() -> None:
    assert parse_selector("tier=cde,payguard.dev/enabled==true,canary!=yes,") == (
        LabelRequirement("canary", "yes", equals=False),
        LabelRequirement("payguard.dev/enabled", "true"),
        LabelRequirement("tier", "cde"),
    )
    assert parse_selector("") == ()


@pytest.mark.parametrize("text", ["tier", "=cde", "!=cde"])
def test_selector_term_without_key_or_operator_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_selector(text)


def test_selector_not_equals_matches_a_missing_label() -> None:
    settings = RunSettings(selector=parse_selector("tier=cde,canary!=yes"))
    assert settings.selects(namespace="payments", labels={"tier": "cde"})
    assert not settings.selects(namespace="payments", labels={"tier": "cde", "canary": "yes"})
    assert not settings.selects(namespace="payments", labels={"tier": "connected"})


def test_namespaced_operator_selects_only_its_namespaces_and_reads_the_mesh_root() -> None:
    settings = RunSettings(namespaces=("payments",), mesh_root_namespace="istio-system")
    assert settings.selects(namespace="payments", labels={})
    assert not settings.selects(namespace="istio-system", labels={})
    assert settings.watched_namespaces == ("payments", "istio-system")
    assert RunSettings().watched_namespaces == ()


def test_every_run_flag_reaches_the_settings() -> None:
    args = build_parser().parse_args(
        ["run", "--workers", "8", "--qps", "20", "--burst", "40", "--selector", "tier=cde", "--audit-only"]
    )
    settings = settings_from(args)
    assert (settings.workers, settings.qps, settings.burst) == (8, 20.0, 40)
    assert settings.selector == (LabelRequirement("tier", "cde"),)
    assert settings.audit_only is True


def test_mesh_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        ["run", "--mesh-root-namespace", "mesh", "--mesh-config-name", "istio-1-24"]
    )
    settings = settings_from(args)
    assert (settings.mesh_root_namespace, settings.mesh_config_name) == ("mesh", "istio-1-24")
    assert settings_from(build_parser().parse_args(["run"])).mesh_config_name == "istio"


def test_platform_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--dns-namespace",
            "openshift-dns",
            "--dns-labels",
            "dns.operator.openshift.io/daemonset-dns=default",
            "--dns-port",
            "5353",
            "--istiod-namespace",
            "mesh",
            "--istiod-labels",
            "app=istiod,istio.io/rev=canary",
            "--istiod-port",
            "15010",
        ]
    )
    assert settings_from(args).platform == Platform(
        dns_namespace="openshift-dns",
        dns_pod_labels=(("dns.operator.openshift.io/daemonset-dns", "default"),),
        dns_port=5353,
        mesh_namespace="mesh",
        mesh_pod_labels=(("app", "istiod"), ("istio.io/rev", "canary")),
        mesh_port=15010,
    )
    assert settings_from(build_parser().parse_args(["run"])).platform == Platform()


def test_platform_labels_refuse_a_not_equals_term() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--dns-labels", "k8s-app!=kube-dns"])
