"""Platform flags: every bad value is refused before the operator starts, naming the flag and the value."""

from __future__ import annotations

import pytest

from payguard.cli import main
from payguard.platform import Destination, PlatformError, ServicePort, parse_destination, parse_ports


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--dns", "kube-system"], "argument --dns: 'kube-system' is neither NAMESPACE/KEY=VALUE"),
        (["--dns", "Kube_System/k8s-app=kube-dns"], "argument --dns: 'Kube_System' in"),
        (["--dns", "kube-system/k8s-app"], "argument --dns: 'k8s-app' is not a KEY=VALUE label"),
        (
            ["--dns", "kube-system/k8s-app!=kube-dns"],
            "argument --dns: 'k8s-app!=kube-dns' is not a KEY=VALUE label",
        ),
        (["--dns", "kube-system/a=1,a=2"], "names a label key twice"),
        (["--dns", "169.254.20.10/33"], "argument --dns: '169.254.20.10/33' is not a network"),
        (["--dns", "169.254.0.0/15"], "too broad"),
        (["--dns", "169.254.169.254"], "argument --dns: 169.254.169.254 includes a cloud instance-metadata"),
        (["--dns-port", "0"], "argument --dns-port: port 0 is out of range"),
        (["--dns-port", "53/ICMP"], "argument --dns-port: protocol 'ICMP' is not one of"),
        (["--dns-port", "dns"], "argument --dns-port: 'dns' is not PORT or PORT/PROTOCOL"),
        (["--istiod", "istio-system/istio.io/rev="], None),  # an empty label value is valid
        (["--istiod-port", "70000"], "argument --istiod-port: port 70000 is out of range"),
        (["--mesh-ca", "cert-manager/app=istio-csr"], "--mesh-ca and --mesh-ca-port go together"),
        (["--mesh-ca-port", "6443"], "--mesh-ca and --mesh-ca-port go together"),
        (["--pod-cidr", "10.244.0.1/16"], "argument --pod-cidr: '10.244.0.1/16' is not a network"),
        (["--service-cidr", "10.96.0.0"], "argument --service-cidr: '10.96.0.0' is not in CIDR notation"),
    ],
)
def test_bad_platform_value_is_refused_naming_the_flag(
    argv: list[str], named: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    if named is None:
        assert parse_destination(argv[1]).pod_labels == (("istio.io/rev", ""),)
        return
    with pytest.raises(SystemExit) as exit_:
        main(["render", "-f", "examples/minimal.yaml", *argv])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


def test_run_refuses_a_bad_platform_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--mesh-ca", "cert-manager/app=istio-csr"])
    assert "--mesh-ca and --mesh-ca-port go together" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("53", (ServicePort(53, "UDP"), ServicePort(53, "TCP"))),
        ("53/udp", (ServicePort(53, "UDP"),)),
        ("5353/TCP", (ServicePort(5353, "TCP"),)),
    ],
)
def test_a_port_without_protocol_takes_the_defaults(text: str, ports: tuple[ServicePort, ...]) -> None:
    assert parse_ports(text, default_protocols=("UDP", "TCP")) == ports


def test_a_destination_is_pods_or_an_address_never_both() -> None:
    assert parse_destination("fd00::a").cidr == "fd00::a/128"
    assert parse_destination("10.0.0.10/32").cidr == "10.0.0.10/32"
    pods = parse_destination("openshift-dns/dns.operator.openshift.io/daemonset-dns=default")
    assert (pods.namespace, pods.cidr) == ("openshift-dns", "")
    with pytest.raises(PlatformError, match="empty selector"):
        parse_destination("kube-system/,")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"namespace": "kube-system"},
        {"cidr": "169.254.20.10/32", "namespace": "kube-system", "pod_labels": (("a", "b"),)},
    ],
)
def test_a_destination_built_in_code_is_also_pods_or_an_address(fields: dict[str, object]) -> None:
    with pytest.raises(PlatformError, match="pods \\(namespace and labels\\) or an address"):
        Destination(**fields)  # type: ignore[arg-type]
