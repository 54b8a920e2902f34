"""A test stand-in that PLAYS CERT-MANAGER'S PART, only for what the real controller cannot produce on demand
(an already-expired certificate, one that expires within seconds) and for the chaos suite and benchmarks.
Everything else runs against the real cert-manager controller (hack/localcertmanager.py).

Faithful to the real objects where it plays: for every Certificate whose issuer exists and is Ready (others
stay Pending, as with cert-manager) it makes a private key and a CSR, creates CertificateRequest revision 1
(annotated with the certificate name and revision, owned by the Certificate), signs it with a test CA made
with `cryptography` with the extensions a CA issuer writes (not a CA, digitalSignature, server and client
auth), and sets the statuses the way cert-manager does (request `Approved`, `Ready=True, reason=Issued` with
`status.certificate` and `status.ca`; Certificate `Ready=True` with observedGeneration, notBefore, notAfter,
renewalTime and revision, and no `Issuing` condition). It never renews. It writes the key to the
Certificate's Secret, as cert-manager would, so tests can prove payguard never reads it. Faults (wrong
identity, weak key, long validity, expired) are injected per namespace.
"""

from __future__ import annotations

import datetime
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

import pki

UTC = datetime.UTC


@dataclass(frozen=True)
class Faults:
    """How the issuer misbehaves for one namespace (all None: it behaves)."""

    uri: str | None = None  # sign this URI SAN instead of the requested one
    rsa_bits: int | None = None  # use an RSA key of this size whatever the Certificate asks
    validity: datetime.timedelta | None = None  # sign for this long instead of spec.duration
    expired: bool = False  # a certificate whose validity ended an hour ago
    hold: bool = False  # never sign (the issuer is slow or stuck)


class FakeCertManager:
    """Polls Certificates and issues them; started and stopped by a pytest fixture."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._faults: dict[str, Faults] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-cert-manager", daemon=True)
        now = datetime.datetime.now(UTC)
        self.ca = pki.authority(
            "payguard test CA (fake cert-manager)",
            not_before=now - datetime.timedelta(hours=1),
            not_after=now + datetime.timedelta(days=30),
        )
        self.issued_pems: list[bytes] = []  # every certificate body and key issued, for leak checks
        self.errors: list[BaseException] = []

    def fault(self, namespace: str, faults: Faults) -> None:
        self._faults[namespace] = faults

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # -- issuers

    def create_cluster_issuer(
        self, name: str, *, ready: bool = True, message: str = "Signing CA verified"
    ) -> None:
        body = {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": name},
            "spec": {"ca": {"secretName": f"{name}-ca"}},
        }
        try:
            self._custom.create_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", body)
        except ApiException as error:
            if error.status != 409:
                raise
        self.set_cluster_issuer_ready(name, ready=ready, message=message)

    def set_cluster_issuer_ready(self, name: str, *, ready: bool, message: str) -> None:
        status = {
            "conditions": [
                _condition("Ready", ready, "KeyPairVerified" if ready else "ErrGetKeyPair", message)
            ]
        }
        self._custom.patch_cluster_custom_object_status(
            "cert-manager.io", "v1", "clusterissuers", name, {"status": status}
        )

    # -- the loop

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                listed = self._custom.list_cluster_custom_object("cert-manager.io", "v1", "certificates")
                for certificate in listed["items"]:
                    if not (certificate.get("status") or {}).get("revision"):
                        self._issue(certificate)
            except ApiException as error:
                if error.status not in (404, 409, 403):  # raced a namespace deletion
                    self.errors.append(error)
            except Exception as error:
                self.errors.append(error)

    def _issue(self, certificate: dict[str, Any]) -> None:
        metadata, spec = certificate["metadata"], certificate["spec"]
        namespace, name = metadata["namespace"], metadata["name"]
        faults = self._faults.get(namespace, Faults())
        if faults.hold or not self._issuer_ready(spec["issuerRef"], namespace):
            return
        key = _private_key(spec.get("privateKey") or {}, faults)
        uris = [faults.uri] if faults.uri else spec.get("uris", [])
        csr = pki.signing_request(key, uris=uris)
        revision = 1
        request_name = f"{name}-{revision}"
        request = {
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": request_name,
                "namespace": namespace,
                "annotations": {
                    "cert-manager.io/certificate-name": name,
                    "cert-manager.io/certificate-revision": str(revision),
                    "cert-manager.io/private-key-secret-name": f"{name}-{revision}-key",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "cert-manager.io/v1",
                        "kind": "Certificate",
                        "name": name,
                        "uid": metadata["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "request": pki.b64(pki.pem(csr)),
                "issuerRef": spec["issuerRef"],
                "duration": spec.get("duration", "2160h0m0s"),
                "usages": spec.get("usages", []),
            },
        }
        try:
            self._custom.create_namespaced_custom_object(
                "cert-manager.io", "v1", namespace, "certificaterequests", request
            )
        except ApiException as error:
            if error.status != 409:
                raise
        signed = self._sign(csr, duration=_parse_duration(spec.get("duration", "2160h0m0s")), faults=faults)
        pem = pki.pem(signed)
        key_pem = pki.key_pem(key)
        self.issued_pems += [pem, key_pem]
        self._write_secret(namespace, spec["secretName"], pem=pem, key_pem=key_pem)
        self._custom.patch_namespaced_custom_object_status(
            "cert-manager.io",
            "v1",
            namespace,
            "certificaterequests",
            request_name,
            {
                "status": {
                    "certificate": pki.b64(pem),
                    "ca": pki.b64(pki.pem(self.ca.certificate)),
                    "conditions": [
                        _condition(
                            "Approved",
                            True,
                            "cert-manager.io",
                            "Certificate request has been approved by cert-manager.io",
                        ),
                        _condition("Ready", True, "Issued", "Certificate fetched from issuer successfully"),
                    ],
                }
            },
        )
        renew_before = (
            _parse_duration(spec.get("renewBefore", "0s"))
            or (signed.not_valid_after_utc - signed.not_valid_before_utc) / 3
        )
        self._custom.patch_namespaced_custom_object_status(
            "cert-manager.io",
            "v1",
            namespace,
            "certificates",
            name,
            {
                "status": {
                    "conditions": [
                        _condition("Ready", True, "Ready", "Certificate is up to date and has not expired")
                        | {"observedGeneration": metadata.get("generation", 1)}
                    ],
                    "notBefore": _text(signed.not_valid_before_utc),
                    "notAfter": _text(signed.not_valid_after_utc),
                    "renewalTime": _text(signed.not_valid_after_utc - renew_before),
                    "revision": revision,
                }
            },
        )

    def _issuer_ready(self, reference: dict[str, Any], namespace: str) -> bool:
        try:
            if reference.get("kind") == "ClusterIssuer":
                issuer = self._custom.get_cluster_custom_object(
                    "cert-manager.io", "v1", "clusterissuers", reference["name"]
                )
            else:
                issuer = self._custom.get_namespaced_custom_object(
                    "cert-manager.io", "v1", namespace, "issuers", reference["name"]
                )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        conditions = (issuer.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _sign(
        self, csr: x509.CertificateSigningRequest, *, duration: datetime.timedelta, faults: Faults
    ) -> x509.Certificate:
        now = datetime.datetime.now(UTC).replace(microsecond=0)
        not_before, not_after = now, now + (faults.validity or duration)
        if faults.expired:
            not_before, not_after = now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1)
        return self.ca.sign_request(csr, not_before=not_before, not_after=not_after)

    def _write_secret(self, namespace: str, name: str, *, pem: bytes, key_pem: bytes) -> None:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/tls",
            data={"tls.crt": pki.b64(pem), "tls.key": pki.b64(key_pem)},
        )
        try:
            self._core.create_namespaced_secret(namespace, secret)
        except ApiException as error:
            if error.status != 409:
                raise


def _private_key(spec: dict[str, Any], faults: Faults) -> pki.PrivateKey:
    if faults.rsa_bits:
        return pki.private_key("RSA", faults.rsa_bits)
    return pki.private_key(spec.get("algorithm", "RSA"), spec.get("size"))


def _condition(kind: str, ready: bool, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ready else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _now_text(),
    }


def _parse_duration(text: str) -> datetime.timedelta:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match:
        raise ValueError(text)
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _text(value: datetime.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_text() -> str:
    return _text(datetime.datetime.now(UTC))


def main() -> None:
    """The benchmarks, whose control plane runs no cert-manager: play its part until killed."""
    fake = FakeCertManager(config.new_client_from_config(config_file=sys.argv[1]))
    fake.create_cluster_issuer(sys.argv[2])
    fake.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
