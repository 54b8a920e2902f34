"""Owns certificate posture: whether a workload holds a valid, policy-conforming, unexpired certificate.

Pure: it reads only public API data (the Certificate's status, the issuer's readiness, and the signed
certificate in the latest CertificateRequest's `status.certificate`), never a Secret or a private key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION
from payguard.model import CertificatePolicy, KeyAlgorithm

# Issuers may backdate notBefore a little (clock skew); a validity this much over the policy still passes.
VALIDITY_SLACK = timedelta(minutes=5)
# cert-manager renews at renewalTime; give it this long before calling the renewal overdue.
RENEWAL_GRACE = timedelta(minutes=5)


class CertificateReason:
    # Issued, valid now, within policy, not past its renewal time.
    ISSUED = "Issued"
    # No signed certificate yet (just created, or the issuer has not answered).
    PENDING = "Pending"
    # The Issuer or ClusterIssuer is missing or not Ready.
    ISSUER_NOT_READY = "IssuerNotReady"
    # The latest CertificateRequest was denied or failed.
    ISSUANCE_FAILED = "IssuanceFailed"
    # status.certificate could not be parsed as a PEM certificate.
    UNREADABLE = "CertificateUnreadable"
    # The URI SAN is not the workload's SPIFFE identity.
    IDENTITY_MISMATCH = "IdentityMismatch"
    # The key's algorithm or size is weaker than the policy.
    KEY_ALGORITHM_WEAK = "KeyAlgorithmWeak"
    # notAfter - notBefore is longer than the policy's duration.
    DURATION_EXCEEDS_POLICY = "DurationExceedsPolicy"
    # notBefore is in the future.
    NOT_YET_VALID = "NotYetValid"
    # notAfter has passed.
    EXPIRED = "Expired"
    # Past renewal and less than half of renewBefore left: traffic breaks soon.
    EXPIRING_SOON = "ExpiringSoon"
    # The renewal time has passed and no renewed certificate arrived.
    RENEWAL_OVERDUE = "RenewalOverdue"


# Most urgent first: the reason CertificatesReady shows when several workloads fail.
SEVERITY = (
    CertificateReason.EXPIRED,
    CertificateReason.IDENTITY_MISMATCH,
    CertificateReason.KEY_ALGORITHM_WEAK,
    CertificateReason.DURATION_EXCEEDS_POLICY,
    CertificateReason.UNREADABLE,
    CertificateReason.EXPIRING_SOON,
    CertificateReason.ISSUER_NOT_READY,
    CertificateReason.ISSUANCE_FAILED,
    CertificateReason.RENEWAL_OVERDUE,
    CertificateReason.NOT_YET_VALID,
    CertificateReason.PENDING,
    CertificateReason.ISSUED,
)


@dataclass(frozen=True)
class IssuedCertificate:
    """The public facts of a signed certificate."""

    uris: tuple[str, ...]
    key_algorithm: str  # ECDSA, RSA, Ed25519 or the key type's name
    key_size: int | None
    not_before: datetime
    not_after: datetime
    serial_number: str


@dataclass(frozen=True)
class CertificatePosture:
    workload: str
    name: str
    secret_name: str
    reason: str
    message: str
    issued: IssuedCertificate | None = None
    renewal_time: datetime | None = None

    @property
    def healthy(self) -> bool:
        return self.reason == CertificateReason.ISSUED

    def summary(self) -> dict[str, Any]:
        """The status.workloads[].certificate entry: public facts only, never the certificate body."""
        summary: dict[str, Any] = {"name": self.name, "secretName": self.secret_name, "state": self.reason}
        if self.issued is not None:
            summary |= {
                "notBefore": _timestamp(self.issued.not_before),
                "notAfter": _timestamp(self.issued.not_after),
                "serialNumber": self.issued.serial_number,
                "keyAlgorithm": self.issued.key_algorithm,
            }
            if self.issued.key_size is not None:
                summary["keySize"] = self.issued.key_size
        if self.renewal_time is not None:
            summary["renewalTime"] = _timestamp(self.renewal_time)
        return summary


def latest_request(
    requests: Iterable[Mapping[str, Any]], *, certificate_name: str
) -> Mapping[str, Any] | None:
    """The CertificateRequest with the highest revision that carries a signed certificate."""
    best: tuple[int, str] | None = None
    chosen: Mapping[str, Any] | None = None
    for request in requests:
        annotations = request["metadata"].get("annotations") or {}
        if annotations.get(CERTIFICATE_NAME_ANNOTATION) != certificate_name:
            continue
        if not (request.get("status") or {}).get("certificate"):
            continue
        try:
            revision = int(annotations.get(CERTIFICATE_REVISION_ANNOTATION, "0"))
        except ValueError:
            revision = 0
        rank = (revision, str(request["metadata"].get("creationTimestamp", "")))
        if best is None or rank > best:
            best, chosen = rank, request
    return chosen


def parse_issued_certificate(encoded: str) -> IssuedCertificate:
    """Reads `status.certificate` (base64 of a PEM chain; the first certificate is the workload's)."""
    pem = base64.b64decode(encoded, validate=True)
    certificate = x509.load_pem_x509_certificates(pem)[0]
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = ()
    try:
        algorithm, size = _key_type(certificate.public_key())
    except UnsupportedAlgorithm:
        # A key cryptography cannot load is named by its OID, and so never matches the policy.
        algorithm, size = certificate.public_key_algorithm_oid.dotted_string, None
    return IssuedCertificate(
        uris=uris,
        key_algorithm=algorithm,
        key_size=size,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        serial_number=format(certificate.serial_number, "x"),
    )


def assess_certificate(  # noqa: PLR0911 - ordered checks, the first failure decides
    *,
    workload: str,
    name: str,
    secret_name: str,
    policy: CertificatePolicy,
    expected_uri: str,
    certificate: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None,
    issuer: Mapping[str, Any] | None,
    now: datetime,
) -> CertificatePosture:
    def posture(reason: str, message: str, **kwargs: Any) -> CertificatePosture:
        return CertificatePosture(workload, name, secret_name, reason, message, **kwargs)

    issuer_problem = _issuer_problem(issuer, policy)
    if request is None:
        if issuer_problem:
            return posture(CertificateReason.ISSUER_NOT_READY, issuer_problem)
        failure = _request_failure(certificate)
        if failure:
            return posture(CertificateReason.ISSUANCE_FAILED, failure)
        return posture(CertificateReason.PENDING, f"Certificate {name} has no signed certificate yet")
    try:
        issued = parse_issued_certificate(str(request["status"]["certificate"]))
    except (ValueError, IndexError, KeyError, TypeError):
        return posture(
            CertificateReason.UNREADABLE,
            f"CertificateRequest {request['metadata']['name']} holds no readable PEM certificate",
        )
    renewal_time = _renewal_time(certificate, issued, policy)

    def failed(reason: str, message: str) -> CertificatePosture:
        return posture(reason, message, issued=issued, renewal_time=renewal_time)

    if issued.uris != (expected_uri,):
        found = ", ".join(issued.uris) or "no URI SAN"
        return failed(CertificateReason.IDENTITY_MISMATCH, f"URI SAN is {found}, expected {expected_uri}")
    weakness = _key_weakness(issued, policy)
    if weakness:
        return failed(CertificateReason.KEY_ALGORITHM_WEAK, weakness)
    validity = issued.not_after - issued.not_before
    if validity > policy.duration + VALIDITY_SLACK:
        return failed(
            CertificateReason.DURATION_EXCEEDS_POLICY,
            f"valid for {_hours(validity)}, policy allows {_hours(policy.duration)}",
        )
    if now >= issued.not_after:
        return failed(CertificateReason.EXPIRED, f"expired at {_timestamp(issued.not_after)}")
    if now < issued.not_before:
        return failed(CertificateReason.NOT_YET_VALID, f"not valid before {_timestamp(issued.not_before)}")
    if now >= renewal_time + RENEWAL_GRACE:
        left = issued.not_after - now
        reason = (
            CertificateReason.EXPIRING_SOON
            if left < policy.renew_before / 2
            else CertificateReason.RENEWAL_OVERDUE
        )
        due = f"renewal was due at {_timestamp(renewal_time)}; expires at {_timestamp(issued.not_after)}"
        return failed(reason, f"{due}; {issuer_problem}" if issuer_problem else due)
    return failed(CertificateReason.ISSUED, f"valid until {_timestamp(issued.not_after)}")


def next_change(posture: CertificatePosture, policy: CertificatePolicy, *, now: datetime) -> datetime | None:
    """The next moment the posture changes by the clock alone (valid, due, expiring, expired)."""
    if posture.issued is None or posture.renewal_time is None:
        return None
    issued = posture.issued
    moments = (
        issued.not_before,
        posture.renewal_time + RENEWAL_GRACE,
        issued.not_after - policy.renew_before / 2,
        issued.not_after,
    )
    upcoming = [moment for moment in moments if moment > now]
    return min(upcoming, default=None)


def issuer_key(policy: CertificatePolicy, *, namespace: str) -> tuple[str, str, str]:
    """(kind, namespace, name) of the issuer; a ClusterIssuer has no namespace."""
    kind = str(policy.issuer_ref.kind)
    return (kind, "" if kind == "ClusterIssuer" else namespace, policy.issuer_ref.name)


def _issuer_problem(issuer: Mapping[str, Any] | None, policy: CertificatePolicy) -> str:
    reference = f"{policy.issuer_ref.kind} {policy.issuer_ref.name}"
    if issuer is None:
        return f"{reference} not found"
    for condition in (issuer.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return ""
            why = condition.get("message") or condition.get("reason") or "no reason given"
            return f"{reference} is not Ready: {why}"
    return f"{reference} reports no Ready condition"


def _request_failure(certificate: Mapping[str, Any] | None) -> str:
    for condition in ((certificate or {}).get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "Issuing"
            and condition.get("status") == "False"
            and condition.get("reason") == "Failed"
        ):
            return f"issuance failed: {condition.get('message', '')}"
    return ""


def _renewal_time(
    certificate: Mapping[str, Any] | None, issued: IssuedCertificate, policy: CertificatePolicy
) -> datetime:
    recorded = ((certificate or {}).get("status") or {}).get("renewalTime")
    if recorded:
        try:
            return datetime.strptime(str(recorded), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    return issued.not_after - policy.renew_before


def _key_type(key: object) -> tuple[str, int | None]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return (str(KeyAlgorithm.ECDSA), key.curve.key_size)
    if isinstance(key, rsa.RSAPublicKey):
        return (str(KeyAlgorithm.RSA), key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return (str(KeyAlgorithm.ED25519), None)
    return (type(key).__name__, None)


def _key_weakness(issued: IssuedCertificate, policy: CertificatePolicy) -> str:
    wanted = policy.private_key
    expected = f"{wanted.algorithm}" + (f" {wanted.size}" if wanted.size else "")
    found = f"{issued.key_algorithm}" + (f" {issued.key_size}" if issued.key_size else "")
    if issued.key_algorithm != str(wanted.algorithm):
        return f"key is {found}, policy requires {expected}"
    if wanted.size is not None and (issued.key_size or 0) < wanted.size:
        return f"key is {found}, policy requires {expected}"
    return ""


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:g}h"
