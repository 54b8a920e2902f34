"""Owns the PaymentServices the benchmark applies: examples/checkout.yaml (4 workloads, 16 children)
under unique names, spread over a few namespaces, applied by the admin with server-side apply, each with
its ServiceAccounts and one injected pod per workload.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from bench import REPO
from kube import TestCluster
from mesh_pods import enrolment, namespace_manifest

EXAMPLE = REPO / "examples" / "checkout.yaml"
APPLY_THREADS = 8
FIELD_MANAGER = "payguard-bench"


def checkout_template() -> dict[str, Any]:
    [document] = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return dict(document)


def workload_count() -> int:
    return len(checkout_template()["spec"]["workloads"])


@dataclass(frozen=True)
class Batch:
    """A set of PaymentServices applied together, in namespaces of their own."""

    label: str
    namespaces: tuple[str, ...]
    manifests: tuple[dict[str, Any], ...]

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(m["metadata"]["namespace"], m["metadata"]["name"]) for m in self.manifests]

    def __len__(self) -> int:
        return len(self.manifests)


def checkout_copy(template: dict[str, Any], *, name: str, namespace: str) -> dict[str, Any]:
    """The checkout example as its own platform: its workloads get their own selector and ServiceAccounts.

    Two verbatim copies in one namespace would select the same pods and share ServiceAccounts, which
    payguard rightly reports (LeastPrivilege=False, so never Ready).
    """
    manifest = copy.deepcopy(template)
    manifest["metadata"] = {"name": name, "namespace": namespace}
    for workload in manifest["spec"]["workloads"]:
        workload["selector"]["app.kubernetes.io/part-of"] = name
        workload["serviceAccount"] = f"{name}-{workload['serviceAccount']}"
    return manifest


def make_batch(label: str, count: int, *, per_namespace: int) -> Batch:
    """`count` copies of the checkout example named svc-0001..., `per_namespace` to a namespace."""
    namespaces = tuple(f"{label}-{index}" for index in range(math.ceil(count / per_namespace)))
    template = checkout_template()
    manifests = tuple(
        checkout_copy(template, name=f"svc-{index + 1:04d}", namespace=namespaces[index // per_namespace])
        for index in range(count)
    )
    return Batch(label=label, namespaces=namespaces, manifests=manifests)


ENROLMENT_SETTLE_SECONDS = 2.0


def create_namespaces(admin: TestCluster, batch: Batch) -> None:
    """The batch's namespaces, labelled for injection, with what each PaymentService's workloads need to be
    observed in the mesh (payguard calls a service Ready only then): its ServiceAccounts and one injected
    pod per workload. Then a moment for the watchers to take them in, so a burst times the
    PaymentServices, not the enrolment."""
    for namespace in batch.namespaces:
        admin.apply(namespace_manifest(namespace))
    objects = [manifest for service in batch.manifests for manifest in enrolment(service)]
    with ThreadPoolExecutor(max_workers=APPLY_THREADS, thread_name_prefix="enrol") as pool:
        for kind in ("ServiceAccount", "Pod"):  # a pod is admitted only once its ServiceAccount exists
            chosen = [manifest for manifest in objects if manifest["kind"] == kind]
            list(pool.map(lambda manifest: admin.apply(manifest, field_manager=FIELD_MANAGER), chosen))
    time.sleep(ENROLMENT_SETTLE_SECONDS)


def delete_namespaces(admin: TestCluster, namespaces: Sequence[str], *, timeout: float = 300.0) -> bool:
    """Deletes namespaces and waits until they are gone (the namespace controller empties them)."""
    core = client.CoreV1Api(admin.api_client)
    for namespace in namespaces:
        core.delete_namespace(namespace)
    deadline = time.monotonic() + timeout
    remaining = set(namespaces)
    while remaining and time.monotonic() < deadline:
        existing = {ns.metadata.name for ns in core.list_namespace().items}
        remaining &= existing
        if remaining:
            time.sleep(0.5)
    return not remaining


@dataclass(frozen=True)
class Applied:
    body: dict[str, Any]  # the live PaymentService the apply returned (with its uid)
    started: float  # time.time() just before the request


def apply_batch(
    admin: TestCluster,
    batch: Batch,
    *,
    on_applied: Callable[[Applied], None] | None = None,
) -> dict[tuple[str, str], Applied]:
    """Applies every PaymentService of the batch at once (a pool of threads); calls on_applied for each."""

    def apply_one(manifest: dict[str, Any]) -> Applied:
        started = time.time()
        body = admin.apply(manifest, field_manager=FIELD_MANAGER).to_dict()
        applied = Applied(body=body, started=started)
        if on_applied is not None:
            on_applied(applied)
        return applied

    with ThreadPoolExecutor(max_workers=APPLY_THREADS, thread_name_prefix="apply") as pool:
        results = list(pool.map(apply_one, batch.manifests))
    return {(r.body["metadata"]["namespace"], r.body["metadata"]["name"]): r for r in results}
