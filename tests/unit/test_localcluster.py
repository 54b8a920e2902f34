"""Pure parts of the local control plane tooling: pinned versions and kubeconfig documents."""

from __future__ import annotations

import base64

from localcluster import kubeconfig_document, pinned_versions


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
