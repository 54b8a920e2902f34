"""Pure parts of the local cert-manager tooling: its command line, the controllers it runs, its CA."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

import localcertmanager
from localcertmanager import APPROVER, CONTROLLER, CONTROLLERS


def test_set_controllers_changes_only_the_controllers_flag_of_the_cert_manager_command_line(
    tmp_path: Path,
) -> None:
    components = tmp_path / "components.json"
    argv = ["/bin/cm", "--kubeconfig=k", f"--controllers={','.join(CONTROLLERS)}", "--v=1"]
    components.write_text(json.dumps({"ports": {CONTROLLER: 1}, "argv": {CONTROLLER: argv, "etcd": ["e"]}}))
    without_approver = tuple(c for c in CONTROLLERS if c != APPROVER)

    localcertmanager.set_controllers(components, without_approver)

    written = json.loads(components.read_text())
    assert written["argv"][CONTROLLER] == [
        "/bin/cm",
        "--kubeconfig=k",
        f"--controllers={','.join(without_approver)}",
        "--v=1",
    ]
    assert written["argv"]["etcd"] == ["e"]
    assert APPROVER in CONTROLLERS


def test_ca_secret_holds_a_ca_certificate_and_its_matching_key_in_the_cluster_resource_namespace() -> None:
    secret = localcertmanager.ca_secret("payments-ca-ca")

    assert secret["metadata"] == {"name": "payments-ca-ca", "namespace": "cert-manager"}
    assert secret["type"] == "kubernetes.io/tls"
    data = secret["data"]
    assert isinstance(data, dict)
    certificate = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    key = load_pem_private_key(base64.b64decode(data["tls.key"]), password=None)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert certificate.public_key() == key.public_key()


def test_cluster_issuer_is_a_ca_issuer_naming_its_secret() -> None:
    assert localcertmanager.cluster_issuer("payments-ca", secret_name="payments-ca-ca")["spec"] == {
        "ca": {"secretName": "payments-ca-ca"}
    }
