"""A PaymentService pass against the in-memory fake cluster: the World the whole-pass unit tests share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from fake_cluster import FakeCluster
from mesh_pods import enrolment, namespace_manifest
from payguard.cache import ObjectCache
from payguard.fights import DriftHistory
from payguard.platform import Platform
from payguard.reconcile import PassContext, PassReport, reconcile

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
NOW_TEXT = "2031-03-04T05:06:07Z"
LATER = datetime(2031, 3, 5, 9, 0, 0, tzinfo=UTC)
CHILD_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "NetworkPolicy", "Certificate")
CHECKOUT_WORKLOADS = ("api-gateway", "order-service", "fraud-engine", "settlement-gateway")
SERVICE = "PaymentService"


# --- builders --------------------------------------------------------------------------------------------


def example(stem: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / f"{stem}.yaml").read_text())
    body["spec"].update(spec)
    return body


class World:
    """One fake cluster, the cache its watch feeds, and the context a pass runs with."""

    def __init__(
        self,
        *,
        audit_only: bool = False,
        platform: Platform | None = None,
        clock: Callable[[], datetime] = lambda: NOW,
    ) -> None:
        self.cluster = FakeCluster()
        self.cache = ObjectCache()
        self.context = PassContext(
            cluster=self.cluster,
            cache=self.cache,
            platform=platform or Platform(),
            mesh_root_namespace="istio-system",
            mesh_config_name="istio",
            audit_only=audit_only,
            drift_history=DriftHistory(window=timedelta(seconds=300)),
            clock=clock,
        )

    def create(self, body: dict[str, Any], *, generation: int = 1, enrol: bool = True) -> dict[str, Any]:
        """The PaymentService as the API server stores it, delivered to the cache; with `enrol`, its
        namespace labelled for injection and one injected pod per workload under its ServiceAccount."""
        body["metadata"]["generation"] = generation
        if enrol:
            namespace = body["metadata"]["namespace"]
            for manifest in [namespace_manifest(namespace), *enrolment(body)]:
                metadata = manifest["metadata"]
                if (
                    self.cluster.get(manifest["kind"], metadata.get("namespace", ""), metadata["name"])
                    is None
                ):
                    self.cluster.seed(manifest)
        live = self.cluster.seed(body)
        self.cluster.deliver(self.cache)
        return live

    def run(self, body: dict[str, Any], context: PassContext | None = None) -> PassReport:
        """One pass on a clean call log, then the watch delivers what it wrote."""
        self.cluster.reset_calls()
        report = reconcile(body, context or self.context)
        self.cluster.deliver(self.cache)
        return report

    def latest(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body["metadata"]
        live = self.cluster.get(SERVICE, metadata["namespace"], metadata["name"])
        assert live is not None
        return live

    def settled(self, stem: str, **spec: Any) -> dict[str, Any]:
        """A PaymentService after its first pass, as the next trigger would deliver it."""
        body = self.create(example(stem, **spec))
        self.run(body)
        return self.latest(body)

    def edit_spec(self, body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """An edit of the PaymentService spec; the API server bumps the generation."""

        def edit(live: dict[str, Any]) -> None:
            change(live["spec"])
            live["metadata"]["generation"] += 1

        metadata = body["metadata"]
        self.cluster.edit(SERVICE, metadata["namespace"], metadata["name"], edit)
        self.cluster.deliver(self.cache)
        return self.latest(body)

    def verbs(self) -> list[str]:
        return [call.verb for call in self.cluster.calls]

    def applied(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            dict(call.payload) for call in self.cluster.calls_of("apply") if kind is None or call.kind == kind
        ]


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body["status"]["conditions"]}


def events(world: World, reason: str) -> list[Any]:
    return [event for event in world.cluster.events if event["reason"] == reason]
