"""Owns the reading of a PaymentService body: the CRD's defaults and rules, refused with the field path.

`parse_payment_service` is the only reader of a PaymentService body. It applies the CRD's defaults (so a
manifest rendered offline, never seen by an API server, means the same thing) and re-checks the CRD's
rules, plus the rules the schema cannot express because they depend on the namespace. Any violation
raises `InvalidSpec` naming the field path, e.g. `spec.workloads[1].callers[0].workload`.

This module reads the top of the body; `workloads` and `certificates` read their sections, and
`readers` holds the typed readers they share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payguard.model import DeletionPolicy, DriftPolicy, Enforcement, PaymentService, PciScope
from payguard.spec.certificates import parse_certificates, parse_go_duration
from payguard.spec.readers import DNS_LABEL, DNS_SUBDOMAIN, enum, mapping, optional_string, required_string
from payguard.spec.workloads import check_references, parse_workloads

__all__ = ["parse_go_duration", "parse_payment_service"]

_SPEC_FIELDS = frozenset(
    {
        "pciScope",
        "enforcement",
        "driftPolicy",
        "deletionPolicy",
        "trustDomain",
        "workloads",
        "certificates",
    }
)


def parse_payment_service(body: Mapping[str, Any]) -> PaymentService:
    """Parses a PaymentService body (as served by the API or read from a file) into the typed model.

    Raises InvalidSpec naming the first offending field.
    """
    body = mapping(body, "")
    metadata = mapping(body.get("metadata"), "metadata")
    name = required_string(metadata, "name", "metadata", pattern=DNS_LABEL, max_length=61)
    # A file rendered offline may omit the namespace; kubectl would then use "default" too.
    namespace = optional_string(metadata, "namespace", "metadata", default="default", pattern=DNS_LABEL)
    spec = mapping(body.get("spec"), "spec", fields=_SPEC_FIELDS)
    trust_domain = optional_string(
        spec, "trustDomain", "spec", default="cluster.local", pattern=DNS_SUBDOMAIN, max_length=253
    )
    workloads = parse_workloads(spec, name=name)
    check_references(workloads, namespace=namespace)
    generation = metadata.get("generation", 0)
    return PaymentService(
        name=name,
        namespace=namespace,
        uid=str(metadata.get("uid", "")),
        generation=generation if isinstance(generation, int) and not isinstance(generation, bool) else 0,
        pci_scope=enum(spec, "pciScope", "spec", PciScope, default=PciScope.CDE),
        enforcement=enum(spec, "enforcement", "spec", Enforcement, default=Enforcement.ENFORCE),
        drift_policy=enum(spec, "driftPolicy", "spec", DriftPolicy, default=DriftPolicy.REVERT),
        deletion_policy=enum(spec, "deletionPolicy", "spec", DeletionPolicy, default=DeletionPolicy.RETAIN),
        trust_domain=trust_domain,
        workloads=workloads,
        certificates=parse_certificates(spec.get("certificates"), "spec.certificates"),
    )
