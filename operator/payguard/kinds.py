"""Owns the names payguard shares with the API: every kind it watches or writes, and every label and
annotation key it reads or sets.

One registry, so a new generated kind is one entry here, one render module and one condition, and no
key is spelled twice.
"""

from __future__ import annotations

from dataclasses import dataclass

API_GROUP = "payguard.dev"
API_VERSION = "v1alpha1"
FIELD_MANAGER = "payguard"  # server-side apply manager of every write
REPORTING_CONTROLLER = f"{API_GROUP}/operator"  # Events' reportingController

# Labels on every generated object.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "payguard"
SERVICE_LABEL = f"{API_GROUP}/payment-service"
WORKLOAD_LABEL = f"{API_GROUP}/workload"
PCI_SCOPE_LABEL = f"{API_GROUP}/pci-scope"  # the PaymentService's spec.pciScope, for auditors' selectors
# What payguard last rendered for the object (a digest): a live object whose digest differs was rendered
# from an older spec, so the difference is the owner's change to apply, not drift to report.
RENDERED_HASH_ANNOTATION = f"{API_GROUP}/rendered-hash"
# Evidence for auditors: which PCI-DSS v4.0 requirements the object helps meet.
PCI_REQUIREMENTS_ANNOTATION = f"{API_GROUP}/pci-dss-requirements"
# Istio logs but does not enforce a policy carrying this annotation set to a true value.
DRY_RUN_ANNOTATION = "istio.io/dry-run"
# Set by cert-manager on each CertificateRequest it creates for a Certificate.
CERTIFICATE_NAME_ANNOTATION = "cert-manager.io/certificate-name"
CERTIFICATE_REVISION_ANNOTATION = "cert-manager.io/certificate-revision"
# payguard's own finalizer on every PaymentService: deletion waits until deletionPolicy has been carried out.
FINALIZER = f"{API_GROUP}/deletion-policy"
# On controls kept after their PaymentService was deleted (deletionPolicy: Retain): the label for
# selecting them, the annotations for who they belonged to and since when.
RETAINED_LABEL = f"{API_GROUP}/retained"
RETAINED_FROM_ANNOTATION = f"{API_GROUP}/retained-from"
RETAINED_AT_ANNOTATION = f"{API_GROUP}/retained-at"
# The deletion guard (a ValidatingAdmissionPolicy in the chart) lets a cde PaymentService go only with this.
ALLOW_DELETE_ANNOTATION = f"{API_GROUP}/allow-delete"
# On a generated object widened by active PaymentServiceExceptions: their names, for the audit trail.
EXCEPTIONS_ANNOTATION = f"{API_GROUP}/exceptions"
# Set by the API server on every namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Istio's marks of a pod in the mesh (read to judge, never written).
PROXY_CONTAINER = "istio-proxy"  # the sidecar, as a container or a native sidecar init container
SIDECAR_STATUS_ANNOTATION = "sidecar.istio.io/status"  # set by the injector on every injected pod
SIDECAR_INJECT = "sidecar.istio.io/inject"  # pod label or annotation: "false" opts the pod out
INJECTION_LABEL = "istio-injection"  # namespace: enabled | disabled
REVISION_LABEL = "istio.io/rev"  # namespace or pod: inject with this control plane revision
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"  # namespace or pod: ambient | none
AMBIENT_REDIRECTION_ANNOTATION = "ambient.istio.io/redirection"  # "enabled" once istio-cni captured it
USE_WAYPOINT_LABEL = "istio.io/use-waypoint"  # namespace, Service or pod: the waypoint (Gateway) to use
USE_WAYPOINT_NAMESPACE_LABEL = "istio.io/use-waypoint-namespace"  # the waypoint's namespace, when another
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"  # Istio sets it on a waypoint's pods


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


PAYMENT_SERVICES = ResourceType(API_GROUP, API_VERSION, "paymentservices", "PaymentService")
PEER_AUTHENTICATIONS = ResourceType("security.istio.io", "v1", "peerauthentications", "PeerAuthentication")
AUTHORIZATION_POLICIES = ResourceType(
    "security.istio.io", "v1", "authorizationpolicies", "AuthorizationPolicy"
)
NETWORK_POLICIES = ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
CERTIFICATES = ResourceType("cert-manager.io", "v1", "certificates", "Certificate")
CERTIFICATE_REQUESTS = ResourceType("cert-manager.io", "v1", "certificaterequests", "CertificateRequest")
ISSUERS = ResourceType("cert-manager.io", "v1", "issuers", "Issuer")
CLUSTER_ISSUERS = ResourceType("cert-manager.io", "v1", "clusterissuers", "ClusterIssuer", namespaced=False)
# Read by `payguard evidence` for the drift and repair history payguard posted.
EVENTS = ResourceType("events.k8s.io", "v1", "events", "Event")
PAYMENT_SERVICE_EXCEPTIONS = ResourceType(
    API_GROUP, API_VERSION, "paymentserviceexceptions", "PaymentServiceException"
)
# Read so no pass writes into a namespace that is being deleted, and for its mesh enrolment labels.
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
# Read to judge whether the controls reach real pods, in the mesh, under the declared identity.
PODS = ResourceType("", "v1", "pods", "Pod")
SERVICE_ACCOUNTS = ResourceType("", "v1", "serviceaccounts", "ServiceAccount")
SERVICES = ResourceType("", "v1", "services", "Service")
# Istio's mesh config: one ConfigMap in the mesh root namespace, read by name only (a namespaced Role).
MESH_CONFIGS = ResourceType("", "v1", "configmaps", "ConfigMap")

# What payguard generates, by kind, in the order a pass applies them per workload.
CHILD_TYPES = {
    t.kind: t for t in (PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES, NETWORK_POLICIES, CERTIFICATES)
}
# Read for posture only; payguard never writes these.
OBSERVED_TYPES = {
    t.kind: t for t in (CERTIFICATE_REQUESTS, ISSUERS, CLUSTER_ISSUERS, PODS, SERVICE_ACCOUNTS, SERVICES)
}
WATCHED_TYPES = (
    PAYMENT_SERVICES,
    PAYMENT_SERVICE_EXCEPTIONS,
    *CHILD_TYPES.values(),
    *OBSERVED_TYPES.values(),
    NAMESPACES,
    MESH_CONFIGS,
)
# Kinds whose absence a pass reports without judging a control Unknown, and that readiness ignores.
OPTIONAL_TYPES = (MESH_CONFIGS,)


def crd_name(resource: ResourceType) -> str:
    """The CustomResourceDefinition that serves a kind, as `kubectl get crd` names it."""
    return f"{resource.plural}.{resource.group}"
