"""The chart's ValidatingAdmissionPolicies on the real API server, applied exactly as `helm template`
renders them: a cde PaymentService is deleted only with payguard.dev/allow-delete, and a
PaymentServiceException must name a declared workload and its true requester. The CRD's own rules (the
24h cap) are checked too. The policies are cluster-wide, so each test removes them before its namespace
goes (the local control plane's namespace controller is not the exempted ServiceAccount)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_lifecycle import service_gone
from test_reconcile import apply_and_wait_ready, checkout, custom

from chart_tools import render
from kube import TestCluster
from operator_harness import eventually

pytestmark = pytest.mark.usefixtures("payguard_operator")

GROUP, VERSION = "payguard.dev", "v1alpha1"
ADMISSION_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


@pytest.fixture
def admission_policies(cluster: TestCluster, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """The chart's policies and bindings (default values) on the cluster for one test."""
    documents = [d for d in render() if d["kind"] in ADMISSION_KINDS]
    for document in documents:
        cluster.apply(document)
    try:
        yield documents
    finally:
        for document in reversed(documents):
            cluster.resource(document["apiVersion"], document["kind"]).delete(
                name=document["metadata"]["name"]
            )
        # The API server drops a deleted policy from its informer a moment later: wait until it no longer
        # refuses what only the policies refuse, so the next test does not meet them.
        eventually(
            lambda: create_dry_run(cluster, exception(namespace)) == "",
            what="the API server to stop enforcing the removed policies",
        )


def refusal(call: Any) -> str:
    """The API server's message when it refuses the call, else ""."""
    try:
        call()
    except ApiException as error:
        if error.status in (403, 422):
            return str(error.body)
        raise
    return ""


def delete_dry_run(cluster: TestCluster, namespace: str, name: str = "checkout") -> str:
    return refusal(
        lambda: custom(cluster).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "paymentservices", name, dry_run="All"
        )
    )


def my_username(cluster: TestCluster) -> str:
    review = client.AuthenticationV1Api(cluster.api_client).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    )
    return str(review.status.user_info.username)


def exception(namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PaymentServiceException",
        "metadata": {"name": "incident-4711", "namespace": namespace},
        "spec": {
            "paymentService": "checkout",
            "workload": "order-service",
            "allow": {
                "caller": {
                    "principal": {"namespace": "support", "serviceAccount": "debugger"},
                    "ports": [8443],
                }
            },
            "reason": "INC-4711: authorisations failing, support must reach order-service",
            "ticket": "INC-4711",
            "requestedBy": "someone",
            "duration": "1h",
        },
    }
    body["spec"].update(spec)
    return body


def create_dry_run(cluster: TestCluster, body: dict[str, Any]) -> str:
    return refusal(
        lambda: custom(cluster).create_namespaced_custom_object(
            GROUP,
            VERSION,
            body["metadata"]["namespace"],
            "paymentserviceexceptions",
            copy.deepcopy(body),
            dry_run="All",
        )
    )


def test_cde_payment_service_is_deleted_only_with_the_allow_delete_annotation(
    cluster: TestCluster, namespace: str, admission_policies: list[dict[str, Any]]
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))

    message = eventually(lambda: delete_dry_run(cluster, namespace), what="the deletion guard to refuse")

    assert "payguard.dev/allow-delete" in message
    assert (
        f"kubectl annotate paymentservice checkout -n {namespace} payguard.dev/allow-delete=true" in message
    )
    custom(cluster).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "paymentservices",
        "checkout",
        {"metadata": {"annotations": {"payguard.dev/allow-delete": "true"}}},
        _content_type="application/merge-patch+json",
    )
    eventually(lambda: not delete_dry_run(cluster, namespace), what="the annotated deletion to be admitted")
    custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, namespace, "paymentservices", "checkout")
    eventually(lambda: service_gone(cluster, namespace), what="the PaymentService to be deleted")


def test_a_payment_service_outside_the_cde_is_deleted_without_the_annotation(
    cluster: TestCluster, namespace: str, admission_policies: list[dict[str, Any]]
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    eventually(lambda: delete_dry_run(cluster, namespace), what="the deletion guard to be active")
    cluster.apply(checkout(namespace, pciScope="connected"))

    assert eventually(lambda: not delete_dry_run(cluster, namespace), what="the deletion to be admitted")


def test_exception_naming_an_undeclared_workload_or_another_requester_is_refused(
    cluster: TestCluster, namespace: str, admission_policies: list[dict[str, Any]]
) -> None:
    apply_and_wait_ready(cluster, checkout(namespace))
    me = my_username(cluster)
    good = exception(namespace, requestedBy=me)
    eventually(
        lambda: create_dry_run(cluster, exception(namespace, requestedBy="mallory")), what="policies active"
    )

    assert create_dry_run(cluster, good) == ""
    unknown = create_dry_run(cluster, exception(namespace, requestedBy=me, workload="ledger"))
    assert 'spec.workload: PaymentService checkout has no workload named \\"ledger\\"' in unknown
    impostor = create_dry_run(cluster, exception(namespace, requestedBy="mallory"))
    assert "spec.requestedBy must be the name of the user creating the exception" in impostor
    assert me in impostor


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"duration": "25h"}, "spec.duration", "duration must be at most 24h"),
        ({"duration": "24h1s"}, "spec.duration", "duration must be at most 24h"),
        ({"duration": "30s"}, "spec.duration", "duration must be at least 1m"),
        ({"duration": "1d"}, "spec.duration", "hours, minutes and seconds"),
        ({"reason": "because"}, "spec.reason", "at least 10"),
        ({"allow": {}}, "spec.allow", "exactly one of caller or egress"),
        ({"allow": {"egress": {"cidr": "0.0.0.0/0", "ports": [443]}}}, "spec.allow.egress.cidr", "too broad"),
        ({"allow": {"caller": {"workload": "api-gateway"}}}, "spec.allow.caller.ports", "Required"),
    ],
    ids=[
        "over-24h",
        "a-second-over",
        "under-1m",
        "days",
        "short-reason",
        "empty-allow",
        "any-address",
        "no-ports",
    ],
)
def test_crd_refuses_an_exception_beyond_its_limits_naming_the_field(
    cluster: TestCluster, namespace: str, spec: dict[str, Any], field: str, fragment: str
) -> None:
    message = create_dry_run(cluster, exception(namespace, **spec))

    assert field in message and fragment in message, message


def test_an_exception_is_a_record_its_spec_cannot_change(cluster: TestCluster, namespace: str) -> None:
    # Valid under the chart's policies too, so only the CRD's immutability rule can refuse the patch.
    body = exception(namespace, requestedBy=my_username(cluster))
    custom(cluster).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "paymentserviceexceptions", body
    )

    message = refusal(
        lambda: custom(cluster).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "paymentserviceexceptions",
            "incident-4711",
            {"spec": {"duration": "24h"}},
            _content_type="application/merge-patch+json",
        )
    )

    assert "spec is immutable" in message
