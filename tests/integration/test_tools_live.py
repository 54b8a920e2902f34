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
