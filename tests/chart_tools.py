"""Renders the Helm chart with the pinned helm (built from the Go module proxy and cached)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from localcluster import pinned_versions

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "payguard"
ALL_OPTIONS = REPO / "tests" / "chart" / "all-options.yaml"
RELEASE = "payguard"
# helm built from source does not know its own Kubernetes version; render for the one we test against.
KUBE_VERSION = ("--kube-version", pinned_versions()["KUBERNETES_VERSION"])
NAMESPACE = "payguard-system"


@functools.cache
def helm() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-helm.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return result.stdout.strip().splitlines()[-1]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


def render(values: Path | None = None, *, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """`helm template` output as documents (CRDs included, as `helm install` would create them)."""
    args = ["template", RELEASE, str(CHART), "--namespace", namespace, "--include-crds", *KUBE_VERSION]
    if values is not None:
        args += ["--values", str(values)]
    result = run_helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [doc for doc in documents if doc["kind"] == kind]
    return found
