"""The `payguard` command line parses what the README documents."""

from __future__ import annotations

import argparse
import ipaddress

import pytest

from payguard.cli import build_parser, parse_selector, settings_from
from payguard.platform import KUBE_DNS, Destination, ServicePort
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
            "--dns",
            "openshift-dns/dns.operator.openshift.io/daemonset-dns=default",
            "--dns-port",
            "5353",
            "--istiod",
            "mesh/app=istiod,istio.io/rev=canary",
            "--istiod-port",
            "15010",
            "--istiod-port",
            "15012",
            "--mesh-ca",
            "cert-manager/app=cert-manager-istio-csr",
            "--mesh-ca-port",
            "6443",
            "--pod-cidr",
            "10.244.0.0/16",
            "--service-cidr",
            "10.96.0.0/12",
            "--service-cidr",
            "fd00:96::/108",
        ]
    )
    assert settings_from(args).platform == Platform(
        dns=(Destination("openshift-dns", (("dns.operator.openshift.io/daemonset-dns", "default"),)),),
        dns_ports=(ServicePort(5353, "UDP"), ServicePort(5353, "TCP")),
        mesh=(Destination("mesh", (("app", "istiod"), ("istio.io/rev", "canary"))),),
        mesh_ports=(ServicePort(15010), ServicePort(15012)),
        mesh_ca=(Destination("cert-manager", (("app", "cert-manager-istio-csr"),)),),
        mesh_ca_ports=(ServicePort(6443),),
        pod_cidrs=(ipaddress.ip_network("10.244.0.0/16"),),
        service_cidrs=(ipaddress.ip_network("10.96.0.0/12"), ipaddress.ip_network("fd00:96::/108")),
    )
    assert settings_from(build_parser().parse_args(["run"])).platform == Platform()


def test_node_local_dns_is_an_address_next_to_kube_dns() -> None:
    args = build_parser().parse_args(
        ["run", "--dns", "169.254.20.10", "--dns", "kube-system/k8s-app=kube-dns", "--dns-port", "53"]
    )
    platform = settings_from(args).platform
    assert platform.dns == (Destination(cidr="169.254.20.10/32"), KUBE_DNS)
    assert platform.dns_ports == (ServicePort(53, "UDP"), ServicePort(53, "TCP"))
