"""Owns direct access to the local etcd: its JSON gRPC gateway and the keys the API server stores under.

For fault injection behind the API server's back (it may be stopped): list keys, delete one, read the
revision, compact. etcd serves plain http on loopback here, so the gateway needs no client certificate.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

ETCD_PREFIX = "/registry"  # kube-apiserver's --etcd-prefix (its default, passed explicitly)

# Groups kube-apiserver serves itself, whose objects it stores without a group segment:
# /registry/<plural>/<namespace>/<name>. Everything else (CRDs, APIServices, custom resources) is stored as
# /registry/<group>/<plural>/...  Source: k8s.io/kubernetes test/integration/etcd/data.go (v1.37.2).
UNGROUPED_KEY_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apps",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "lifecycle.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)
# Built-in resources whose keys keep an older name (same source).
_LEGACY_KEY_NAMES = {
    ("", "services"): "services/specs",
    ("", "endpoints"): "services/endpoints",
    ("", "nodes"): "minions",
    ("", "replicationcontrollers"): "controllers",
    ("networking.k8s.io", "ingresses"): "ingress",
}


def object_key(group: str, plural: str, namespace: str | None, name: str) -> str:
    """The etcd key kube-apiserver stores an object under; namespace is None for cluster-scoped objects.

    >>> object_key("networking.k8s.io", "networkpolicies", "shop", "deny-all")
    '/registry/networkpolicies/shop/deny-all'
    >>> object_key("payguard.dev", "paymentservices", "shop", "orders")
    '/registry/payguard.dev/paymentservices/shop/orders'
    """
    if group in UNGROUPED_KEY_GROUPS:
        segments = [_LEGACY_KEY_NAMES.get((group, plural), plural)]
    else:
        segments = [group, plural]
    if namespace is not None:
        segments.append(namespace)
    return "/".join([ETCD_PREFIX, *segments, name])


class EtcdError(RuntimeError):
    """The etcd gateway refused a request (its gRPC code and message)."""

    def __init__(self, path: str, code: int | None, message: str) -> None:
        super().__init__(f"etcd {path}: {message} (code {code})")
        self.code = code
        self.message = message


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    """The range_end that makes a range request cover every key starting with prefix."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


@dataclass(frozen=True)
class EtcdGateway:
    """etcd's v3 API as JSON over http (POST /v3/kv/...), on its client URL."""

    client_url: str
    timeout_seconds: float = 5.0

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.client_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as error:
            try:
                details = json.loads(error.read() or b"{}")
            except ValueError:
                details = {}
            raise EtcdError(path, details.get("code"), details.get("message") or str(error)) from error

    def keys(self, prefix: str = ETCD_PREFIX + "/") -> list[str]:
        """Every key starting with prefix, sorted (a keys-only range request)."""
        reply = self._post(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix), "keys_only": True}
        )
        return sorted(base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs", []))

    def revision(self) -> int:
        """The store's current revision (what the API server reports as the newest resourceVersion)."""
        reply = self._post("/v3/kv/range", {"key": _b64(ETCD_PREFIX), "count_only": True})
        return int(reply["header"]["revision"])

    def delete(self, key: str) -> int:
        """Deletes one key; returns how many keys went (0 when it did not exist)."""
        reply = self._post("/v3/kv/deleterange", {"key": _b64(key)})
        return int(reply.get("deleted", 0))

    def compact(self, revision: int | None = None) -> int:
        """Physically compacts history up to revision (default: the current one); returns that revision.

        Compacting at or below an already compacted revision is a no-op, not an error.
        """
        target = self.revision() if revision is None else revision
        try:
            self._post("/v3/kv/compaction", {"revision": str(target), "physical": True})
        except EtcdError as error:
            if "compacted" not in error.message:
                raise
        return target
