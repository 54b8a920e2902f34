"""Test-side handle on the real cert-manager controller of the local control plane (hack/localcertmanager.py):
restarting it without the approver (so a test can deny requests, as an approval policy does), stopping it
while tests/fake_cert_manager.py plays its part, making CA ClusterIssuers, and reading what it issued."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import localcertmanager
from kube import TestCluster
from localcertmanager import APPROVER, CLUSTER_RESOURCE_NAMESPACE, CONTROLLER, CONTROLLERS

GROUP, VERSION = "cert-manager.io", "v1"


@dataclass
class CertManager:
    cluster: TestCluster

    def _local(self) -> Any:
        if self.cluster.local is None:
            pytest.skip("needs the local control plane: the cert-manager of an existing cluster is not ours")
        return self.cluster.local

    @contextmanager
    def without_approver(self) -> Iterator[None]:
        """Runs the controller without its approver: requests stay unapproved until a test decides."""
        with self._running(tuple(c for c in CONTROLLERS if c != APPROVER)):
            yield

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Stops the controller, so the stand-in can play its part for faults it cannot produce."""
        local = self._local()
        local.stop_component(CONTROLLER)
        try:
            yield
        finally:
            local.start_component(CONTROLLER)

    @contextmanager
    def _running(self, controllers: tuple[str, ...]) -> Iterator[None]:
        local = self._local()
        try:
            self._restart(local, controllers)
            yield
        finally:
            self._restart(local, CONTROLLERS)

    @staticmethod
    def _restart(local: Any, controllers: tuple[str, ...]) -> None:
        local.stop_component(CONTROLLER)
        localcertmanager.set_controllers(local.components_file, controllers)
        local.start_component(CONTROLLER)

    # -- objects

    def create_ca_cluster_issuer(self, name: str, *, with_secret: bool = True) -> None:
        """A CA ClusterIssuer; without its Secret, cert-manager reports it not Ready."""
        secret_name = f"{name}-ca"
        if with_secret:
            self.cluster.apply(localcertmanager.ca_secret(secret_name))
        self.cluster.apply(localcertmanager.cluster_issuer(name, secret_name=secret_name))

    def delete_cluster_issuer(self, name: str) -> None:
        custom = client.CustomObjectsApi(self.cluster.api_client)
        for delete in (
            lambda: custom.delete_cluster_custom_object(GROUP, VERSION, "clusterissuers", name),
            lambda: client.CoreV1Api(self.cluster.api_client).delete_namespaced_secret(
                f"{name}-ca", CLUSTER_RESOURCE_NAMESPACE
            ),
        ):
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise

    def requests(self, namespace: str) -> list[dict[str, Any]]:
        listed = client.CustomObjectsApi(self.cluster.api_client).list_namespaced_custom_object(
            GROUP, VERSION, namespace, "certificaterequests"
        )
        return list(listed["items"])

    def deny(self, namespace: str, name: str, *, reason: str, message: str) -> None:
        """Sets the Denied condition, as an approval policy does (through the status subresource)."""
        custom = client.CustomObjectsApi(self.cluster.api_client)

        def deny_once() -> None:
            request = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "certificaterequests", name
            )
            status = request.setdefault("status", {})
            status["conditions"] = [
                *(status.get("conditions") or []),
                {"type": "Denied", "status": "True", "reason": reason, "message": message},
            ]
            custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "certificaterequests", name, request
            )

        _retry_on_conflict(deny_once)

    def certificate(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            client.CustomObjectsApi(self.cluster.api_client).get_namespaced_custom_object(
                GROUP, VERSION, namespace, "certificates", name
            )
        )

    def renew(self, namespace: str, name: str) -> None:
        """What `cmctl renew` does: an Issuing=True condition, and cert-manager issues the next revision."""
        custom = client.CustomObjectsApi(self.cluster.api_client)

        def renew_once() -> None:
            certificate = self.certificate(namespace, name)
            status = certificate.setdefault("status", {})
            status["conditions"] = [
                *(c for c in status.get("conditions") or [] if c.get("type") != "Issuing"),
                {
                    "type": "Issuing",
                    "status": "True",
                    "reason": "ManuallyTriggered",
                    "message": "Certificate re-issuance manually triggered",
                },
            ]
            custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "certificates", name, certificate
            )

        _retry_on_conflict(renew_once)

    def issued_pems(self, namespace: str) -> list[bytes]:
        """Every certificate and private key cert-manager wrote to a Secret in namespace (read as admin)."""
        secrets = client.CoreV1Api(self.cluster.api_client).list_namespaced_secret(namespace).items
        return [
            base64.b64decode(value)
            for secret in secrets
            if secret.type == "kubernetes.io/tls"
            for value in (secret.data or {}).values()
            if value
        ]


def _retry_on_conflict(write: Callable[[], None], attempts: int = 10) -> None:
    """Reads and writes again when cert-manager wrote the same object in between (409 Conflict)."""
    for attempt in range(attempts):
        try:
            write()
            return
        except ApiException as error:
            if error.status != 409 or attempt == attempts - 1:
                raise
