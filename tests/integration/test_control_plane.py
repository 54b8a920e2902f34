"""The local control plane is a real Kubernetes: RBAC, garbage collection and the real Istio and
cert-manager schemas behave as they do on a production cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import TestCluster
from localcluster import pinned_versions


def wait_until(predicate: Any, *, timeout: float = 60.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_api_server_reports_the_pinned_kubernetes_version(cluster: TestCluster) -> None:
    version = client.VersionApi(cluster.api_client).get_code()
    if not cluster.is_local:
        pytest.skip("PAYGUARD_TEST_KUBECONFIG points at an external cluster with its own version")
    assert version.git_version == pinned_versions()["KUBERNETES_VERSION"]


def test_service_account_without_bindings_is_forbidden_to_list_payment_services(
    cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    kubeconfig = cluster.kubeconfig_for_service_account(
        namespace=namespace, service_account="reader", directory=tmp_path
    )

    with cluster.client_for(kubeconfig) as as_reader:
        with pytest.raises(ApiException) as forbidden:
            client.CustomObjectsApi(as_reader).list_namespaced_custom_object(
                "payguard.dev", "v1alpha1", namespace, "paymentservices"
            )
        assert forbidden.value.status == 403

    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-paymentservices"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["payguard.dev"], resources=["paymentservices"], verbs=["list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-paymentservices"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-paymentservices"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    with cluster.client_for(kubeconfig) as as_reader:
        listed = client.CustomObjectsApi(as_reader).list_namespaced_custom_object(
            "payguard.dev", "v1alpha1", namespace, "paymentservices"
        )
    assert listed["items"] == []


def test_deleting_an_owner_garbage_collects_its_dependents(cluster: TestCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, controller=True
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])),
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    assert wait_until(dependent_is_gone), (
        "kube-controller-manager's garbage collector did not remove the dependent"
    )


def test_new_namespace_gets_a_default_service_account(cluster: TestCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)

    def has_default() -> bool:
        return any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items
        )

    assert wait_until(has_default), "the service account controller did not create the default ServiceAccount"


def peer_authentication(name: str, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "orders"}}, "mtls": {"mode": mode}},
    }


def test_istio_schema_rejects_an_unknown_mtls_mode(cluster: TestCluster, namespace: str) -> None:
    with pytest.raises(ApiException) as rejected:
        cluster.apply(peer_authentication("bogus", "BOGUS"), namespace=namespace)
    assert rejected.value.status == 422
    assert "spec.mtls.mode" in rejected.value.body


def test_istio_schema_accepts_strict_mtls(cluster: TestCluster, namespace: str) -> None:
    live = cluster.apply(peer_authentication("strict", "STRICT"), namespace=namespace)
    assert live.spec.mtls.mode == "STRICT"


def certificate(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "orders"},
        "spec": spec,
    }


def test_cert_manager_schema_rejects_a_certificate_without_secret_name(
    cluster: TestCluster, namespace: str
) -> None:
    spec = {
        "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"},
        "uris": ["spiffe://cluster.local/ns/x/sa/y"],
    }
    with pytest.raises(ApiException) as rejected:
        cluster.apply(certificate(spec), namespace=namespace)
    assert rejected.value.status == 422
    assert "spec.secretName" in rejected.value.body


def test_cert_manager_schema_accepts_a_complete_certificate(cluster: TestCluster, namespace: str) -> None:
    spec = {
        "secretName": "orders-tls",
        "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"},
        "uris": ["spiffe://cluster.local/ns/x/sa/y"],
        "duration": "24h",
    }
    live = cluster.apply(certificate(spec), namespace=namespace)
    assert live.spec.secretName == "orders-tls"
