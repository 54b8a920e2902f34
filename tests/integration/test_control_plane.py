"""The local control plane is a real Kubernetes: RBAC, garbage collection and the real Istio and
cert-manager schemas behave as they do on a production cluster. Its faults are real too: a component
restarts in place, etcd can be written behind the API server's back, and compaction expires old watches."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kube import TestCluster
from localcluster import LocalCluster, pinned_versions


def wait_until(predicate: Any, *, timeout: float = 60.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_api_server_reports_the_pinned_kubernetes_version(cluster: TestCluster) -> None:
    version = client.VersionApi(cluster.api_client).get_code()
    if not cluster.is_local:
        pytest.skip("PAYGUARD_TEST_KUBECONFIG points at an external cluster with its own version")
    assert version.git_version == pinned_versions()["KUBERNETES_VERSION"]


def test_service_account_without_bindings_is_forbidden_to_list_payment_services(
    cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    kubeconfig = cluster.kubeconfig_for_service_account(
        namespace=namespace, service_account="reader", directory=tmp_path
    )

    with cluster.client_for(kubeconfig) as as_reader:
        with pytest.raises(ApiException) as forbidden:
            client.CustomObjectsApi(as_reader).list_namespaced_custom_object(
                "payguard.dev", "v1alpha1", namespace, "paymentservices"
            )
        assert forbidden.value.status == 403

    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-paymentservices"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["payguard.dev"], resources=["paymentservices"], verbs=["list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-paymentservices"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-paymentservices"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    with cluster.client_for(kubeconfig) as as_reader:
        listed = client.CustomObjectsApi(as_reader).list_namespaced_custom_object(
            "payguard.dev", "v1alpha1", namespace, "paymentservices"
        )
    assert listed["items"] == []


def test_deleting_an_owner_garbage_collects_its_dependents(cluster: TestCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, controller=True
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])),
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    assert wait_until(dependent_is_gone), (
        "kube-controller-manager's garbage collector did not remove the dependent"
    )


def test_new_namespace_gets_a_default_service_account(cluster: TestCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)

    def has_default() -> bool:
        return any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items
        )

    assert wait_until(has_default), "the service account controller did not create the default ServiceAccount"


def peer_authentication(name: str, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "orders"}}, "mtls": {"mode": mode}},
    }


def test_istio_schema_rejects_an_unknown_mtls_mode(cluster: TestCluster, namespace: str) -> None:
    with pytest.raises(ApiException) as rejected:
        cluster.apply(peer_authentication("bogus", "BOGUS"), namespace=namespace)
    assert rejected.value.status == 422
    assert "spec.mtls.mode" in rejected.value.body


def test_istio_schema_accepts_strict_mtls(cluster: TestCluster, namespace: str) -> None:
    live = cluster.apply(peer_authentication("strict", "STRICT"), namespace=namespace)
    assert live.spec.mtls.mode == "STRICT"


def certificate(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "orders"},
        "spec": spec,
    }


def test_cert_manager_schema_rejects_a_certificate_without_secret_name(
    cluster: TestCluster, namespace: str
) -> None:
    spec = {
        "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"},
        "uris": ["spiffe://cluster.local/ns/x/sa/y"],
    }
    with pytest.raises(ApiException) as rejected:
        cluster.apply(certificate(spec), namespace=namespace)
    assert rejected.value.status == 422
    assert "spec.secretName" in rejected.value.body


def test_cert_manager_schema_accepts_a_complete_certificate(cluster: TestCluster, namespace: str) -> None:
    spec = {
        "secretName": "orders-tls",
        "issuerRef": {"name": "payments-ca", "kind": "ClusterIssuer"},
        "uris": ["spiffe://cluster.local/ns/x/sa/y"],
        "duration": "24h",
    }
    live = cluster.apply(certificate(spec), namespace=namespace)
    assert live.spec.secretName == "orders-tls"


# --- faults: a second local control plane of this module's own, so restarts never disturb other tests


@pytest.fixture(scope="module")
def faulty(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if not cluster.is_local:
        pytest.skip("fault injection needs the local control plane; PAYGUARD_TEST_KUBECONFIG names another")
    local = LocalCluster(state_dir=tmp_path_factory.mktemp("faults") / "cluster")
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def faulty_api(faulty: LocalCluster) -> TestCluster:
    """One admin client for the whole module: made before any restart, it must survive all of them."""
    return TestCluster(faulty.kubeconfig)


@pytest.fixture
def faulty_namespace(faulty_api: TestCluster) -> Iterator[str]:
    name = faulty_api.create_namespace("fault")
    yield name
    faulty_api.delete_namespace(name)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def is_gone(read: Any) -> bool:
    try:
        read()
    except ApiException as error:
        return error.status == 404
    return False


@pytest.mark.parametrize(
    ("component", "kill"),
    [("kube-apiserver", False), ("kube-apiserver", True), ("etcd", True), ("kube-controller-manager", True)],
)
def test_a_restarted_component_keeps_its_port_and_data_and_clients_keep_working(
    faulty: LocalCluster, faulty_api: TestCluster, faulty_namespace: str, component: str, kill: bool
) -> None:
    core = client.CoreV1Api(faulty_api.api_client)
    core.create_namespaced_config_map(
        faulty_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"), data={"k": "v"})
    )
    ports, server = faulty.ports(), faulty.server_url()
    # A LocalCluster made later for the same state dir knows the ports and command lines from up().
    later = LocalCluster(state_dir=faulty.state_dir)

    later.stop_component(component, kill=kill)
    assert not faulty.is_running()
    assert refuses_connections(ports[component])
    later.start_component(component)

    assert faulty.is_running()
    assert (faulty.ports(), faulty.server_url()) == (ports, server)
    assert core.read_namespaced_config_map("kept", faulty_namespace).data == {"k": "v"}
    core.create_namespaced_config_map(
        faulty_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="written-after"))
    )
    # The controller manager works again too: a new namespace gets its default ServiceAccount.
    fresh = faulty_api.create_namespace("fault")
    try:
        assert wait_until(
            lambda: any(
                sa.metadata.name == "default" for sa in core.list_namespaced_service_account(fresh).items
            )
        )
    finally:
        faulty_api.delete_namespace(fresh)


def paymentservice(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "payguard.dev/v1alpha1",
        "kind": "PaymentService",
        "metadata": {"name": name},
        "spec": {
            "workloads": [{"name": "api", "selector": {"app": "orders"}, "serviceAccount": "orders"}],
            "certificates": {"issuerRef": {"name": "payments-ca"}},
        },
    }


# (group, plural, the manifest): what the chaos suite deletes behind the API server's back.
STORED_OBJECTS = [
    (
        "networking.k8s.io",
        "networkpolicies",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "orders"},
            "spec": {"podSelector": {}},
        },
    ),
    (
        "security.istio.io",
        "authorizationpolicies",
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "orders"},
            "spec": {},
        },
    ),
    ("payguard.dev", "paymentservices", paymentservice("orders")),
]


def test_object_key_is_where_the_api_server_stores_each_object(
    faulty: LocalCluster, faulty_api: TestCluster, faulty_namespace: str
) -> None:
    for _, _, manifest in STORED_OBJECTS:
        faulty_api.apply(manifest, namespace=faulty_namespace)

    stored = [key for key in faulty.etcd_keys("/registry/") if f"/{faulty_namespace}/" in key]

    expected = [
        f"/registry/networkpolicies/{faulty_namespace}/orders",
        f"/registry/security.istio.io/authorizationpolicies/{faulty_namespace}/orders",
        f"/registry/payguard.dev/paymentservices/{faulty_namespace}/orders",
    ]
    # Besides ours, only the default ServiceAccount the controller manager may have created by now.
    assert sorted(key for key in stored if "/serviceaccounts/" not in key) == sorted(expected)
    for (group, plural, manifest), key in zip(STORED_OBJECTS, expected, strict=True):
        assert faulty.object_key(group, plural, faulty_namespace, manifest["metadata"]["name"]) == key


def test_an_object_deleted_through_etcd_while_the_api_server_is_down_is_gone_after_restart(
    faulty: LocalCluster, faulty_api: TestCluster, faulty_namespace: str
) -> None:
    for _, _, manifest in STORED_OBJECTS:
        faulty_api.apply(manifest, namespace=faulty_namespace)
    faulty_api.apply(paymentservice("untouched"), namespace=faulty_namespace)

    faulty.stop_component("kube-apiserver")
    for group, plural, manifest in STORED_OBJECTS:
        assert (
            faulty.etcd_delete(
                faulty.object_key(group, plural, faulty_namespace, manifest["metadata"]["name"])
            )
            == 1
        )
    faulty.start_component("kube-apiserver")

    for _, _, manifest in STORED_OBJECTS:
        resource = faulty_api.resource(manifest["apiVersion"], manifest["kind"])
        assert is_gone(lambda r=resource: r.get(name="orders", namespace=faulty_namespace)), manifest["kind"]
    survivor = faulty_api.resource("payguard.dev/v1alpha1", "PaymentService").get(
        name="untouched", namespace=faulty_namespace
    )
    assert survivor.metadata.name == "untouched"


def watch_status(core: client.CoreV1Api, namespace: str, resource_version: str) -> int | None:
    """The HTTP status a watch from resource_version ends with: 410 raised or sent as an ERROR event."""
    try:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=resource_version, timeout_seconds=3
        ):
            if event["type"] == "ERROR":
                return int(event["raw_object"]["code"])
    except ApiException as error:
        return int(error.status)
    return None


def test_after_compaction_a_watch_from_an_old_resource_version_gets_410_gone(
    faulty: LocalCluster, faulty_api: TestCluster, faulty_namespace: str
) -> None:
    core = client.CoreV1Api(faulty_api.api_client)
    created = core.create_namespaced_config_map(
        faulty_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="churn"))
    )
    old = created.metadata.resource_version
    for i in range(3):
        core.patch_namespaced_config_map("churn", faulty_namespace, {"data": {"i": str(i)}})

    # The apiserver's watch cache would replay recent history whatever etcd holds; restarting it
    # around the compaction is what lets clients see the compacted store, as after a real outage.
    faulty.stop_component("kube-apiserver")
    revision = faulty.etcd_revision()
    assert faulty.etcd_compact() == revision >= int(old)
    faulty.start_component("kube-apiserver")

    assert watch_status(core, faulty_namespace, old) == 410
    # An exact read at the old version goes to etcd itself, which has compacted it away.
    with pytest.raises(ApiException) as expired:
        core.list_namespaced_config_map(
            faulty_namespace, resource_version=old, resource_version_match="Exact"
        )
    assert expired.value.status == 410
