"""The platforms the golden and truth-table tests render for, written as the flags README.md shows, and
read by payguard's own parser (so the examples in the README are the ones tested)."""

from __future__ import annotations

from payguard.cli import build_parser, settings_from
from payguard.platform import Platform

VARIANTS: dict[str, list[str]] = {
    "kube-dns": [],
    # NodeLocal DNSCache: pods ask the node-local address; kube-dns stays reachable as its upstream.
    "nodelocal-dns": ["--dns", "169.254.20.10", "--dns", "kube-system/k8s-app=kube-dns"],
    "openshift": [
        *("--dns", "openshift-dns/dns.operator.openshift.io/daemonset-dns=default"),
        *("--dns-port", "5353"),
    ],
    "revisioned-istiod": ["--istiod", "istio-system/app=istiod,istio.io/rev=1-24"],
    "istio-csr": [
        *("--istiod", "istio-system/app=istiod,istio.io/rev=1-24"),
        *("--mesh-ca", "cert-manager/app=cert-manager-istio-csr", "--mesh-ca-port", "6443"),
    ],
}


def platform(variant: str) -> Platform:
    return settings_from(build_parser().parse_args(["run", *VARIANTS[variant]])).platform
