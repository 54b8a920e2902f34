"""Owns the estimate of what payguard holds in memory: every object of the kinds it watches (and caches),
counted and sized as JSON, with the share taken by metadata.managedFields, which payguard never reads.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client, dynamic

from payguard.kinds import WATCHED_TYPES


def watched_objects_footprint(api_client: client.ApiClient) -> dict[str, Any]:
    """Lists every watched kind as the admin (not counted in the audit log) and sizes the items."""
    kinds = dynamic.DynamicClient(api_client).resources
    objects = total_bytes = managed_fields_bytes = 0
    by_kind: dict[str, int] = {}
    for resource in WATCHED_TYPES:
        api_version = resource.api_version if resource.group else resource.version  # core kinds: "v1"
        items = kinds.get(api_version=api_version, kind=resource.kind).get().to_dict()["items"]
        by_kind[resource.kind] = len(items)
        for item in items:
            objects += 1
            total_bytes += len(json.dumps(item))
            managed_fields_bytes += len(json.dumps(item["metadata"].get("managedFields") or []))
    return {
        "objects": objects,
        "by_kind": by_kind,
        "json_mib": round(total_bytes / 2**20, 1),
        "managed_fields_share": round(managed_fields_bytes / total_bytes, 2) if total_bytes else None,
    }
