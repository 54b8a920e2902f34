"""Owns the judgement whether a watch-fed cache missed something (pure): a list read while the watch goes
on is compared with the cache by resourceVersion, and only an object no watch event touched meanwhile
can show a miss (an object the watch changed during the list may differ from the list either way)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

Key = tuple[str, str]  # (namespace, name); "" for cluster-scoped objects
Versions = Mapping[Key, str]  # key -> resourceVersion


def missed(*, listed: Versions, cached: Versions, touched: Collection[Key]) -> list[Key]:
    """Objects whose listed and cached versions differ (one of them absent included), but for those the
    watch delivered an event for since the list began: what the cache would have wrong had no event come."""
    differing = {key for key in listed.keys() | cached.keys() if listed.get(key) != cached.get(key)}
    return sorted(differing.difference(touched))
