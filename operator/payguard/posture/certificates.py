"""Owns certificate posture: whether a workload holds a valid, policy-conforming, unexpired certificate.

Pure: it reads only public API data (the Certificate's status, the issuer's readiness, and the signed
certificate in `status.certificate` of the CertificateRequest whose revision is the Certificate's
`status.revision`), never a Secret or a private key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from payguard.model import CertificatePolicy, KeyAlgorithm
from payguard.posture.requests import RequestPair

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
    # The CertificateRequest in flight was denied, invalid or failed (or the Certificate says Issuing=False).
    ISSUANCE_FAILED = "IssuanceFailed"
    # status.revision names a CertificateRequest that no longer exists: nothing left to judge.
    REQUEST_MISSING = "RequestMissing"
    # status.certificate could not be parsed as a PEM certificate.
    UNREADABLE = "CertificateUnreadable"
    # The URI SAN is not the workload's SPIFFE identity.
    IDENTITY_MISMATCH = "IdentityMismatch"
    # The key's algorithm or size is weaker than the policy.
    KEY_ALGORITHM_WEAK = "KeyAlgorithmWeak"
    # notAfter - notBefore is longer than the policy's duration.
    DURATION_EXCEEDS_POLICY = "DurationExceedsPolicy"
    # A CA certificate, or one without digitalSignature or without both serverAuth and clientAuth.
    EXTENSIONS_NONCONFORMING = "ExtensionsNonconforming"
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
    CertificateReason.EXTENSIONS_NONCONFORMING,
    CertificateReason.UNREADABLE,
    CertificateReason.REQUEST_MISSING,
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
    is_ca: bool = False
    digital_signature: bool = True
    extended_key_usages: tuple[str, ...] = ("serverAuth", "clientAuth")


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
        **_extensions(certificate),
    )


def assess_certificate(  # noqa: PLR0911 - ordered checks, the first failure decides
    *,
    workload: str,
    name: str,
    secret_name: str,
    policy: CertificatePolicy,
    expected_uri: str,
    certificate: Mapping[str, Any] | None,
    requests: RequestPair,
    issuer: Mapping[str, Any] | None,
    now: datetime,
) -> CertificatePosture:
    def posture(reason: str, message: str, **kwargs: Any) -> CertificatePosture:
        return CertificatePosture(workload, name, secret_name, reason, message, **kwargs)

    issuer_problem = _issuer_problem(issuer, policy)
    failure = _issuance_failure(certificate, requests.in_flight)
    request = requests.current
    if request is None:
        if requests.revision is not None:
            gone = (
                f"CertificateRequest of revision {requests.revision} of Certificate {name} no longer exists"
                " (cert-manager keeps revisionHistoryLimit requests, counting the one in flight)"
            )
            return posture(CertificateReason.REQUEST_MISSING, f"{gone}; {failure}" if failure else gone)
        if issuer_problem:
            return posture(CertificateReason.ISSUER_NOT_READY, issuer_problem)
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
    extension_problems = _extension_problems(issued)
    if extension_problems:
        return failed(CertificateReason.EXTENSIONS_NONCONFORMING, extension_problems)
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
        return failed(reason, "; ".join(part for part in (due, issuer_problem, failure) if part))
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


def _issuance_failure(certificate: Mapping[str, Any] | None, in_flight: Mapping[str, Any] | None) -> str:
    """Why the request in flight will not be issued: its own Denied, InvalidRequest or failed Ready
    condition (named with the request), else the Certificate's Issuing=False, whatever its reason (an
    approval policy puts its own name there)."""
    if in_flight is not None:
        request = in_flight["metadata"]["name"]
        for condition in (in_flight.get("status") or {}).get("conditions") or []:
            kind, status, reason = condition.get("type"), condition.get("status"), condition.get("reason")
            message = condition.get("message") or "no message"
            if kind == "Denied" and status == "True":
                return f"CertificateRequest {request} was denied by {reason or 'an approver'}: {message}"
            if kind == "InvalidRequest" and status == "True":
                return f"CertificateRequest {request} is invalid ({reason}): {message}"
            if kind == "Ready" and status == "False" and reason in ("Failed", "Denied"):
                return f"CertificateRequest {request} failed ({reason}): {message}"
    for condition in ((certificate or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Issuing" and condition.get("status") == "False":
            reason = condition.get("reason") or "no reason given"
            return f"issuance failed ({reason}): {condition.get('message') or 'no message'}"
    return ""


def _extensions(certificate: x509.Certificate) -> dict[str, Any]:
    """The extensions a workload certificate must carry: not a CA, digitalSignature, server+client auth."""
    extensions = certificate.extensions
    try:
        is_ca = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        digital_signature = extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        digital_signature = False
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        named = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
        extended = tuple(named.get(oid, oid.dotted_string) for oid in usages)
    except x509.ExtensionNotFound:
        extended = ()
    return {"is_ca": is_ca, "digital_signature": digital_signature, "extended_key_usages": extended}


def _extension_problems(issued: IssuedCertificate) -> str:
    problems = []
    if issued.is_ca:
        problems.append("is a CA certificate")
    if not issued.digital_signature:
        problems.append("lacks key usage digitalSignature")
    missing = [usage for usage in ("serverAuth", "clientAuth") if usage not in issued.extended_key_usages]
    if missing:
        problems.append(f"lacks extended key usage {' and '.join(missing)}")
    return "certificate " + "; ".join(problems) if problems else ""


def _renewal_time(
    certificate: Mapping[str, Any] | None, issued: IssuedCertificate, policy: CertificatePolicy
) -> datetime:
    """status.renewalTime, when the status describes this very certificate (its notAfter): cert-manager
    stores a new revision before its readiness controller rewrites notAfter and renewalTime."""
    status = (certificate or {}).get("status") or {}
    recorded, not_after = _parse_time(status.get("renewalTime")), _parse_time(status.get("notAfter"))
    if recorded is not None and not_after == issued.not_after.replace(microsecond=0):
        return recorded
    return issued.not_after - policy.renew_before


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


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
