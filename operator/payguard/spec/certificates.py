"""Owns the parsing of `spec.certificates`: the issuer, the durations and the private key.

`parse_go_duration` reads the duration form the CRD accepts; it is also the package's API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from payguard.model import (
    ALLOWED_KEY_SIZES,
    DEFAULT_KEY_SIZES,
    MAX_CERTIFICATE_DURATION,
    MIN_CERTIFICATE_DURATION,
    MIN_RENEW_BEFORE,
    CertificatePolicy,
    InvalidSpec,
    IssuerKind,
    IssuerRef,
    KeyAlgorithm,
    PrivateKey,
    RotationPolicy,
)
from payguard.spec.readers import DNS_SUBDOMAIN, enum, mapping, optional_string, required_string

_CERTIFICATES_FIELDS = frozenset({"issuerRef", "duration", "renewBefore", "privateKey"})
_ISSUER_REF_FIELDS = frozenset({"name", "kind", "group"})
_PRIVATE_KEY_FIELDS = frozenset({"algorithm", "size", "rotationPolicy"})

_DURATION = re.compile(
    r"(?:(?P<hours>[0-9]{1,4})h)?(?:(?P<minutes>[0-9]{1,6})m)?(?:(?P<seconds>[0-9]{1,8})s)?"
)


def parse_go_duration(text: str) -> timedelta:
    """Parses the duration form the CRD accepts (hours, minutes, seconds: `24h`, `1h30m`, `90m`)."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a duration in hours, minutes and seconds: {text!r}")
    return timedelta(
        hours=int(match["hours"] or 0), minutes=int(match["minutes"] or 0), seconds=int(match["seconds"] or 0)
    )


def parse_certificates(value: object, path: str) -> CertificatePolicy:
    item = mapping(value, path, fields=_CERTIFICATES_FIELDS)
    issuer = mapping(item.get("issuerRef"), f"{path}.issuerRef", fields=_ISSUER_REF_FIELDS)
    issuer_ref = IssuerRef(
        name=required_string(issuer, "name", f"{path}.issuerRef", pattern=DNS_SUBDOMAIN, max_length=253),
        kind=enum(issuer, "kind", f"{path}.issuerRef", IssuerKind, default=IssuerKind.ISSUER),
        group=optional_string(
            issuer,
            "group",
            f"{path}.issuerRef",
            default="cert-manager.io",
            pattern=DNS_SUBDOMAIN,
            max_length=253,
        ),
    )
    duration = _duration(item, "duration", path, default="24h")
    if not MIN_CERTIFICATE_DURATION <= duration <= MAX_CERTIFICATE_DURATION:
        raise InvalidSpec(f"{path}.duration", "must be between 1h and 24h")
    renew_before = _duration(item, "renewBefore", path, default="8h")
    if renew_before < MIN_RENEW_BEFORE:
        raise InvalidSpec(f"{path}.renewBefore", "must be at least 5m")
    if renew_before >= duration:
        raise InvalidSpec(f"{path}.renewBefore", "must be shorter than duration")
    return CertificatePolicy(
        issuer_ref=issuer_ref,
        duration=duration,
        renew_before=renew_before,
        private_key=_parse_private_key(item.get("privateKey", {}), f"{path}.privateKey"),
    )


def _parse_private_key(value: object, path: str) -> PrivateKey:
    item = mapping(value, path, fields=_PRIVATE_KEY_FIELDS)
    algorithm = enum(item, "algorithm", path, KeyAlgorithm, default=KeyAlgorithm.ECDSA)
    size = item.get("size")
    if size is None:
        size = DEFAULT_KEY_SIZES[algorithm]
    elif algorithm is KeyAlgorithm.ED25519:
        raise InvalidSpec(f"{path}.size", "must be omitted for Ed25519 keys")
    elif isinstance(size, bool) or not isinstance(size, int) or size not in ALLOWED_KEY_SIZES[algorithm]:
        allowed = " or ".join(str(bits) for bits in ALLOWED_KEY_SIZES[algorithm])
        raise InvalidSpec(f"{path}.size", f"{algorithm} keys must be {allowed} bits")
    return PrivateKey(
        algorithm=algorithm,
        size=size,
        rotation_policy=enum(item, "rotationPolicy", path, RotationPolicy, default=RotationPolicy.ALWAYS),
    )


def _duration(item: Mapping[str, Any], key: str, path: str, *, default: str) -> timedelta:
    text = optional_string(item, key, path, default=default, max_length=16)
    try:
        return parse_go_duration(text)
    except ValueError:
        raise InvalidSpec(
            f"{path}.{key}", f"{text!r} must be written in hours, minutes and seconds, such as 8h"
        ) from None
