"""Pure parts of the local control plane tooling: pinned versions, kubeconfig documents and etcd keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import localcluster
from localcluster import LocalCluster, kubeconfig_document, pinned_versions
from localetcd import object_key


def test_every_component_has_a_pinned_version() -> None:
    versions = pinned_versions()
    for key in ("KUBERNETES_VERSION", "ETCD_VERSION", "ISTIO_API_VERSION", "CERT_MANAGER_VERSION"):
        assert versions[key].startswith("v"), key
    minor = int(versions["KUBERNETES_VERSION"].split(".")[1])
    assert minor >= 35


def test_kubeconfig_document_points_the_current_context_at_the_server() -> None:
    document = kubeconfig_document(server="https://127.0.0.1:6443", ca_pem=b"CA", user={"token": "t"})
    context = next(c for c in document["contexts"] if c["name"] == document["current-context"])  # type: ignore[attr-defined]
    cluster = next(c for c in document["clusters"] if c["name"] == context["context"]["cluster"])  # type: ignore[attr-defined]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == b"CA"
    assert document["users"] == [{"name": "user", "user": {"token": "t"}}]


@pytest.mark.parametrize(
    ("group", "plural", "namespace", "name", "key"),
    [
        ("", "configmaps", "shop", "cm", "/registry/configmaps/shop/cm"),
        ("", "namespaces", None, "shop", "/registry/namespaces/shop"),
        ("", "services", "shop", "orders", "/registry/services/specs/shop/orders"),
        ("networking.k8s.io", "networkpolicies", "shop", "deny", "/registry/networkpolicies/shop/deny"),
        ("rbac.authorization.k8s.io", "clusterroles", None, "admin", "/registry/clusterroles/admin"),
        (
            "security.istio.io",
            "authorizationpolicies",
            "shop",
            "orders",
            "/registry/security.istio.io/authorizationpolicies/shop/orders",
        ),
        (
            "payguard.dev",
            "paymentservices",
            "shop",
            "orders",
            "/registry/payguard.dev/paymentservices/shop/orders",
        ),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "paymentservices.payguard.dev",
            "/registry/apiextensions.k8s.io/customresourcedefinitions/paymentservices.payguard.dev",
        ),
    ],
)
def test_object_key_follows_the_api_servers_storage_layout(
    group: str, plural: str, namespace: str | None, name: str, key: str
) -> None:
    assert object_key(group, plural, namespace, name) == key
    assert LocalCluster.object_key(group, plural, namespace, name) == key


def test_faults_name_a_known_component_and_need_a_cluster_that_was_up(tmp_path: Path) -> None:
    local = LocalCluster(state_dir=tmp_path)
    with pytest.raises(ValueError, match="kube-scheduler"):
        local.stop_component("kube-scheduler")
    with pytest.raises(RuntimeError, match="run up"):
        local.start_component("kube-apiserver")
    with pytest.raises(RuntimeError, match="run up"):
        local.etcd_revision()


def test_the_split_modules_keep_the_old_imports_working() -> None:
    for name in (
        "LocalCluster",
        "free_port",
        "kubeconfig_document",
        "pinned_versions",
        "HACK_DIR",
        "install_crds",
    ):
        assert hasattr(localcluster, name), name
