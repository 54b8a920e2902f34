"""Every example becomes Ready with the real cert-manager controller (audit-mode stays Ready=False with reason
AuditMode, by design, with its certificates issued): its certificates are issued by the ClusterIssuer
payments-ca of the local control plane, or by the namespaced Issuer the example ships under
examples/issuers/ (an intermediate CA that cert-manager issues from payments-ca)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_reconcile import condition, custom

from kube import TestCluster
from operator_harness import eventually

pytestmark = pytest.mark.usefixtures("payguard_operator", "cert_manager")

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
ISSUERS = {"custom-trust-domain": EXAMPLES_DIR / "issuers" / "tokenization-ca.yaml"}
READY = {"audit-mode": ("False", "AuditMode")}  # Audit writes nothing that blocks traffic: never Ready


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_every_example_is_issued_by_the_real_controller_and_becomes_ready(
    cluster: TestCluster, namespace: str, example: Path
) -> None:
    issuers = ISSUERS.get(example.stem)
    if issuers is not None:
        for document in yaml.safe_load_all(issuers.read_text()):
            document["metadata"]["namespace"] = namespace
            cluster.apply(document)
    body = yaml.safe_load(example.read_text())
    body["metadata"]["namespace"] = namespace
    name = body["metadata"]["name"]
    cluster.enrol(body)  # Ready also needs its pods in the mesh (tests/mesh_pods.py)

    cluster.apply(body)

    status, reason = READY.get(example.stem, ("True", "Reconciled"))

    def ready() -> dict[str, Any] | None:
        live: dict[str, Any] = custom(cluster).get_namespaced_custom_object(
            "payguard.dev", "v1alpha1", namespace, "paymentservices", name
        )
        found, certificates = condition(live, "Ready"), condition(live, "CertificatesReady")
        issued = certificates.get("status") == "True"
        return live if issued and (found.get("status"), found.get("reason")) == (status, reason) else None

    live = eventually(ready, timeout=60, what=f"{example.name} Ready={status} ({reason})")
    certificates = condition(live, "CertificatesReady")
    assert (certificates["status"], certificates["reason"]) == ("True", "Issued")
    assert all(w["certificate"]["state"] == "Issued" for w in live["status"]["workloads"])
