"""Owns the PaymentService spec as typed, frozen values: its enums, dataclasses, limits and `InvalidSpec`."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

# Limits shared with crds/paymentservice.yaml; tests/unit/test_spec.py checks the two agree.
MAX_WORKLOADS = 32
MAX_SELECTOR_LABELS = 8
MAX_PORTS = 8
MAX_CALLERS = 32
MAX_EGRESS_RULES = 16
MAX_RULE_PORTS = 8
MAX_PATHS = 8
MAX_PATH_LENGTH = 256
# Generated objects are named <paymentservice>-<workload> and must fit a DNS-1123 label (63).
MAX_CHILD_NAME_LENGTH = 63
MIN_CERTIFICATE_DURATION = timedelta(hours=1)
MAX_CERTIFICATE_DURATION = timedelta(hours=24)
MIN_RENEW_BEFORE = timedelta(minutes=5)
MIN_IPV4_PREFIX = 16
MIN_IPV6_PREFIX = 48
# The Istio sidecar listens here (admin, inbound capture, health, metrics); never open these to callers.
ISTIO_RESERVED_PORTS = range(15000, 15091)


class InvalidSpec(ValueError):  # noqa: N818 - matches the condition reason InvalidSpec
    """A PaymentService the operator refuses to act on; `path` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class PciScope(StrEnum):
    CDE = "cde"
    CONNECTED = "connected"
    OUT_OF_SCOPE = "out-of-scope"


class Enforcement(StrEnum):
    ENFORCE = "Enforce"
    AUDIT = "Audit"


class DriftPolicy(StrEnum):
    REVERT = "Revert"
    REPORT = "Report"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"  # keep the last controls, detached and marked, for a successor to adopt
    DELETE = "Delete"  # remove the controls with the PaymentService (announced)


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class HttpMethod(StrEnum):
    # TRACE and CONNECT are left out on purpose: cross-site tracing and tunnelling through the mesh.
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"


class IssuerKind(StrEnum):
    ISSUER = "Issuer"
    CLUSTER_ISSUER = "ClusterIssuer"


class KeyAlgorithm(StrEnum):
    ECDSA = "ECDSA"
    RSA = "RSA"
    ED25519 = "Ed25519"


class RotationPolicy(StrEnum):
    ALWAYS = "Always"


ALLOWED_KEY_SIZES: Mapping[KeyAlgorithm, tuple[int, ...]] = {
    KeyAlgorithm.ECDSA: (256, 384),
    KeyAlgorithm.RSA: (3072, 4096),
    KeyAlgorithm.ED25519: (),
}
# cert-manager would default RSA to 2048 bits, below policy, so the model always states the size.
DEFAULT_KEY_SIZES: Mapping[KeyAlgorithm, int | None] = {
    KeyAlgorithm.ECDSA: 256,
    KeyAlgorithm.RSA: 3072,
    KeyAlgorithm.ED25519: None,
}


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True)
class Principal:
    """A mesh identity: the ServiceAccount a workload runs as, in its namespace."""

    namespace: str
    service_account: str

    def istio_principal(self, trust_domain: str) -> str:
        """The form AuthorizationPolicy `source.principals` matches."""
        return f"{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def spiffe_id(self, trust_domain: str) -> str:
        """The URI SAN of the workload certificate."""
        return f"spiffe://{self.istio_principal(trust_domain)}"


@dataclass(frozen=True)
class Caller:
    """Who may call a workload: exactly one of `workload` or `principal`. Empty tuples mean unrestricted."""

    workload: str | None = None
    principal: Principal | None = None
    ports: tuple[int, ...] = ()
    methods: tuple[HttpMethod, ...] = ()
    paths: tuple[str, ...] = ()
    # A principal's pods at L3 (NetworkPolicy), which cannot see ServiceAccounts: sorted (key, value)
    # pairs. Without a pod selector, L3 admits the principal's whole namespace and L7 checks the identity.
    pod_selector: tuple[tuple[str, str], ...] = ()
    namespace_labels: tuple[tuple[str, str], ...] = ()  # more labels its namespace must carry


@dataclass(frozen=True)
class EgressRule:
    """What a workload may call: exactly one of `workload` or `cidr`. Empty `ports` means all the target's."""

    workload: str | None = None
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Workload:
    name: str
    selector: tuple[tuple[str, str], ...]  # sorted (key, value) pairs, so the value is hashable
    service_account: str
    ports: tuple[Port, ...] = ()
    callers: tuple[Caller, ...] = ()
    egress: tuple[EgressRule, ...] = ()

    @property
    def match_labels(self) -> dict[str, str]:
        return dict(self.selector)

    def port_numbers(self) -> tuple[int, ...]:
        return tuple(sorted({port.port for port in self.ports}))


@dataclass(frozen=True)
class IssuerRef:
    name: str
    kind: IssuerKind = IssuerKind.ISSUER
    group: str = "cert-manager.io"


@dataclass(frozen=True)
class PrivateKey:
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA
    size: int | None = 256  # None only for Ed25519, whose size is fixed
    rotation_policy: RotationPolicy = RotationPolicy.ALWAYS


@dataclass(frozen=True)
class CertificatePolicy:
    issuer_ref: IssuerRef
    duration: timedelta = timedelta(hours=24)
    renew_before: timedelta = timedelta(hours=8)
    private_key: PrivateKey = PrivateKey()


@dataclass(frozen=True)
class PaymentService:
    name: str
    namespace: str
    workloads: tuple[Workload, ...]
    certificates: CertificatePolicy
    pci_scope: PciScope = PciScope.CDE
    enforcement: Enforcement = Enforcement.ENFORCE
    drift_policy: DriftPolicy = DriftPolicy.REVERT
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    trust_domain: str = "cluster.local"
    uid: str = ""
    generation: int = 0

    def workload(self, name: str) -> Workload:
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise KeyError(name)

    def child_name(self, workload: Workload | str) -> str:
        """Name of every object generated for the workload: <paymentservice>-<workload>."""
        workload_name = workload if isinstance(workload, str) else workload.name
        return f"{self.name}-{workload_name}"

    def principal_of(self, workload: Workload) -> Principal:
        return Principal(namespace=self.namespace, service_account=workload.service_account)

    def caller_principal(self, caller: Caller) -> Principal:
        """The mesh identity a caller stands for, resolving a reference to another workload."""
        if caller.principal is not None:
            return caller.principal
        assert caller.workload is not None  # parse_payment_service guarantees exactly one
        return self.principal_of(self.workload(caller.workload))
