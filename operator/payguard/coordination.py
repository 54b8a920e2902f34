"""Owns payguard's calls to the coordination.k8s.io/v1 Lease API: list a group's Leases, create, update
(guarded by the resourceVersion that was read) and release. Only in the operator's own namespace."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, cast

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from payguard.api import ApiError
from payguard.leases import LEASE_GROUP_LABEL

GROUP, VERSION, PLURAL = "coordination.k8s.io", "v1", "leases"


class LeaseConflictError(ApiError):
    """Another replica wrote the Lease since it was read (409): this one lost the race, and retries."""


class LeaseApi:
    """Lease I/O with a short timeout per request: a renew that hangs must not outlive the deadline."""

    def __init__(self, api_client: client.ApiClient, *, namespace: str, timeout: float) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.timeout = timeout

    def list(self, group: str) -> list[dict[str, Any]]:
        try:
            listed = self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=f"{LEASE_GROUP_LABEL}={group}",
                _request_timeout=self.timeout,
            )
        except ApiException as error:
            raise _error(f"List Leases in {self.namespace}", error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ApiError(f"List Leases in {self.namespace}", 0, str(error)) from None
        return list(cast(Mapping[str, Any], listed).get("items") or [])

    def write(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Creates the Lease, or updates it when the body carries the resourceVersion it was read at."""
        name = body["metadata"]["name"]
        action = f"Write Lease {self.namespace}/{name}"
        try:
            if body["metadata"].get("resourceVersion"):
                written = self._custom.replace_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name, dict(body), _request_timeout=self.timeout
                )
            else:
                written = self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, dict(body), _request_timeout=self.timeout
                )
        except ApiException as error:
            raise _error(action, error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ApiError(action, 0, str(error)) from None
        return cast(dict[str, Any], written)

    def delete(self, name: str, *, resource_version: str) -> None:
        """Deletes exactly the version that was read (a replica that came back meanwhile keeps its Lease)."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=resource_version)
        )
        try:
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, body=options, _request_timeout=self.timeout
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise _error(f"Delete Lease {self.namespace}/{name}", error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ApiError(f"Delete Lease {self.namespace}/{name}", 0, str(error)) from None


def _error(action: str, error: ApiException) -> ApiError:
    message = str(error.reason or "")
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        message = str(json.loads(error.body or "{}").get("message", message))
    kind = LeaseConflictError if error.status == 409 else ApiError
    return kind(action, int(error.status or 0), message)
