"""Test-side Kubernetes helpers: admin clients, namespaces, and kubeconfigs minted for a ServiceAccount."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, dynamic
from kubernetes.dynamic.resource import Resource

from localcluster import LocalCluster, kubeconfig_document
from mesh_pods import enrolment, namespace_manifest

# Metadata of every request of one identity (the operator under an audited ServiceAccount), nothing else,
# so tests can check what that operator read and wrote.
AUDITED_USER = "system:serviceaccount:payguard-system:payguard-audited"
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Metadata
    users: ["{AUDITED_USER}"]
  - level: None
"""
# The chaos cluster also records every write of the chart's ServiceAccount, the Lease writes with their
# body (the holder), so the HA tests can tell which replica wrote what while holding which Lease.
OPERATOR_USER = "system:serviceaccount:payguard-system:payguard"
CHAOS_AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Request
    users: ["{OPERATOR_USER}"]
    verbs: ["create", "update"]
    resources: [{{group: "coordination.k8s.io", resources: ["leases"]}}]
  - level: Metadata
    users: ["{OPERATOR_USER}"]
    verbs: ["create", "update", "patch", "delete"]
  - level: Metadata
    users: ["{AUDITED_USER}"]
  - level: None
"""


@dataclass
class TestCluster:
    """A reachable API server with an admin kubeconfig (the local control plane or an existing cluster)."""

    __test__ = False  # not a test class, despite the name

    kubeconfig: Path
    is_local: bool = True  # False for an existing cluster named by PAYGUARD_TEST_KUBECONFIG
    audit_log: Path | None = None  # the local control plane's audit log (see AUDIT_POLICY in conftest)
    local: LocalCluster | None = None  # the local control plane itself, to stop and start its components
    api_client: client.ApiClient = field(init=False)
    dynamic: dynamic.DynamicClient = field(init=False)

    def __post_init__(self) -> None:
        self.api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.dynamic = dynamic.DynamicClient(self.api_client)

    def resource(self, api_version: str, kind: str) -> Resource:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(
        self,
        body: dict[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str = "payguard-tests",
        dry_run: bool = False,
    ) -> Any:
        """Server-side applies one manifest as the admin and returns the live object (or would-be one)."""
        resource = self.resource(body["apiVersion"], body["kind"])
        options = {"dry_run": "All"} if dry_run else {}
        return resource.server_side_apply(
            body=body,
            name=body["metadata"]["name"],
            namespace=namespace or body["metadata"].get("namespace"),
            field_manager=field_manager,
            force_conflicts=True,
            **options,
        )

    def enrol(self, service: dict[str, Any]) -> None:
        """What payguard must observe before it calls a PaymentService Ready: its namespace labelled for
        injection, its ServiceAccounts, and one pod per workload as the Istio injector leaves it."""
        namespace = service["metadata"]["namespace"]
        for manifest in (namespace_manifest(namespace), *enrolment(service)):
            self.apply(manifest)

    def create_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        client.CoreV1Api(self.api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )
        return name

    def create_namespace_named(self, name: str) -> None:
        client.CoreV1Api(self.api_client).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )

    def delete_namespace(self, name: str) -> None:
        client.CoreV1Api(self.api_client).delete_namespace(name)

    def kubeconfig_for_service_account(
        self,
        *,
        namespace: str,
        service_account: str,
        directory: Path,
        seconds: int = 3600,
        pod: client.V1Pod | None = None,
    ) -> Path:
        """Mints a token for the ServiceAccount (TokenRequest API) and writes a kubeconfig that uses it.

        Lets tests run code under its real least-privilege RBAC instead of as cluster admin. With `pod`,
        the token is bound to that pod, as a kubelet's is: the audit log then names the pod of every request.
        """
        core = client.CoreV1Api(self.api_client)
        bound = None
        if pod is not None:
            bound = client.V1BoundObjectReference(
                kind="Pod", api_version="v1", name=pod.metadata.name, uid=pod.metadata.uid
            )
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds, bound_object_ref=bound)
        )
        token = core.create_namespaced_service_account_token(service_account, namespace, request).status.token
        admin = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
        cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
        ca_pem = _ca_pem(cluster, base=self.kubeconfig.parent)
        document = kubeconfig_document(server=cluster["server"], ca_pem=ca_pem, user={"token": token})
        suffix = f"-{pod.metadata.name}" if pod is not None else ""
        path = directory / f"{namespace}-{service_account}{suffix}.kubeconfig"
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    @contextmanager
    def client_for(self, kubeconfig: Path) -> Iterator[client.ApiClient]:
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            yield api_client
        finally:
            api_client.close()


def _ca_pem(cluster: dict[str, Any], *, base: Path) -> bytes:
    if "certificate-authority-data" in cluster:
        return base64.b64decode(cluster["certificate-authority-data"])
    path = Path(cluster["certificate-authority"])
    return (path if path.is_absolute() else base / path).read_bytes()


@dataclass(frozen=True)
class Named:
    name: str


@dataclass(frozen=True)
class EventView:
    """An events.k8s.io/v1 Event read as plain JSON: the client's model refuses the real cert-manager's Events
    (eventTime null), which share the test namespaces with payguard's."""

    metadata: Named
    type: str
    reason: str
    note: str
    reporting_controller: str
    regarding: Named | None


def list_events(cluster: TestCluster, namespace: str) -> list[EventView]:
    listed = client.CustomObjectsApi(cluster.api_client).list_namespaced_custom_object(
        "events.k8s.io", "v1", namespace, "events"
    )
    return [
        EventView(
            metadata=Named(item["metadata"]["name"]),
            type=item.get("type", ""),
            reason=item.get("reason", ""),
            note=item.get("note", ""),
            reporting_controller=item.get("reportingController", ""),
            regarding=Named(item["regarding"].get("name", "")) if item.get("regarding") else None,
        )
        for item in listed.get("items", [])
    ]
