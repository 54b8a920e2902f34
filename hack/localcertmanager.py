"""Owns the real cert-manager controller of the local control plane: its binary, its command line and the
CA ClusterIssuer it signs with.

build_controller()            hack/build-cert-manager.sh: built once from the Go module proxy, cached
controller_argv(...)          its command line: admin kubeconfig, loopback /healthz, the controllers to run
install_ca_issuer(kubeconfig) a CA made with `cryptography`, its Secret and a ClusterIssuer, until Ready
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from localassets import HACK_DIR, READY_TIMEOUT_SECONDS, log

CONTROLLER = "cert-manager-controller"
# Where a ClusterIssuer's CA Secret lives (cert-manager's --cluster-resource-namespace).
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
CLUSTER_ISSUER = "payments-ca"  # the ClusterIssuer every example names
# What a CA issuer needs; the approver is the one a test may leave out, to deny requests itself.
CONTROLLERS = (
    "certificates-trigger",
    "certificates-key-manager",
    "certificates-request-manager",
    "certificates-readiness",
    "certificates-issuing",
    "certificates-revision-manager",
    "certificaterequests-approver",
    "certificaterequests-issuer-ca",
    "issuers",
    "clusterissuers",
)
APPROVER = "certificaterequests-approver"


def build_controller() -> Path:
    """Builds (or finds cached) payguard's cert-manager controller; returns the binary."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-cert-manager.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def controller_argv(kubeconfig: Path, port: int, *, controllers: tuple[str, ...] = CONTROLLERS) -> list[str]:
    """The command line (building the binary first, if not cached)."""
    return [
        str(build_controller()),
        f"--kubeconfig={kubeconfig}",
        f"--cluster-resource-namespace={CLUSTER_RESOURCE_NAMESPACE}",
        f"--controllers={','.join(controllers)}",
        f"--healthz-address=127.0.0.1:{port}",
        "--v=1",
    ]


def set_controllers(components_file: Path, controllers: tuple[str, ...]) -> None:
    """Changes the controllers a LocalCluster's cert-manager runs from its next start_component() on."""
    components = json.loads(components_file.read_text())
    argv = components["argv"][CONTROLLER]
    components["argv"][CONTROLLER] = [
        f"--controllers={','.join(controllers)}" if flag.startswith("--controllers=") else flag
        for flag in argv
    ]
    components_file.write_text(json.dumps(components, indent=2) + "\n")


def ca_secret(
    name: str, *, valid_for: datetime.timedelta = datetime.timedelta(days=365)
) -> dict[str, object]:
    """A kubernetes.io/tls Secret holding a fresh self-signed CA (ECDSA P-256) for a CA issuer."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"payguard local CA {name}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": CLUSTER_RESOURCE_NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert_pem).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
        },
    }


def cluster_issuer(name: str, *, secret_name: str) -> dict[str, object]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": name},
        "spec": {"ca": {"secretName": secret_name}},
    }


def install_ca_issuer(kubeconfig: Path, name: str = CLUSTER_ISSUER) -> None:
    """Creates the CA Secret (once: an existing one is kept) and the ClusterIssuer, and waits until Ready."""
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        try:
            core.create_namespace({"metadata": {"name": CLUSTER_RESOURCE_NAMESPACE}})
        except ApiException as error:
            if error.status != 409:
                raise
        try:
            core.create_namespaced_secret(CLUSTER_RESOURCE_NAMESPACE, ca_secret(f"{name}-ca"))
        except ApiException as error:
            if error.status != 409:
                raise
        issuers = dynamic.DynamicClient(api_client).resources.get(
            api_version="cert-manager.io/v1", kind="ClusterIssuer"
        )
        issuers.server_side_apply(
            body=cluster_issuer(name, secret_name=f"{name}-ca"),
            name=name,
            field_manager="payguard-hack",
            force_conflicts=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not _ready(issuers.get(name=name).to_dict()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ClusterIssuer {name} not Ready after {READY_TIMEOUT_SECONDS:g}s")
            time.sleep(0.1)
    finally:
        api_client.close()
    log(f"ClusterIssuer {name} is Ready (CA in Secret {CLUSTER_RESOURCE_NAMESPACE}/{name}-ca)")


def _ready(issuer: dict[str, object]) -> bool:
    conditions = (issuer.get("status") or {}).get("conditions") or []  # type: ignore[attr-defined]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
