"""What the chaos suite works with: its own local control plane, payguard as a separate process under the
chart's RBAC, a cert-manager stand-in, and the checks that every expected control exists exactly once,
as rendered, with a status that tells the truth."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import TestCluster
from localcluster import LocalCluster
from operator_harness import OperatorProcess, eventually
from payguard.drift import detect_drift
from payguard.kinds import CHILD_TYPES, MANAGED_BY_LABEL, SERVICE_LABEL
from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "checkout.yaml"


@dataclass
class ChaosWorld:
    local: LocalCluster
    admin: TestCluster
    operator_kubeconfig: Path
    operator: OperatorProcess
    metrics_port: int
    timings: dict[str, float] = field(default_factory=dict)

    # --- the operator --------------------------------------------------------------------------------

    def start_operator(self, *flags: str, wait_started: bool = True) -> None:
        arguments = ["--metrics-port", str(self.metrics_port), "--metrics-address", "127.0.0.1", *flags]
        if wait_started:
            self.operator.start(self.operator_kubeconfig, arguments)
        else:
            self.operator.spawn(self.operator_kubeconfig, arguments)

    def probe(self, path: str) -> tuple[int, str]:
        """(status, body) of the operator's /healthz or /readyz; (0, why) when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    # --- PaymentServices -----------------------------------------------------------------------------

    def apply_checkout(self, namespace: str, name: str = "checkout") -> None:
        body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
        body["metadata"].update(name=name, namespace=namespace)
        # Several copies in one namespace must not share pods or identities, or they widen each other.
        for workload in body["spec"]["workloads"]:
            workload["selector"]["payguard.test/service"] = name
            workload["serviceAccount"] = f"{name}-{workload['serviceAccount']}"
        self.admin.enrol(body)
        self.admin.apply(body)

    def service(self, namespace: str, name: str = "checkout") -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "payguard.dev", "v1alpha1", namespace, "paymentservices", name
        )
        return body

    def ready(self, namespace: str, name: str = "checkout") -> bool:
        body = self.service(namespace, name)
        status = body.get("status") or {}
        current = status.get("observedGeneration") == body["metadata"]["generation"]
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        return current and bool(ready) and ready[0]["status"] == "True"

    def ready_message(self, namespace: str, name: str) -> str:
        conditions = (self.service(namespace, name).get("status") or {}).get("conditions") or []
        return next((c["message"] for c in conditions if c["type"] == "Ready"), "no status")

    def wait_ready(self, namespace: str, name: str = "checkout", *, timeout: float = 60) -> None:
        eventually(lambda: self.ready(namespace, name), timeout=timeout, what=f"{namespace}/{name} Ready")

    # --- the truth -----------------------------------------------------------------------------------

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.admin.api_client)

    def managed_children(self, namespace: str) -> list[dict[str, Any]]:
        found = []
        for resource in CHILD_TYPES.values():
            listed = self.custom.list_namespaced_custom_object(
                resource.group, resource.version, namespace, resource.plural
            )
            for item in listed["items"]:
                item.setdefault("kind", resource.kind)
                if (item["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == "payguard":
                    found.append(item)
        return found

    def problems(self, namespace: str, names: list[str]) -> list[str]:
        """Every way the namespace's controls differ from what the PaymentServices render: a child
        missing or drifted, an orphan, or a status saying Ready while a child is missing."""
        problems = []
        live = {(c["kind"], c["metadata"]["name"]): c for c in self.managed_children(namespace)}
        expected = set()
        for name in names:
            body = self.service(namespace, name)
            for manifest in render_children(parse_payment_service(body), platform=Platform()):
                key = (manifest["kind"], manifest["metadata"]["name"])
                expected.add(key)
                if key not in live:
                    problems.append(
                        f"missing {key}" + (" while Ready=True" if self.ready(namespace, name) else "")
                    )
                elif drift := detect_drift(manifest, live[key]):
                    problems.append(f"drifted {key}: {drift.paths}")
        orphans = [key for key in live if key not in expected]
        problems += [
            f"orphan {key} of {live[key]['metadata']['labels'].get(SERVICE_LABEL)}" for key in orphans
        ]
        return problems

    def wait_converged(
        self, namespace: str, names: list[str], *, timeout: float, ready: bool = True
    ) -> float:
        """Seconds until every control is back as rendered (and, with `ready`, every service Ready:
        that also waits for the cert-manager stand-in to sign)."""
        started = time.monotonic()
        deadline = started + timeout
        found: list[str] = ["nothing checked yet"]
        while time.monotonic() < deadline:
            try:
                found = self.problems(namespace, names)
                found += [
                    f"{n} not Ready: {self.ready_message(namespace, n)}"
                    for n in names
                    if ready and not self.ready(namespace, n)
                ]
            except (ApiException, OSError) as error:
                found = [f"API server not answering: {error}"]  # it may still be coming back
            if not found:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(
            f"{namespace} not converged after {timeout}s: {found}\n{self.operator.log()[-3000:]}"
        )

    def resource_versions(self, namespace: str) -> dict[str, str]:
        """Every managed child's and PaymentService's resourceVersion: unchanged means nothing was written."""
        versions = {
            f"{c['kind']}/{c['metadata']['name']}": c["metadata"]["resourceVersion"]
            for c in self.managed_children(namespace)
        }
        listed = self.custom.list_namespaced_custom_object(
            "payguard.dev", "v1alpha1", namespace, "paymentservices"
        )
        versions |= {
            f"PaymentService/{s['metadata']['name']}": s["metadata"]["resourceVersion"]
            for s in listed["items"]
        }
        return versions

    def assert_quiet(self, namespace: str, *, seconds: float = 3.0, within: float = 30.0) -> None:
        """Writes stop once settled: within `within` seconds comes a window of `seconds` in which every
        resourceVersion stays as it is (a certificate issued just after convergence may still move)."""
        deadline = time.monotonic() + within
        while True:
            before = self.resource_versions(namespace)
            time.sleep(seconds)
            after = self.resource_versions(namespace)
            if after == before:
                return
            assert time.monotonic() < deadline, {k: v for k, v in after.items() if before.get(k) != v}
