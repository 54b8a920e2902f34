"""Owns the estimate of what payguard holds in memory: every object of the kinds it watches (and caches),
counted and sized as JSON, with the share taken by metadata.managedFields, which payguard never reads.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from payguard.kinds import WATCHED_TYPES


def watched_objects_footprint(api_client: client.ApiClient) -> dict[str, Any]:
    """Lists every watched kind as the admin (not counted in the audit log) and sizes the items."""
    custom = client.CustomObjectsApi(api_client)
    objects = total_bytes = managed_fields_bytes = 0
    by_kind: dict[str, int] = {}
    for resource in WATCHED_TYPES:
        items = custom.list_cluster_custom_object(resource.group, resource.version, resource.plural)["items"]
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
