"""Owns the comparison of a desired child with its live copy: which field paths drifted (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payguard.kinds import DRY_RUN_ANNOTATION

FieldKeys = tuple[str, ...]  # map keys from the top of the object, e.g. ("spec", "portLevelMtls", "8443")
# Annotations that switch a policy off when present (Istio skips enforcing a dry-run policy): anyone may
# add annotations, but on a payguard object these only ever carry the value payguard renders.
GUARDED_ANNOTATIONS = (DRY_RUN_ANNOTATION,)


@dataclass(frozen=True)
class Drift:
    """How a live object differs from what payguard wants.

    `changed` are field paths whose live value differs from, or lacks, the desired one. `foreign` are map
    keys present only on the live object (outside lists), and guarded annotations: server-side apply
    leaves fields it does not own in place, so the repair removes them explicitly. Lists are atomic in
    every kind payguard writes, so anything extra inside a list is reverted by one apply (`changed`).
    """

    changed: tuple[str, ...] = ()
    foreign: tuple[FieldKeys, ...] = ()
    by: tuple[str, ...] = ()  # the field managers that wrote the drifted fields, when known

    @property
    def description(self) -> str:
        """`spec.mtls.mode (by kubectl-edit (Update))`: what an Event and InSync's message say."""
        paths = ", ".join(self.paths)
        return f"{paths} (by {', '.join(self.by)})" if self.by else paths

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(sorted({*self.changed, *(format_keys(keys) for keys in self.foreign)}))

    def __bool__(self) -> bool:
        return bool(self.changed or self.foreign)


def format_keys(keys: FieldKeys) -> str:
    """`spec.selector.matchLabels[app.kubernetes.io/name]`: dotted, with dotted keys in brackets."""
    text = keys[0]
    for key in keys[1:]:
        text += f"[{key}]" if "." in key or "/" in key else f".{key}"
    return text


def detect_drift(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Drift:
    """The spec must match exactly; in metadata only what payguard sets counts (others may add labels)."""
    changed: list[str] = []
    foreign: list[FieldKeys] = []
    desired_meta, live_meta = desired.get("metadata", {}), live.get("metadata", {})
    for field in ("labels", "annotations"):
        live_values = live_meta.get(field) or {}
        for key, value in (desired_meta.get(field) or {}).items():
            if live_values.get(key) != value:
                changed.append(format_keys(("metadata", field, key)))
    unwanted = set(live_meta.get("annotations") or {}) - set(desired_meta.get("annotations") or {})
    foreign.extend(("metadata", "annotations", key) for key in GUARDED_ANNOTATIONS if key in unwanted)
    live_owners = {ref.get("uid"): ref for ref in live_meta.get("ownerReferences") or []}
    for ref in desired_meta.get("ownerReferences") or []:
        if live_owners.get(ref["uid"], {}).get("controller") is not True:
            changed.append("metadata.ownerReferences")
    _compare(
        desired.get("spec"), live.get("spec"), ("spec",), changed=changed, foreign=foreign, in_list=False
    )
    return Drift(changed=tuple(changed), foreign=tuple(foreign))


def _compare(
    desired: Any, live: Any, keys: FieldKeys, *, changed: list[str], foreign: list[FieldKeys], in_list: bool
) -> None:
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        for key, value in desired.items():
            if key not in live:
                changed.append(format_keys((*keys, key)))
            else:
                _compare(value, live[key], (*keys, key), changed=changed, foreign=foreign, in_list=in_list)
        for key in live:
            if key in desired:
                continue
            if in_list:
                changed.append(format_keys((*keys, key)))
            else:
                foreign.append((*keys, key))
    elif isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            _compare(
                want,
                have,
                (*keys[:-1], f"{keys[-1]}[{index}]"),
                changed=changed,
                foreign=foreign,
                in_list=True,
            )
    elif desired != live:
        changed.append(format_keys(keys))  # formatted only when it differs: most fields do not
