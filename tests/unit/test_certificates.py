"""Certificate posture: judged from public API data only, with real certificates signed by a throwaway CA."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import pki
from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION
from payguard.model import CertificatePolicy, IssuerKind, IssuerRef, KeyAlgorithm, PrivateKey
from payguard.posture.certificates import (
    RENEWAL_GRACE,
    SEVERITY,
    VALIDITY_SLACK,
    CertificatePosture,
    CertificateReason,
    IssuedCertificate,
    assess_certificate,
    issuer_key,
    next_change,
    parse_issued_certificate,
)
from payguard.posture.requests import RequestPair, pair_requests

WORKLOAD = "order-service"
CERTIFICATE = "checkout-order-service"
SECRET = "checkout-order-service-tls"
REQUEST = "checkout-order-service-1"
EXPECTED_URI = "spiffe://cluster.local/ns/payments/sa/order-service"
INTRUDER_URI = "spiffe://cluster.local/ns/payments/sa/intruder"

# Every certificate is issued at T0 for 24h unless a test says otherwise; renewal is due at T0 + 16h.
T0 = datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
RENEW_BEFORE = timedelta(hours=8)
NOW = T0 + timedelta(hours=1)

POLICY = CertificatePolicy(
    issuer_ref=IssuerRef(name="payments-ca", kind=IssuerKind.CLUSTER_ISSUER),
    duration=DAY,
    renew_before=RENEW_BEFORE,
    private_key=PrivateKey(algorithm=KeyAlgorithm.ECDSA, size=256),
)
RSA_3072_POLICY = CertificatePolicy(
    issuer_ref=POLICY.issuer_ref,
    duration=DAY,
    renew_before=RENEW_BEFORE,
    private_key=PrivateKey(algorithm=KeyAlgorithm.RSA, size=3072),
)
ECDSA_384_POLICY = CertificatePolicy(
    issuer_ref=POLICY.issuer_ref,
    duration=DAY,
    renew_before=RENEW_BEFORE,
    private_key=PrivateKey(algorithm=KeyAlgorithm.ECDSA, size=384),
)
ED25519_POLICY = CertificatePolicy(
    issuer_ref=POLICY.issuer_ref,
    duration=DAY,
    renew_before=RENEW_BEFORE,
    private_key=PrivateKey(algorithm=KeyAlgorithm.ED25519, size=None),
)


# --- a throwaway CA and its certificates -----------------------------------------------------------------


# The test keys by kind: (algorithm, size) as a Certificate's privateKey names them.
KEY_KINDS = {
    "p256": ("ECDSA", 256),
    "p384": ("ECDSA", 384),
    "rsa2048": ("RSA", 2048),
    "rsa3072": ("RSA", 3072),
    "ed25519": ("Ed25519", None),
}


@functools.cache
def key(kind: str) -> pki.PrivateKey:
    """One key per kind for the whole module: RSA generation is slow."""
    algorithm, size = KEY_KINDS[kind]
    return pki.private_key(algorithm, size)


@functools.cache
def ca() -> pki.Authority:
    return pki.authority(
        "payguard unit-test CA",
        not_before=T0 - timedelta(days=30),
        not_after=T0 + timedelta(days=365),
        serial=1,
    )


def sign(
    *,
    key_kind: str = "p256",
    uris: tuple[str, ...] = (EXPECTED_URI,),
    dns_names: tuple[str, ...] = (),
    not_before: datetime = T0,
    validity: timedelta = DAY,
    serial: int = 0x1F2E3D4C5B6A,
    **extensions: Any,
) -> x509.Certificate:
    """A workload certificate signed by the test CA, as a CA issuer would sign it."""
    return ca().issue(
        key(key_kind).public_key(),
        uris=uris,
        dns_names=dns_names,
        not_before=not_before,
        not_after=not_before + validity,
        serial=serial,
        **extensions,
    )


def encode(certificate: x509.Certificate, *, chain: bool = False) -> str:
    """`status.certificate` as cert-manager writes it: base64 of the PEM (leaf first, then the chain)."""
    return pki.b64(pki.pem(certificate, ca().certificate) if chain else pki.pem(certificate))


def certificate_request(
    encoded: str | None,
    *,
    name: str = REQUEST,
    certificate_name: str = CERTIFICATE,
    revision: str | None = "1",
    created: str = "2025-03-01T00:00:00Z",
) -> dict[str, Any]:
    annotations = {CERTIFICATE_NAME_ANNOTATION: certificate_name}
    if revision is not None:
        annotations[CERTIFICATE_REVISION_ANNOTATION] = revision
    request: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {
            "name": name,
            "namespace": "payments",
            "annotations": annotations,
            "creationTimestamp": created,
        },
    }
    if encoded is not None:
        request["status"] = {
            "certificate": encoded,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}],
        }
    return request


def issuer(*, ready: bool = True, message: str = "Signing CA verified") -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "payments-ca"},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KeyPairVerified" if ready else "ErrGetKeyPair",
                    "message": message,
                }
            ]
        },
    }


def certificate_resource(
    *,
    renewal_time: str | None = None,
    not_after: str = "2025-03-02T00:00:00Z",
    revision: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions or []}
    if renewal_time is not None:
        status |= {"renewalTime": renewal_time, "notAfter": not_after}
    if revision is not None:
        status["revision"] = revision
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": CERTIFICATE, "namespace": "payments"},
        "status": status,
    }


_DEFAULT_REQUEST: Mapping[str, Any] = {}


def assess(
    signed: x509.Certificate | None = None,
    *,
    now: datetime = NOW,
    policy: CertificatePolicy = POLICY,
    request: Mapping[str, Any] | None = _DEFAULT_REQUEST,
    in_flight: Mapping[str, Any] | None = None,
    certificate: Mapping[str, Any] | None = None,
    issuer_body: Mapping[str, Any] | None = None,
    issuer_missing: bool = False,
) -> CertificatePosture:
    """assess_certificate for order-service; by default a conforming certificate (revision 1) and a Ready
    issuer. request=None: nothing issued yet (no status.revision); in_flight: the next revision's request."""
    if request is _DEFAULT_REQUEST:
        request = certificate_request(encode(signed if signed is not None else sign()))
    requests = RequestPair(revision=1 if request is not None else None, current=request, in_flight=in_flight)
    return assess_certificate(
        workload=WORKLOAD,
        name=CERTIFICATE,
        secret_name=SECRET,
        policy=policy,
        expected_uri=EXPECTED_URI,
        certificate=certificate if certificate is not None else certificate_resource(),
        requests=requests,
        issuer=None if issuer_missing else (issuer_body if issuer_body is not None else issuer()),
        now=now,
    )


def reasons() -> list[str]:
    return [value for attribute, value in vars(CertificateReason).items() if not attribute.startswith("_")]


# --- issued ----------------------------------------------------------------------------------------------


def test_a_conforming_certificate_is_issued_and_healthy() -> None:
    posture = assess(sign())

    assert posture.reason == CertificateReason.ISSUED
    assert posture.healthy is True
    assert posture.message == "valid until 2025-03-02T00:00:00Z"
    assert (posture.workload, posture.name, posture.secret_name) == (WORKLOAD, CERTIFICATE, SECRET)
    assert posture.issued == IssuedCertificate(
        uris=(EXPECTED_URI,),
        key_algorithm="ECDSA",
        key_size=256,
        not_before=T0,
        not_after=T0 + DAY,
        serial_number="1f2e3d4c5b6a",
        is_ca=False,
        digital_signature=True,
        extended_key_usages=("serverAuth", "clientAuth"),
    )
    assert posture.renewal_time == T0 + DAY - RENEW_BEFORE


def test_the_summary_of_an_issued_certificate_lists_its_public_facts_with_a_hex_serial() -> None:
    assert assess(sign(serial=0xABCDEF0123)).summary() == {
        "name": CERTIFICATE,
        "secretName": SECRET,
        "state": "Issued",
        "notBefore": "2025-03-01T00:00:00Z",
        "notAfter": "2025-03-02T00:00:00Z",
        "renewalTime": "2025-03-01T16:00:00Z",
        "serialNumber": "abcdef0123",
        "keyAlgorithm": "ECDSA",
        "keySize": 256,
    }


def test_the_summary_never_contains_the_certificate_body_pem_or_base64() -> None:
    signed = sign(key_kind="rsa3072")
    pem = signed.public_bytes(serialization.Encoding.PEM).decode()
    encoded = encode(signed)
    posture = assess(signed, policy=RSA_3072_POLICY)

    rendered = json.dumps(posture.summary())

    assert posture.reason == CertificateReason.ISSUED
    assert "BEGIN CERTIFICATE" not in rendered
    assert encoded not in rendered
    assert encoded[:64] not in rendered
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert len(body_lines) > 10
    assert not [line for line in body_lines if line in rendered]
    der = base64.b64encode(signed.public_bytes(serialization.Encoding.DER)).decode()
    assert der[:64] not in rendered


def test_an_ed25519_certificate_under_an_ed25519_policy_is_issued_and_its_summary_has_no_key_size() -> None:
    posture = assess(sign(key_kind="ed25519"), policy=ED25519_POLICY)

    assert posture.reason == CertificateReason.ISSUED
    summary = posture.summary()
    assert summary["keyAlgorithm"] == "Ed25519"
    assert "keySize" not in summary


# --- no signed certificate yet ---------------------------------------------------------------------------


def test_no_request_with_a_ready_issuer_is_pending_and_its_summary_has_no_dates() -> None:
    posture = assess(request=None)

    assert posture.reason == CertificateReason.PENDING
    assert posture.healthy is False
    assert posture.message == "Certificate checkout-order-service has no signed certificate yet"
    assert posture.issued is None
    assert posture.renewal_time is None
    assert posture.summary() == {"name": CERTIFICATE, "secretName": SECRET, "state": "Pending"}


def test_no_request_and_no_certificate_object_at_all_is_pending() -> None:
    posture = assess_certificate(
        workload=WORKLOAD,
        name=CERTIFICATE,
        secret_name=SECRET,
        policy=POLICY,
        expected_uri=EXPECTED_URI,
        certificate=None,
        requests=pair_requests([], certificate_name=CERTIFICATE, certificate=None),
        issuer=issuer(),
        now=NOW,
    )

    assert posture.reason == CertificateReason.PENDING


def test_no_request_and_a_missing_issuer_is_issuer_not_ready_naming_the_issuer_kind_and_name() -> None:
    posture = assess(request=None, issuer_missing=True)

    assert posture.reason == CertificateReason.ISSUER_NOT_READY
    assert posture.message == "ClusterIssuer payments-ca not found"
    assert posture.healthy is False


def test_no_request_and_an_issuer_that_is_not_ready_is_issuer_not_ready_with_the_issuer_message() -> None:
    posture = assess(
        request=None, issuer_body=issuer(ready=False, message="secret payments-ca-key not found")
    )

    assert posture.reason == CertificateReason.ISSUER_NOT_READY
    assert posture.message == "ClusterIssuer payments-ca is not Ready: secret payments-ca-key not found"


def test_a_namespaced_issuer_that_is_not_ready_is_named_as_an_issuer() -> None:
    policy = CertificatePolicy(issuer_ref=IssuerRef(name="team-ca", kind=IssuerKind.ISSUER))

    posture = assess(request=None, policy=policy, issuer_body=issuer(ready=False, message="no CA"))

    assert posture.reason == CertificateReason.ISSUER_NOT_READY
    assert posture.message == "Issuer team-ca is not Ready: no CA"


def test_an_issuer_without_a_ready_condition_is_issuer_not_ready() -> None:
    posture = assess(request=None, issuer_body={"metadata": {"name": "payments-ca"}, "status": {}})

    assert posture.reason == CertificateReason.ISSUER_NOT_READY
    assert posture.message == "ClusterIssuer payments-ca reports no Ready condition"


def test_a_certificate_whose_issuing_condition_failed_and_has_no_request_is_issuance_failed() -> None:
    failed = {"type": "Issuing", "status": "False", "reason": "Failed", "message": "CSR denied by policy"}

    posture = assess(request=None, certificate=certificate_resource(conditions=[failed]))

    assert posture.reason == CertificateReason.ISSUANCE_FAILED
    assert posture.message == "issuance failed (Failed): CSR denied by policy"
    assert posture.healthy is False


def test_issuing_false_with_an_approval_policy_reason_is_a_failure_not_pending() -> None:
    # An approval policy denies: cert-manager copies the request's reason, not "Failed", into Issuing.
    denied = {
        "type": "Issuing",
        "status": "False",
        "reason": "policy.cert-manager.io",
        "message": "The CertificateRequest was denied by the approval controller: no policy matched",
    }

    posture = assess(request=None, certificate=certificate_resource(conditions=[denied]))

    assert posture.reason == CertificateReason.ISSUANCE_FAILED
    assert posture.message.startswith("issuance failed (policy.cert-manager.io): The CertificateRequest was")


def _request_with(name: str, revision: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    request = certificate_request(None, name=name, revision=revision)
    request["status"] = {"conditions": list(conditions)}
    return request


def test_a_denied_request_in_flight_is_issuance_failed_naming_the_request_the_approver_and_its_message() -> (
    None
):
    denied = _request_with(
        "checkout-order-service-1",
        "1",
        {
            "type": "Denied",
            "status": "True",
            "reason": "policy.cert-manager.io",
            "message": "no policy matched",
        },
        {"type": "Ready", "status": "False", "reason": "Denied", "message": "The request was denied"},
    )

    posture = assess(request=None, in_flight=denied)

    assert posture.reason == CertificateReason.ISSUANCE_FAILED
    assert posture.message == (
        "CertificateRequest checkout-order-service-1 was denied by policy.cert-manager.io: no policy matched"
    )


def test_an_invalid_request_in_flight_is_issuance_failed() -> None:
    invalid = _request_with(
        "checkout-order-service-1",
        "1",
        {"type": "InvalidRequest", "status": "True", "reason": "RequestParsingError", "message": "bad CSR"},
    )

    posture = assess(request=None, in_flight=invalid)

    assert posture.reason == CertificateReason.ISSUANCE_FAILED
    assert (
        posture.message
        == "CertificateRequest checkout-order-service-1 is invalid (RequestParsingError): bad CSR"
    )


def test_a_request_in_flight_that_is_only_pending_leaves_the_certificate_pending() -> None:
    waiting = _request_with(
        "checkout-order-service-1",
        "1",
        {"type": "Ready", "status": "False", "reason": "Pending", "message": "Waiting on approval"},
    )

    assert assess(request=None, in_flight=waiting).reason == CertificateReason.PENDING


def test_a_failed_renewal_beside_a_valid_current_certificate_does_not_spoil_it_before_it_is_due() -> None:
    denied = _request_with(
        "checkout-order-service-2",
        "2",
        {"type": "Denied", "status": "True", "reason": "policy", "message": "no"},
    )

    posture = assess(sign(), in_flight=denied)

    assert posture.reason == CertificateReason.ISSUED


def test_an_overdue_renewal_names_the_denied_request_in_flight() -> None:
    denied = _request_with(
        "checkout-order-service-2",
        "2",
        {"type": "Denied", "status": "True", "reason": "policy", "message": "no"},
    )

    posture = assess(sign(), in_flight=denied, now=RENEWAL + timedelta(hours=1))

    assert posture.reason == CertificateReason.RENEWAL_OVERDUE
    assert posture.message.endswith("; CertificateRequest checkout-order-service-2 was denied by policy: no")


def test_a_revision_whose_request_is_gone_is_request_missing_not_pending_and_not_issued() -> None:
    # revisionHistoryLimit 1 counts the request in flight: the current revision's request is deleted.
    waiting = _request_with("checkout-order-service-3", "3")
    requests = pair_requests(
        [waiting], certificate_name=CERTIFICATE, certificate=certificate_resource(revision=2)
    )

    posture = assess_certificate(
        workload=WORKLOAD,
        name=CERTIFICATE,
        secret_name=SECRET,
        policy=POLICY,
        expected_uri=EXPECTED_URI,
        certificate=certificate_resource(revision=2),
        requests=requests,
        issuer=issuer(),
        now=NOW,
    )

    assert posture.reason == CertificateReason.REQUEST_MISSING
    assert posture.message.startswith(
        "CertificateRequest of revision 2 of Certificate checkout-order-service no longer exists"
    )
    assert posture.healthy is False


def test_an_issuing_condition_that_is_in_progress_rather_than_failed_stays_pending() -> None:
    issuing = {"type": "Issuing", "status": "True", "reason": "Issuing", "message": "issuing"}

    posture = assess(request=None, certificate=certificate_resource(conditions=[issuing]))

    assert posture.reason == CertificateReason.PENDING


def test_without_a_request_an_issuer_that_is_not_ready_outranks_a_failed_issuance() -> None:
    failed = {"type": "Issuing", "status": "False", "reason": "Failed", "message": "CSR denied"}

    posture = assess(
        request=None,
        certificate=certificate_resource(conditions=[failed]),
        issuer_body=issuer(ready=False, message="CA expired"),
    )

    assert posture.reason == CertificateReason.ISSUER_NOT_READY
    assert posture.message == "ClusterIssuer payments-ca is not Ready: CA expired"


# --- unreadable ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param("not base64 at all!", id="not-base64"),
        pytest.param(base64.b64encode(b"hello, not a certificate").decode(), id="base64-of-text"),
        pytest.param(
            base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").decode(),
            id="pem-of-garbage",
        ),
        pytest.param("", id="empty"),
    ],
)
def test_a_request_whose_certificate_is_not_base64_pem_is_certificate_unreadable(encoded: str) -> None:
    posture = assess(request=certificate_request(encoded))

    assert posture.reason == CertificateReason.UNREADABLE
    assert posture.message == "CertificateRequest checkout-order-service-1 holds no readable PEM certificate"
    assert posture.issued is None
    assert posture.renewal_time is None
    assert posture.healthy is False


def test_a_request_without_a_status_is_certificate_unreadable() -> None:
    posture = assess(request=certificate_request(None))

    assert posture.reason == CertificateReason.UNREADABLE


def _with_unknown_key_algorithm(certificate: x509.Certificate) -> x509.Certificate:
    """The same certificate with its SPKI algorithm OID (id-ecPublicKey, 1.2.840.10045.2.1) made unknown."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")
    assert der.count(ec_public_key) == 1
    return x509.load_der_x509_certificate(der.replace(ec_public_key, bytes.fromhex("06072a8648ce3d0209")))


def test_a_certificate_with_a_key_algorithm_cryptography_cannot_load_is_reported_not_raised() -> None:
    posture = assess(_with_unknown_key_algorithm(sign()))

    assert posture.healthy is False
    assert posture.reason in {CertificateReason.UNREADABLE, CertificateReason.KEY_ALGORITHM_WEAK}


# --- identity --------------------------------------------------------------------------------------------


def test_a_wrong_uri_san_is_identity_mismatch_naming_what_was_found_and_expected() -> None:
    posture = assess(sign(uris=(INTRUDER_URI,)))

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH
    assert posture.message == f"URI SAN is {INTRUDER_URI}, expected {EXPECTED_URI}"
    assert posture.issued is not None
    assert posture.issued.uris == (INTRUDER_URI,)
    assert posture.renewal_time == T0 + DAY - RENEW_BEFORE


def test_an_extra_uri_san_beside_the_expected_one_is_identity_mismatch() -> None:
    posture = assess(sign(uris=(EXPECTED_URI, INTRUDER_URI)))

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH
    assert posture.message == f"URI SAN is {EXPECTED_URI}, {INTRUDER_URI}, expected {EXPECTED_URI}"


@pytest.mark.parametrize(
    "dns_names", [pytest.param((), id="no-san"), pytest.param(("order.payments.svc",), id="dns-only")]
)
def test_a_certificate_without_any_uri_san_is_identity_mismatch(dns_names: tuple[str, ...]) -> None:
    posture = assess(sign(uris=(), dns_names=dns_names))

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH
    assert posture.message == f"URI SAN is no URI SAN, expected {EXPECTED_URI}"


# --- key algorithm ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_kind", "policy", "message"),
    [
        pytest.param("rsa2048", POLICY, "key is RSA 2048, policy requires ECDSA 256", id="rsa2048-ecdsa256"),
        pytest.param(
            "rsa2048", RSA_3072_POLICY, "key is RSA 2048, policy requires RSA 3072", id="rsa2048-rsa3072"
        ),
        pytest.param(
            "p256", ECDSA_384_POLICY, "key is ECDSA 256, policy requires ECDSA 384", id="p256-ecdsa384"
        ),
        pytest.param("p256", ED25519_POLICY, "key is ECDSA 256, policy requires Ed25519", id="p256-ed25519"),
        pytest.param("ed25519", POLICY, "key is Ed25519, policy requires ECDSA 256", id="ed25519-ecdsa256"),
    ],
)
def test_a_key_weaker_than_or_other_than_the_policy_is_key_algorithm_weak(
    key_kind: str, policy: CertificatePolicy, message: str
) -> None:
    posture = assess(sign(key_kind=key_kind), policy=policy)

    assert posture.reason == CertificateReason.KEY_ALGORITHM_WEAK
    assert posture.message == message
    assert posture.healthy is False


@pytest.mark.parametrize(
    ("key_kind", "policy", "algorithm", "size"),
    [
        pytest.param("p384", POLICY, "ECDSA", 384, id="p384-under-ecdsa256"),
        pytest.param("p384", ECDSA_384_POLICY, "ECDSA", 384, id="p384-under-ecdsa384"),
        pytest.param("rsa3072", RSA_3072_POLICY, "RSA", 3072, id="rsa3072-under-rsa3072"),
        pytest.param("ed25519", ED25519_POLICY, "Ed25519", None, id="ed25519-under-ed25519"),
    ],
)
def test_a_key_at_least_as_strong_as_the_policy_is_issued(
    key_kind: str, policy: CertificatePolicy, algorithm: str, size: int | None
) -> None:
    posture = assess(sign(key_kind=key_kind), policy=policy)

    assert posture.reason == CertificateReason.ISSUED
    assert posture.issued is not None
    assert (posture.issued.key_algorithm, posture.issued.key_size) == (algorithm, size)


# --- duration --------------------------------------------------------------------------------------------


def test_a_validity_longer_than_duration_plus_slack_is_duration_exceeds_policy() -> None:
    posture = assess(sign(validity=timedelta(hours=30)))

    assert posture.reason == CertificateReason.DURATION_EXCEEDS_POLICY
    assert posture.message == "valid for 30h, policy allows 24h"


def test_a_validity_one_second_past_the_slack_is_duration_exceeds_policy() -> None:
    posture = assess(sign(validity=DAY + VALIDITY_SLACK + timedelta(seconds=1)))

    assert posture.reason == CertificateReason.DURATION_EXCEEDS_POLICY
    assert posture.message == "valid for 24.0836h, policy allows 24h"


@pytest.mark.parametrize(
    "validity",
    [
        pytest.param(DAY + VALIDITY_SLACK, id="exactly-duration-plus-slack"),
        pytest.param(DAY + timedelta(minutes=1), id="within-slack"),
        pytest.param(timedelta(hours=12), id="shorter-than-duration"),
    ],
)
def test_a_validity_within_the_slack_is_issued(validity: timedelta) -> None:
    assert assess(sign(validity=validity)).reason == CertificateReason.ISSUED


# --- validity window -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now", [pytest.param(T0 + DAY, id="at-not-after"), pytest.param(T0 + DAY + timedelta(days=3), id="after")]
)
def test_a_certificate_at_or_past_not_after_is_expired(now: datetime) -> None:
    posture = assess(sign(), now=now)

    assert posture.reason == CertificateReason.EXPIRED
    assert posture.message == "expired at 2025-03-02T00:00:00Z"
    assert posture.healthy is False


def test_a_certificate_one_second_before_not_after_is_not_expired() -> None:
    posture = assess(sign(), now=T0 + DAY - timedelta(seconds=1))

    assert posture.reason != CertificateReason.EXPIRED
    assert posture.reason == CertificateReason.EXPIRING_SOON


def test_a_certificate_before_its_not_before_is_not_yet_valid() -> None:
    posture = assess(sign(), now=T0 - timedelta(seconds=1))

    assert posture.reason == CertificateReason.NOT_YET_VALID
    assert posture.message == "not valid before 2025-03-01T00:00:00Z"


def test_a_certificate_exactly_at_its_not_before_is_issued() -> None:
    assert assess(sign(), now=T0).reason == CertificateReason.ISSUED


def test_a_now_in_another_time_zone_is_compared_as_the_same_instant() -> None:
    posture = assess(sign(), now=(T0 + DAY).astimezone(timezone(timedelta(hours=2))))

    assert posture.reason == CertificateReason.EXPIRED


# --- renewal ---------------------------------------------------------------------------------------------

RENEWAL = T0 + DAY - RENEW_BEFORE  # 2025-03-01T16:00:00Z


def test_one_second_before_renewal_time_plus_grace_is_still_issued() -> None:
    posture = assess(sign(), now=RENEWAL + RENEWAL_GRACE - timedelta(seconds=1))

    assert posture.reason == CertificateReason.ISSUED
    assert posture.renewal_time == RENEWAL


def test_at_renewal_time_plus_grace_with_more_than_half_renew_before_left_is_renewal_overdue() -> None:
    posture = assess(sign(), now=RENEWAL + RENEWAL_GRACE)

    assert posture.reason == CertificateReason.RENEWAL_OVERDUE
    assert posture.message == ("renewal was due at 2025-03-01T16:00:00Z; expires at 2025-03-02T00:00:00Z")
    assert posture.healthy is False
    assert posture.summary()["renewalTime"] == "2025-03-01T16:00:00Z"


def test_with_exactly_half_renew_before_left_it_is_still_renewal_overdue() -> None:
    posture = assess(sign(), now=T0 + DAY - RENEW_BEFORE / 2)

    assert posture.reason == CertificateReason.RENEWAL_OVERDUE


def test_past_renewal_with_less_than_half_renew_before_left_is_expiring_soon() -> None:
    posture = assess(sign(), now=T0 + DAY - RENEW_BEFORE / 2 + timedelta(seconds=1))

    assert posture.reason == CertificateReason.EXPIRING_SOON
    assert posture.message == ("renewal was due at 2025-03-01T16:00:00Z; expires at 2025-03-02T00:00:00Z")


def test_an_overdue_renewal_names_the_issuer_problem_when_the_issuer_is_not_ready() -> None:
    posture = assess(
        sign(),
        now=RENEWAL + timedelta(hours=1),
        issuer_body=issuer(ready=False, message="secret payments-ca-key not found"),
    )

    assert posture.reason == CertificateReason.RENEWAL_OVERDUE
    assert posture.message == (
        "renewal was due at 2025-03-01T16:00:00Z; expires at 2025-03-02T00:00:00Z; "
        "ClusterIssuer payments-ca is not Ready: secret payments-ca-key not found"
    )


def test_an_issuer_that_is_not_ready_does_not_spoil_a_certificate_that_is_not_yet_due() -> None:
    posture = assess(sign(), issuer_missing=True)

    assert posture.reason == CertificateReason.ISSUED


def test_renewal_time_is_taken_from_the_certificate_status_when_it_describes_this_certificate() -> None:
    recorded = certificate_resource(renewal_time="2025-03-01T12:00:00Z")
    now = T0 + timedelta(hours=12) + RENEWAL_GRACE

    with_status = assess(sign(), now=now, certificate=recorded)
    without_status = assess(sign(), now=now)

    assert with_status.renewal_time == T0 + timedelta(hours=12)
    assert with_status.reason == CertificateReason.RENEWAL_OVERDUE
    assert with_status.message.startswith("renewal was due at 2025-03-01T12:00:00Z;")
    assert with_status.summary()["renewalTime"] == "2025-03-01T12:00:00Z"
    assert without_status.renewal_time == RENEWAL
    assert without_status.reason == CertificateReason.ISSUED


def test_an_unparseable_renewal_time_in_the_status_falls_back_to_not_after_minus_renew_before() -> None:
    posture = assess(sign(), certificate=certificate_resource(renewal_time="soon"))

    assert posture.renewal_time == RENEWAL


def test_a_renewal_time_of_another_revision_is_ignored_for_a_certificate_with_another_not_after() -> None:
    # Just after a renewal: the new revision is stored before the status gets its notAfter and renewalTime.
    previous = certificate_resource(renewal_time="2025-02-28T16:00:00Z", not_after="2025-03-01T00:00:00Z")

    posture = assess(sign(), now=T0 + timedelta(minutes=1), certificate=previous)

    assert posture.renewal_time == RENEWAL
    assert posture.reason == CertificateReason.ISSUED


# --- extensions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ({"is_ca": True}, "certificate is a CA certificate"),
        ({"digital_signature": False}, "certificate lacks key usage digitalSignature"),
        (
            {"extended_usages": (pki.WORKLOAD_USAGES[0],)},
            "certificate lacks extended key usage clientAuth",
        ),
        ({"extended_usages": ()}, "certificate lacks extended key usage serverAuth and clientAuth"),
        (
            {"is_ca": True, "digital_signature": False},
            "certificate is a CA certificate; lacks key usage digitalSignature",
        ),
    ],
    ids=["ca", "no-digital-signature", "server-auth-only", "no-eku", "ca-without-digital-signature"],
)
def test_a_certificate_without_the_workload_extensions_is_extensions_nonconforming(
    extensions: dict[str, Any], message: str
) -> None:
    posture = assess(sign(**extensions))

    assert posture.reason == CertificateReason.EXTENSIONS_NONCONFORMING
    assert posture.message == message
    assert posture.healthy is False


def test_extensions_are_checked_after_duration_and_before_expiry() -> None:
    assert assess(sign(is_ca=True, validity=timedelta(hours=48))).reason == "DurationExceedsPolicy"
    assert assess(sign(is_ca=True), now=T0 + DAY).reason == CertificateReason.EXTENSIONS_NONCONFORMING


# --- order of the checks ---------------------------------------------------------------------------------


def test_identity_is_checked_first_so_an_expired_wrong_identity_is_identity_mismatch() -> None:
    posture = assess(sign(uris=(INTRUDER_URI,)), now=T0 + DAY + timedelta(hours=1))

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH


def test_a_wrong_identity_with_a_weak_key_is_identity_mismatch_as_identity_comes_before_the_key() -> None:
    posture = assess(sign(uris=(INTRUDER_URI,), key_kind="rsa2048"))

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH


def test_a_weak_key_with_a_long_validity_is_key_algorithm_weak_as_the_key_comes_before_duration() -> None:
    posture = assess(sign(key_kind="rsa2048", validity=timedelta(hours=48)))

    assert posture.reason == CertificateReason.KEY_ALGORITHM_WEAK


def test_duration_is_checked_before_expiry_so_an_expired_overlong_one_exceeds_policy() -> None:
    posture = assess(sign(validity=timedelta(hours=48)), now=T0 + timedelta(hours=49))

    assert posture.reason == CertificateReason.DURATION_EXCEEDS_POLICY


def test_a_request_with_a_readable_certificate_is_judged_on_it_even_if_the_issuer_is_missing() -> None:
    posture = assess(sign(uris=(INTRUDER_URI,)), issuer_missing=True)

    assert posture.reason == CertificateReason.IDENTITY_MISMATCH


# --- parse_issued_certificate ----------------------------------------------------------------------------


def test_parse_issued_certificate_reads_the_leaf_which_comes_first_in_the_chain() -> None:
    issued = parse_issued_certificate(encode(sign(key_kind="p384", serial=0x0BADCAFE), chain=True))

    assert issued == IssuedCertificate(
        uris=(EXPECTED_URI,),
        key_algorithm="ECDSA",
        key_size=384,
        not_before=T0,
        not_after=T0 + DAY,
        serial_number="badcafe",
    )
    assert issued.not_before.tzinfo is not None


def test_parse_issued_certificate_reports_rsa_size_and_ed25519_without_a_size() -> None:
    rsa_issued = parse_issued_certificate(encode(sign(key_kind="rsa2048")))
    ed_issued = parse_issued_certificate(encode(sign(key_kind="ed25519")))

    assert (rsa_issued.key_algorithm, rsa_issued.key_size) == ("RSA", 2048)
    assert (ed_issued.key_algorithm, ed_issued.key_size) == ("Ed25519", None)


def test_parse_issued_certificate_rejects_text_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="Only base64 data is allowed"):
        parse_issued_certificate("-----BEGIN CERTIFICATE-----")


# --- pair_requests -------------------------------------------------------------------------------------


def _pair(requests: list[dict[str, Any]], *, revision: int | None) -> RequestPair:
    status = certificate_resource(revision=revision) if revision is not None else certificate_resource()
    return pair_requests(requests, certificate_name=CERTIFICATE, certificate=status)


def _names(pair: RequestPair) -> tuple[str | None, str | None]:
    return tuple(r["metadata"]["name"] if r is not None else None for r in (pair.current, pair.in_flight))  # type: ignore[return-value]


def test_pair_requests_takes_the_status_revision_not_the_newest_signed_one() -> None:
    # cert-manager signed revision 2 but has not stored it yet: the Secret still holds revision 1.
    encoded = encode(sign())
    requests = [
        certificate_request(encoded, name="r1", revision="1", created="2025-03-01T00:00:00Z"),
        certificate_request(encoded, name="r2", revision="2", created="2025-03-01T16:00:00Z"),
    ]

    pair = _pair(requests, revision=1)

    assert pair.revision == 1
    assert _names(pair) == ("r1", "r2")


def test_pair_requests_compares_revisions_as_numbers_not_text() -> None:
    encoded = encode(sign())
    requests = [certificate_request(encoded, name=f"r{n}", revision=str(n)) for n in (9, 10, 11)]

    assert _names(_pair(requests, revision=10)) == ("r10", "r11")


def test_pair_requests_before_the_first_issuance_has_only_revision_one_in_flight() -> None:
    requests = [certificate_request(None, name="r1", revision="1")]

    pair = _pair(requests, revision=None)

    assert pair.revision is None
    assert _names(pair) == (None, "r1")


def test_pair_requests_ignores_requests_for_other_certificates_and_without_annotations() -> None:
    encoded = encode(sign())
    theirs = certificate_request(
        encoded, name="theirs", certificate_name="checkout-api-gateway", revision="1"
    )
    bare = certificate_request(encoded, name="bare")
    bare["metadata"].pop("annotations")

    assert _names(_pair([theirs, bare], revision=1)) == (None, None)


def test_pair_requests_skips_a_malformed_revision_and_reads_a_malformed_status_revision_as_none() -> None:
    encoded = encode(sign())
    requests = [
        certificate_request(encoded, name="malformed", revision="latest"),
        certificate_request(encoded, name="missing", revision=None),
    ]

    assert _names(_pair(requests, revision=1)) == (None, None)
    assert (
        pair_requests(
            requests, certificate_name=CERTIFICATE, certificate={"status": {"revision": "x"}}
        ).revision
        is None
    )


def test_pair_requests_breaks_a_revision_tie_by_the_later_creation_timestamp() -> None:
    encoded = encode(sign())
    requests = [
        certificate_request(encoded, name="later", revision="2", created="2025-03-01T02:00:00Z"),
        certificate_request(encoded, name="earlier", revision="2", created="2025-03-01T01:00:00Z"),
    ]

    assert _names(_pair(requests, revision=2))[0] == "later"
    assert _names(_pair(list(reversed(requests)), revision=2))[0] == "later"


def test_a_signed_request_of_the_next_revision_is_not_judged_before_cert_manager_stores_it() -> None:
    # The next revision is signed with a wrong identity: cert-manager never stores such a request for
    # a Certificate whose spec changed meanwhile; until status.revision moves, revision 1 is judged.
    stored = certificate_request(encode(sign()), name="r1", revision="1")
    unstored = certificate_request(encode(sign(uris=(INTRUDER_URI,))), name="r2", revision="2")
    pair = _pair([stored, unstored], revision=1)

    posture = assess(request=pair.current, in_flight=pair.in_flight)

    assert posture.reason == CertificateReason.ISSUED


# --- issuer_key and severity -----------------------------------------------------------------------------


def test_issuer_key_of_a_cluster_issuer_has_no_namespace() -> None:
    assert issuer_key(POLICY, namespace="payments") == ("ClusterIssuer", "", "payments-ca")


def test_issuer_key_of_an_issuer_is_in_the_service_namespace() -> None:
    policy = CertificatePolicy(issuer_ref=IssuerRef(name="team-ca", kind=IssuerKind.ISSUER))

    assert issuer_key(policy, namespace="payments") == ("Issuer", "payments", "team-ca")


def test_severity_lists_every_certificate_reason_exactly_once() -> None:
    assert len(reasons()) == 14
    assert len(SEVERITY) == len(set(SEVERITY))
    assert sorted(SEVERITY) == sorted(reasons())


def test_severity_puts_expired_first_and_issued_last() -> None:
    assert SEVERITY[0] == CertificateReason.EXPIRED
    assert SEVERITY[-1] == CertificateReason.ISSUED


# --- the next deadline -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T0 - timedelta(minutes=1), T0),  # not yet valid: becomes valid at notBefore
        (NOW, T0 + DAY - RENEW_BEFORE + RENEWAL_GRACE),  # healthy: renewal overdue next
        (T0 + timedelta(hours=17), T0 + DAY - RENEW_BEFORE / 2),  # overdue: expiring soon next
        (T0 + timedelta(hours=21), T0 + DAY),  # expiring soon: expired next
    ],
    ids=["valid-at-not-before", "overdue-after-renewal", "expiring-at-half-window", "expired-at-not-after"],
)
def test_next_change_is_the_next_deadline_the_clock_alone_crosses(now: datetime, expected: datetime) -> None:
    assert next_change(assess(now=now), POLICY, now=now) == expected


def test_an_expired_or_unissued_certificate_has_no_next_change() -> None:
    expired_now = T0 + DAY + timedelta(seconds=1)
    assert next_change(assess(now=expired_now), POLICY, now=expired_now) is None
    assert next_change(assess(request=None), POLICY, now=NOW) is None
