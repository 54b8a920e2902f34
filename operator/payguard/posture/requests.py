"""Owns which CertificateRequests a Certificate is judged from: paired by revision, as cert-manager pairs
them (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from payguard.kinds import CERTIFICATE_NAME_ANNOTATION, CERTIFICATE_REVISION_ANNOTATION


@dataclass(frozen=True)
class RequestPair:
    """The CertificateRequests that matter for one Certificate, paired by revision as cert-manager does."""

    revision: int | None  # the Certificate's status.revision: None until a certificate was first issued
    current: Mapping[str, Any] | None  # the request of that revision: the certificate now in the Secret
    in_flight: Mapping[str, Any] | None  # the request of the next revision, while one is being issued

    @property
    def current_unobserved(self) -> bool:
        """status.revision names a request not seen signed. cert-manager stores a revision only once its
        request is signed, so this is the CertificateRequest watch behind the Certificate's, or a request
        deleted since (see CertificateReason.REQUEST_MISSING): only a fresh read tells which."""
        return self.revision is not None and not ((self.current or {}).get("status") or {}).get("certificate")


def pair_requests(
    requests: Iterable[Mapping[str, Any]], *, certificate_name: str, certificate: Mapping[str, Any] | None
) -> RequestPair:
    """Pairs by status.revision, never by "newest": cert-manager signs the next revision's request before it
    stores it and updates the Certificate's status, and it may reject a signed request and never store it."""
    revision = _int(((certificate or {}).get("status") or {}).get("revision"))
    by_revision: dict[int, Mapping[str, Any]] = {}
    for request in requests:
        annotations = request["metadata"].get("annotations") or {}
        if annotations.get(CERTIFICATE_NAME_ANNOTATION) != certificate_name:
            continue
        number = _int(annotations.get(CERTIFICATE_REVISION_ANNOTATION))
        if number is None:
            continue
        seen = by_revision.get(number)
        created = str(request["metadata"].get("creationTimestamp", ""))
        if seen is None or created > str(seen["metadata"].get("creationTimestamp", "")):
            by_revision[number] = request
    return RequestPair(
        revision=revision,
        current=by_revision.get(revision) if revision is not None else None,
        in_flight=by_revision.get((revision or 0) + 1),
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
