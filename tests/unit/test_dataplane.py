"""Data plane mode: ambient or sidecar per workload, and its waypoints, read from Istio's own labels only."""

from __future__ import annotations

from typing import Any

import pytest

from payguard.dataplane import SIDECAR_ONLY, Waypoint, dataplanes
from payguard.model import PaymentService
from payguard.spec import parse_payment_service

AMBIENT = {"istio.io/dataplane-mode": "ambient"}


def service() -> PaymentService:
    return parse_payment_service(
        {
            "apiVersion": "payguard.dev/v1alpha1",
            "kind": "PaymentService",
            "metadata": {"name": "checkout", "namespace": "payments", "uid": "u1"},
            "spec": {
                "workloads": [
                    {"name": "api", "selector": {"app": "api"}, "serviceAccount": "api"},
                    {"name": "db", "selector": {"app": "db"}, "serviceAccount": "db"},
                ],
                "certificates": {"issuerRef": {"name": "ca"}},
            },
        }
    )


def namespace(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "payments", "labels": labels}}


def pod(name: str, app: str, *, annotations: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": app, **labels}, "annotations": annotations or {}},
        "spec": {"serviceAccountName": app},
    }


def svc(name: str, app: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"selector": {"app": app}}}


def modes(ns: dict[str, Any] | None, pods: list[dict[str, Any]]) -> dict[str, bool]:
    planes = dataplanes(service(), namespace=ns, pods=pods, services=[])
    return {name: planes.of(name).ambient for name in ("api", "db")}


def test_unlabelled_namespace_and_pods_are_sidecar_mode() -> None:
    assert modes(namespace(), [pod("api-0", "api")]) == {"api": False, "db": False}
    assert modes(None, []) == {"api": False, "db": False}


def test_ambient_namespace_makes_every_workload_ambient_even_before_its_pods_exist() -> None:
    assert modes(namespace(**AMBIENT), []) == {"api": True, "db": True}


def test_pod_label_none_opts_a_workload_out_of_an_ambient_namespace() -> None:
    pods = [pod("api-0", "api", **{"istio.io/dataplane-mode": "none"}), pod("db-0", "db")]
    planes = dataplanes(service(), namespace=namespace(**AMBIENT), pods=pods, services=[])
    assert (planes.of("api").ambient, planes.of("db").ambient) == (False, True)
    assert "opts out" in planes.of("api").why


def test_one_enrolled_pod_makes_its_workload_ambient_so_its_traffic_is_admitted() -> None:
    pods = [pod("api-0", "api", **{"istio.io/dataplane-mode": "none"}), pod("api-1", "api")]
    assert modes(namespace(**AMBIENT), pods)["api"] is True


def test_pod_label_ambient_enrols_a_workload_in_a_sidecar_namespace() -> None:
    planes = dataplanes(service(), namespace=namespace(), pods=[pod("db-0", "db", **AMBIENT)], services=[])
    assert (planes.of("api").ambient, planes.of("db").ambient) == (False, True)
    assert planes.of("db").why == "ambient mode: pod db-0 has istio.io/dataplane-mode=ambient"


def test_istio_cni_capture_mark_shows_ambient_mode_without_any_label() -> None:
    captured = pod("api-0", "api", annotations={"ambient.istio.io/redirection": "enabled"})
    assert modes(namespace(), [captured])["api"] is True


def test_a_pod_being_deleted_decides_nothing() -> None:
    leaving = pod("api-0", "api", **AMBIENT)
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert modes(namespace(), [leaving])["api"] is False


def test_namespace_waypoint_serves_the_services_that_select_the_workload() -> None:
    ns = namespace(**AMBIENT, **{"istio.io/use-waypoint": "waypoint"})
    services = [svc("api", "api"), svc("other", "frontend")]
    plane = dataplanes(service(), namespace=ns, pods=[pod("api-0", "api")], services=services).of("api")
    assert plane.waypoint_services == (("api", Waypoint("payments", "waypoint", "waypoint")),)


def test_service_label_beats_the_namespace_label_and_none_opts_a_service_out() -> None:
    ns = namespace(**AMBIENT, **{"istio.io/use-waypoint": "waypoint"})
    services = [
        svc("api", "api", **{"istio.io/use-waypoint": "api-waypoint"}),
        svc("db", "db", **{"istio.io/use-waypoint": "none"}),
    ]
    planes = dataplanes(service(), namespace=ns, pods=[], services=services)
    assert planes.of("api").waypoints == (Waypoint("payments", "api-waypoint", "api-waypoint"),)
    assert planes.of("db").waypoint_services == ()


def test_waypoint_in_another_namespace_is_named_by_use_waypoint_namespace() -> None:
    labels = {"istio.io/use-waypoint": "shared", "istio.io/use-waypoint-namespace": "mesh-waypoints"}
    planes = dataplanes(
        service(), namespace=namespace(**AMBIENT), pods=[], services=[svc("api", "api", **labels)]
    )
    assert planes.of("api").waypoints == (Waypoint("mesh-waypoints", "shared", "shared"),)
    assert (
        planes.of("api").waypoints[0].principal("cluster.local")
        == "cluster.local/ns/mesh-waypoints/sa/shared"
    )


def test_waypoint_identity_is_read_from_its_pods_when_they_are_in_view() -> None:
    ns = namespace(**AMBIENT, **{"istio.io/use-waypoint": "waypoint"})
    waypoint_pod = {
        "metadata": {
            "name": "waypoint-7d9",
            "labels": {"gateway.networking.k8s.io/gateway-name": "waypoint"},
        },
        "spec": {"serviceAccountName": "custom-waypoint-sa"},
    }
    plane = dataplanes(service(), namespace=ns, pods=[waypoint_pod], services=[svc("api", "api")]).of("api")
    assert plane.waypoints == (Waypoint("payments", "waypoint", "custom-waypoint-sa"),)


def test_sidecar_workloads_have_no_waypoints_even_in_a_waypoint_namespace() -> None:
    ns = namespace(**{"istio.io/use-waypoint": "waypoint"})
    planes = dataplanes(service(), namespace=ns, pods=[], services=[svc("api", "api")])
    assert planes.of("api").waypoint_services == ()
    assert not planes.any_ambient


@pytest.mark.parametrize("workload", ["api", "unknown"])
def test_sidecar_only_answers_sidecar_for_any_workload(workload: str) -> None:
    assert SIDECAR_ONLY.of(workload).ambient is False


def test_pods_naming_a_waypoint_of_their_own_are_listed_and_none_is_no_waypoint() -> None:
    pods = [
        pod("api-0", "api", **{"istio.io/use-waypoint": "pod-waypoint"}),
        pod("api-1", "api", **{"istio.io/use-waypoint": "none"}),
        pod("api-2", "api"),
    ]
    plane = dataplanes(service(), namespace=namespace(**AMBIENT), pods=pods, services=[]).of("api")
    assert plane.pod_waypoints == ("api-0 (istio.io/use-waypoint=pod-waypoint)",)


def test_pods_with_a_sidecar_in_an_ambient_namespace_keep_their_sidecar_mode() -> None:
    sidecar = pod("api-0", "api")
    sidecar["spec"]["containers"] = [{"name": "app"}, {"name": "istio-proxy"}]
    native = pod("db-0", "db")
    native["spec"]["initContainers"] = [{"name": "istio-proxy", "restartPolicy": "Always"}]
    planes = dataplanes(service(), namespace=namespace(**AMBIENT), pods=[sidecar, native], services=[])
    assert (planes.of("api").ambient, planes.of("db").ambient) == (False, False)
    assert "run istio-proxy" in planes.of("api").why
