"""The tools against a real API server and the session operator: `render` prints what the operator applied,
`diff` previews changes from a server-side dry-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kube import TestCluster
from operator_harness import eventually
from payguard.cli import main

pytestmark = pytest.mark.usefixtures("payguard_operator")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def live_object(cluster: TestCluster, manifest: dict[str, Any]) -> dict[str, Any] | None:
    metadata = manifest["metadata"]
    try:
        found = cluster.resource(manifest["apiVersion"], manifest["kind"]).get(
            name=metadata["name"], namespace=metadata["namespace"]
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    body: dict[str, Any] = found.to_dict()
    return body


def rendered(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["render", *args]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_prints_exactly_the_children_the_operator_applied(
    cluster: TestCluster,
    namespace: str,
    example: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = yaml.safe_load(example.read_text())
    body["metadata"]["namespace"] = namespace
    live_service = cluster.apply(body).to_dict()
    manifest = tmp_path / "live.yaml"
    manifest.write_text(yaml.safe_dump(live_service))

    children = rendered(capsys, "-f", str(manifest))

    assert children
    for child in children:
        live = eventually(lambda child=child: live_object(cluster, child), what=f"{child['kind']} applied")
        assert live["spec"] == child["spec"], child["kind"]
        for field in ("labels", "annotations"):
            assert child["metadata"][field].items() <= (live["metadata"][field] or {}).items()
        assert live["metadata"]["ownerReferences"] == child["metadata"]["ownerReferences"]


def diff(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, manifest: Path, *flags: str
) -> tuple[int, str]:
    status = main(["diff", "-f", str(manifest), "--kubeconfig", str(kubeconfig), *flags])
    return status, capsys.readouterr().out


def test_diff_is_empty_when_nothing_would_change_and_shows_an_edit_when_something_would(
    cluster: TestCluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    cluster.apply(body)
    manifest = tmp_path / "checkout.yaml"
    manifest.write_text(yaml.safe_dump(body))
    settled = eventually(
        lambda: diff(capsys, cluster.kubeconfig, manifest)[0] == 0, what="children applied", timeout=60
    )
    assert settled
    assert diff(capsys, cluster.kubeconfig, manifest) == (0, "")
    # -n places a manifest that names no namespace; the platform flags move the essential egress.
    unplaced = tmp_path / "unplaced.yaml"
    unplaced.write_text(yaml.safe_dump({**body, "metadata": {"name": body["metadata"]["name"]}}))
    assert diff(capsys, cluster.kubeconfig, unplaced, "-n", namespace) == (0, "")
    status, out = diff(capsys, cluster.kubeconfig, manifest, "--dns-port", "5353")
    assert status == 1
    assert f"--- live/NetworkPolicy/{namespace}/checkout-api-gateway" in out
    assert "+    - port: 5353\n" in out

    fraud = body["spec"]["workloads"][2]
    fraud["callers"][0]["methods"] = ["POST", "PUT"]
    settlement = body["spec"]["workloads"].pop(3)
    body["spec"]["workloads"][1]["egress"] = [e for e in body["spec"]["workloads"][1]["egress"][:1]]
    manifest.write_text(yaml.safe_dump(body))
    before = live_object(cluster, {**_child("AuthorizationPolicy", "checkout-fraud-engine", namespace)})
    status, out = diff(capsys, cluster.kubeconfig, manifest)

    assert status == 1
    assert f"--- live/AuthorizationPolicy/{namespace}/checkout-fraud-engine" in out
    assert "+        - PUT\n" in out
    # The removed workload's children would be pruned: shown removed, every line a deletion.
    assert f"+++ merged/NetworkPolicy/{namespace}/checkout-{settlement['name']}" in out
    assert f"--- live/Certificate/{namespace}/checkout-order-service" not in out
    # A dry-run stores nothing.
    after = live_object(cluster, _child("AuthorizationPolicy", "checkout-fraud-engine", namespace))
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def _child(kind: str, name: str, namespace: str) -> dict[str, Any]:
    versions = {
        "AuthorizationPolicy": "security.istio.io/v1",
        "NetworkPolicy": "networking.k8s.io/v1",
    }
    return {"apiVersion": versions[kind], "kind": kind, "metadata": {"name": name, "namespace": namespace}}


def test_explain_live_names_a_foreign_widening_policy_as_the_decider(
    cluster: TestCluster, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    cluster.apply(body)
    eventually(
        lambda: live_object(cluster, _child("AuthorizationPolicy", "checkout-order-service", namespace)),
        what="the operator's policies",
    )
    argv = ["explain", "--live", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "-o", "json"]
    argv += ["--from", "monitoring/grafana", "--to", "order-service", "--port", "8443"]
    argv += ["--method", "GET", "--path", "/v1/orders"]
    assert main(argv) == 1
    capsys.readouterr()

    cluster.apply(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "open-to-monitoring", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "order-service"}},
                "rules": [{"from": [{"source": {"namespaces": ["monitoring"]}}]}],
            },
        }
    )
    main(argv)
    report = yaml.safe_load(capsys.readouterr().out)
    deciders = {layer["layer"]: (layer["verdict"], layer["decided_by"]) for layer in report["layers"]}
    assert deciders["authorization (L7)"] == (
        "allowed",
        f"AuthorizationPolicy {namespace}/open-to-monitoring rules[0]",
    )
    assert deciders["network (L3/L4)"][0] == "denied"  # the operator's NetworkPolicy still holds at L3


def test_graph_live_draws_the_payment_services_of_the_namespace_as_the_file_does(
    cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    body = yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    cluster.apply(body)
    manifest = tmp_path / "checkout.yaml"
    manifest.write_text(yaml.safe_dump(body))
    live, offline = tmp_path / "live.svg", tmp_path / "offline.svg"
    argv = ["graph", "--live", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig), "-o", str(live)]

    assert main(argv) == 0
    assert main(["graph", "-f", str(manifest), "-o", str(offline)]) == 0
    assert live.read_text() == offline.read_text()
    assert "settlement-gateway" in live.read_text()
