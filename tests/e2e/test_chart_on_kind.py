"""The Helm chart installed on kind: the operator image runs under the chart's RBAC and pod security and
makes the example Ready. Needs Docker, kind and an image; skipped with the reason otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from chart_tools import CHART, NAMESPACE, RELEASE, helm


def docker_problem() -> str:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker engine is running (docker info failed); kind needs one"
    if shutil.which("kind") is None:
        return "kind is not installed"
    if not os.environ.get("PAYGUARD_E2E_KUBECONFIG"):
        return "PAYGUARD_E2E_KUBECONFIG is not set (make kind-up, then export the kind kubeconfig there)"
    return ""


pytestmark = pytest.mark.skipif(bool(docker_problem()), reason=f"e2e on kind skipped: {docker_problem()}")


def kubectl(*args: str) -> str:
    env = {**os.environ, "KUBECONFIG": os.environ["PAYGUARD_E2E_KUBECONFIG"]}
    return subprocess.run(["kubectl", *args], check=True, capture_output=True, text=True, env=env).stdout


def test_chart_installs_and_makes_the_example_ready() -> None:
    image = os.environ.get("PAYGUARD_E2E_IMAGE", "payguard:0.1.0")
    repository, _, tag = image.partition(":")
    subprocess.run(["kind", "load", "docker-image", image, "--name", "payguard"], check=True)
    env = {**os.environ, "KUBECONFIG": os.environ["PAYGUARD_E2E_KUBECONFIG"]}
    subprocess.run(
        [
            helm(),
            "upgrade",
            "--install",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--set",
            f"image.repository={repository}",
            "--set",
            f"image.tag={tag}",
            "--wait",
            "--timeout",
            "180s",
        ],
        check=True,
        env=env,
    )
    subprocess.run(["kubectl", "create", "namespace", "payments"], env=env, capture_output=True, check=False)
    kubectl("apply", "--server-side", "-f", "examples/checkout.yaml")
    kubectl(
        "wait",
        "paymentservice/checkout",
        "-n",
        "payments",
        "--for=jsonpath={.status.observedGeneration}=1",
        "--timeout=120s",
    )
