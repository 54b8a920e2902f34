"""Owns the x509 material tests need: keys, a throwaway CA, the certificates it issues, and their encodings.

Used by the unit tests of certificate posture and by tests/fake_cert_manager.py (also run as a script, from
which `import pki` finds this file beside it).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
# What a CA issuer writes for payguard's usages ("digital signature", "server auth", "client auth").
WORKLOAD_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


def private_key(algorithm: str, size: int | None = None) -> PrivateKey:
    """A fresh key as a cert-manager `privateKey` block names it: ECDSA (256 or 384), Ed25519, else RSA."""
    if algorithm == "ECDSA":
        return ec.generate_private_key(ec.SECP384R1() if size == 384 else ec.SECP256R1())
    if algorithm == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)


@dataclass(frozen=True)
class Authority:
    """A self-signed CA (P-256, SHA-256) that signs workload certificates as a cert-manager CA issuer does."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def issue(
        self,
        public_key: CertificatePublicKeyTypes,
        *,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        uris: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        subject: x509.Name | None = None,
        serial: int | None = None,
        is_ca: bool = False,
        digital_signature: bool = True,
        extended_usages: Sequence[x509.ObjectIdentifier] = WORKLOAD_USAGES,
    ) -> x509.Certificate:
        """A leaf certificate for public_key, with the extensions a CA issuer writes (not a CA, the key and
        extended key usages asked for); its SAN lists the URIs (SPIFFE identities), then DNS names."""
        builder = _builder(
            subject if subject is not None else x509.Name([]),
            issuer=self.certificate.subject,
            public_key=public_key,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
        )
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
        names += [x509.DNSName(name) for name in dns_names]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        builder = builder.add_extension(_key_usage(digital_signature=digital_signature), critical=True)
        if extended_usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_usages)), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def sign_request(
        self,
        request: x509.CertificateSigningRequest,
        *,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
    ) -> x509.Certificate:
        """Signs a CSR as it asks: its subject, its key and the URIs of its SAN."""
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return self.issue(
            request.public_key(),
            subject=request.subject,
            uris=san.get_values_for_type(x509.UniformResourceIdentifier),
            not_before=not_before,
            not_after=not_after,
        )


def authority(
    common_name: str,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial: int | None = None,
) -> Authority:
    """A new self-signed CA with a fresh P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _builder(
            name,
            issuer=name,
            public_key=key.public_key(),
            serial=serial,
            not_before=not_before,
            not_after=not_after,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key=key, certificate=certificate)


def _key_usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=not digital_signature,  # a KeyUsage must state at least one usage
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    *,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    serial: int | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    """What every certificate states: who, signed by whom, for which key, with which serial, valid when."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def signing_request(key: PrivateKey, *, uris: Sequence[str]) -> x509.CertificateSigningRequest:
    """A CSR with an empty subject and the URIs as its SAN, as cert-manager makes for a Certificate."""
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]), critical=False
        )
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )


def pem(*items: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    """The certificates (or a CSR) in PEM, one after another: leaf first, then the chain."""
    return b"".join(item.public_bytes(serialization.Encoding.PEM) for item in items)


def key_pem(key: PrivateKey) -> bytes:
    """The private key in unencrypted PKCS#8 PEM, as cert-manager writes `tls.key`."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def b64(data: bytes) -> str:
    """Base64 text, as the API carries `status.certificate`, `spec.request` and Secret data."""
    return base64.b64encode(data).decode()
