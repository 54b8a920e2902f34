"""The Helm chart: lints, carries the same CRD and RBAC as the repository, and keeps the operator's pod at
Pod Security `restricted` with no wildcard, Secret or escalation permission, whatever the values say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_tools import ALL_OPTIONS, CHART, KUBE_VERSION, REPO, only, render, run_helm
from payguard.cli import build_parser, settings_from
from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service

MINIMAL = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())

VALUES = [None, ALL_OPTIONS]
VALUE_IDS = ["default-values", "all-options"]
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_helm_lint_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART), *KUBE_VERSION] + (["--values", str(values)] if values else [])
    result = run_helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crds_are_the_repository_crds() -> None:
    # `make chart-crds` copies them; this keeps the two from drifting apart.
    names = sorted(path.name for path in (REPO / "crds").glob("*.yaml"))
    assert names == ["paymentservice.yaml", "paymentserviceexception.yaml"]
    assert sorted(path.name for path in (CHART / "crds").glob("*.yaml")) == names
    for name in names:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text()


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_cluster_role_is_the_rules_file_and_least_privilege(values: Path | None) -> None:
    role = only(render(values), "ClusterRole")
    assert role["rules"] == yaml.safe_load((CHART / "files" / "clusterrole-rules.yaml").read_text())
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"], rule


@pytest.mark.parametrize(
    ("values", "namespace", "name"),
    [(None, "istio-system", "istio"), (ALL_OPTIONS, "mesh-root", "istio-canary")],
)
def test_the_mesh_config_is_readable_by_name_in_the_mesh_root_only(
    values: Path | None, namespace: str, name: str
) -> None:
    [role] = [
        d for d in render(values) if d["kind"] == "Role" and d["metadata"]["name"].endswith("-mesh-config")
    ]
    assert role["metadata"]["namespace"] == namespace
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [name],
            "verbs": ["get", "list", "watch"],
        }
    ]
    [binding] = [
        d
        for d in render(values)
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_operator_pod_keeps_every_restricted_setting(values: Path | None) -> None:
    pod = only(render(values), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    for key, value in RESTRICTED_CONTAINER.items():
        assert container["securityContext"].get(key) == value, key
    assert not container["securityContext"].get("capabilities", {}).get("add")
    assert "hostNetwork" not in pod and "hostPID" not in pod
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_two_replicas_share_leases_and_roll_one_pod_at_a_time() -> None:
    documents = render()
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1},
    }
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {
        "--leader-elect",
        "--identity=$(POD_NAME)",
        "--lease-namespace=$(POD_NAMESPACE)",
        "--lease-prefix=payguard",
    } <= set(container["args"])
    assert {"--shards=1", "--lease-duration=15", "--renew-deadline=10", "--retry-period=2"} <= set(
        container["args"]
    )
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    [spread] = pod["topologySpreadConstraints"]
    assert (
        spread["topologyKey"] == "kubernetes.io/hostname"
        and spread["labelSelector"]["matchLabels"] == selector
    )
    budget = only(documents, "PodDisruptionBudget")["spec"]
    assert budget == {"minAvailable": 1, "selector": {"matchLabels": selector}}


def test_leases_are_granted_in_the_release_namespace_only_and_least_privilege() -> None:
    documents = render(namespace="ops")
    [role] = [d for d in documents if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leases")]
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["list", "create", "update", "delete"],
        }
    ]
    [binding] = [
        d
        for d in documents
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == "ops"
    assert binding["subjects"][0]["namespace"] == "ops"


def test_without_leader_election_one_replica_is_replaced_not_rolled(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("replicas: 1\nleaderElection: {enabled: false}\n")
    documents = render(values)
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(
        a.startswith("--leader-elect")
        for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert "PodDisruptionBudget" not in {
        d["kind"] for d in documents
    }  # one replica: a budget would block drains


def test_every_option_reaches_the_operator_arguments() -> None:
    args = only(render(ALL_OPTIONS), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "run",
        "--workers=8",
        "--qps=20",
        "--burst=40",
        "--resync-seconds=120",
        "--fight-window-seconds=60",
        "--mesh-root-namespace=mesh-root",
        "--mesh-config-name=istio-canary",
        "--log-level=DEBUG",
        "--log-format=json",
        "--metrics-port=9191",
        "--liveness=http://0.0.0.0:8181/healthz",
        "--selector=payguard.dev/enabled=true,tier=cde,",
        "--audit-only",
        "--dns=169.254.20.10",
        "--dns=dns-system/app=coredns",
        "--dns-port=53",
        "--dns-port=5353/UDP",
        "--istiod=istio-canary/app=istiod,istio.io/rev=1-24",
        "--istiod-port=15012",
        "--istiod-port=15010/TCP",
        "--mesh-ca=cert-manager/app.kubernetes.io/name=cert-manager-istio-csr",
        "--mesh-ca-port=6443",
        "--pod-cidr=10.244.0.0/16",
        "--service-cidr=10.96.0.0/12",
        "--service-cidr=fd00:10:96::/108",
        "--namespace=payments",
        "--namespace=edge",
        "--leader-elect",
        "--identity=$(POD_NAME)",
        "--lease-namespace=$(POD_NAMESPACE)",
        "--lease-prefix=payguard",
        "--shards=8",
        "--lease-duration=20",
        "--renew-deadline=12",
        "--retry-period=3",
    ]
    pod = only(render(ALL_OPTIONS), "Deployment")["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in pod
    assert "PodDisruptionBudget" not in {d["kind"] for d in render(ALL_OPTIONS)}


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_the_platform_values_become_the_operator_platform(values: Path | None) -> None:
    """The chart's arguments, read by payguard's own parser, move every workload's essential egress."""
    args = only(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    platform = settings_from(build_parser().parse_args(args)).platform
    egress = [
        rule
        for child in render_children(parse_payment_service(MINIMAL), platform=platform)
        if child["kind"] == "NetworkPolicy"
        for rule in child["spec"]["egress"]
    ]
    if values is None:
        assert platform == Platform()
        return
    assert egress == [
        {
            "to": [
                {"ipBlock": {"cidr": "169.254.20.10/32"}},
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns-system"}},
                    "podSelector": {"matchLabels": {"app": "coredns"}},
                },
            ],
            "ports": [
                {"port": 53, "protocol": "UDP"},
                {"port": 53, "protocol": "TCP"},
                {"port": 5353, "protocol": "UDP"},
            ],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-canary"}},
                    "podSelector": {"matchLabels": {"app": "istiod", "istio.io/rev": "1-24"}},
                }
            ],
            "ports": [{"port": 15012, "protocol": "TCP"}, {"port": 15010, "protocol": "TCP"}],
        },
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cert-manager"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cert-manager-istio-csr"}},
                }
            ],
            "ports": [{"port": 6443, "protocol": "TCP"}],
        },
    ]
    assert [str(n) for n in platform.pod_cidrs] == ["10.244.0.0/16"]
    assert [str(n) for n in platform.service_cidrs] == ["10.96.0.0/12", "fd00:10:96::/108"]


def test_operator_network_policy_allows_only_dns_api_server_and_scrapers() -> None:
    policy = only(render(ALL_OPTIONS), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}],
            "ports": [{"port": 9191, "protocol": "TCP"}],
        }
    ]
    dns, api_server = policy["egress"]
    # The operator's own DNS egress is operator.platform.dns, the same as every workload's.
    assert dns == {
        "to": [
            {"ipBlock": {"cidr": "169.254.20.10/32"}},
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns-system"}},
                "podSelector": {"matchLabels": {"app": "coredns"}},
            },
        ],
        "ports": [
            {"port": 53, "protocol": "UDP"},
            {"port": 53, "protocol": "TCP"},
            {"port": 5353, "protocol": "UDP"},
        ],
    }
    assert api_server == {
        "to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}, {"ipBlock": {"cidr": "172.18.0.2/32"}}],
        "ports": [{"port": 6443, "protocol": "TCP"}],
    }


def test_monitoring_objects_are_optional() -> None:
    kinds = {doc["kind"] for doc in render()}
    assert "ServiceMonitor" not in kinds and "PrometheusRule" not in kinds
    kinds = {doc["kind"] for doc in render(ALL_OPTIONS)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds


ADMISSION_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def admission_objects(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {d["metadata"]["name"]: d["kind"] for d in documents if d["kind"] in ADMISSION_KINDS}


def test_admission_policies_are_on_by_default_each_with_its_binding() -> None:
    documents = render()
    policies = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = {
        d["spec"]["policyName"]: d for d in documents if d["kind"] == "ValidatingAdmissionPolicyBinding"
    }
    assert sorted(policies) == [
        "payguard-deletion-guard",
        "payguard-exception-requester",
        "payguard-exception-workload",
    ]
    assert sorted(bindings) == sorted(policies)
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings.values())
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in policies.values())
    guard = policies["payguard-deletion-guard"]["spec"]
    assert guard["matchConstraints"]["resourceRules"][0]["operations"] == ["DELETE"]
    assert "payguard.dev/allow-delete" in guard["validations"][0]["expression"]


def test_admission_policies_are_switched_off_by_their_values() -> None:
    assert admission_objects(render(ALL_OPTIONS)) == {}


@pytest.mark.parametrize(
    ("switch", "remaining"),
    [
        ("deletionGuard", {"payguard-exception-requester", "payguard-exception-workload"}),
        ("exceptions", {"payguard-deletion-guard"}),
    ],
)
def test_each_admission_policy_switch_turns_off_only_its_own(
    switch: str, remaining: set[str], tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(f"admissionPolicies: {{{switch}: {{enabled: false}}}}\n")
    assert set(admission_objects(render(values))) == remaining


def alert_names(documents: list[dict[str, Any]]) -> set[str]:
    rule = only(documents, "PrometheusRule")
    return {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}


def test_alerts_cover_drift_mtls_certificates_errors_and_operator_down() -> None:
    assert {
        "PayguardDriftNotRepaired",
        "PayguardMTLSNotStrict",
        "PayguardCertificateExpiringSoon",
        "PayguardCertificateExpired",
        "PayguardReconcileErrors",
        "PayguardOperatorDown",
        "PayguardBreakGlassExceptionActive",
    } <= alert_names(render(ALL_OPTIONS))
