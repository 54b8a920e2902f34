"""Owns the check of egress CIDRs against the cluster's own pod and Service networks (when configured).

An egress CIDR inside the pod network reaches every pod there on the declared port (CNI-dependent), and
one inside the Service network every Service: in-cluster targets are declared as workloads instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from payguard.model import InvalidSpec, PaymentService
from payguard.platform import Network


def check_cluster_networks(service: PaymentService, networks: Sequence[tuple[str, Network]]) -> None:
    """Raises InvalidSpec naming the first egress CIDR that overlaps a (flag, network) of the cluster."""
    for workload_index, workload in enumerate(service.workloads):
        for index, rule in enumerate(workload.egress):
            if rule.cidr is None:
                continue
            for flag, network in networks:
                if rule.cidr.version == network.version and rule.cidr.overlaps(network):
                    raise InvalidSpec(
                        f"spec.workloads[{workload_index}].egress[{index}].cidr",
                        f"{rule.cidr} overlaps the cluster network {network} ({flag}): declare an "
                        "in-cluster target as a workload, not as a CIDR",
                    )
