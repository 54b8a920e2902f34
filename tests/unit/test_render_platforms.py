"""Golden render per platform variant: the NetworkPolicies of examples/checkout.yaml as each platform
(NodeLocal DNSCache, OpenShift DNS, a revisioned istiod, istio-csr) makes them; the other children do not
depend on the platform. Regenerate after an intended change with `PAYGUARD_UPDATE_GOLDEN=1`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from payguard.platform import Platform
from payguard.render import render_children
from payguard.spec import parse_payment_service
from platform_variants import VARIANTS, platform

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden" / "platforms"
UPDATE_GOLDEN = os.environ.get("PAYGUARD_UPDATE_GOLDEN") == "1"
CHECKOUT = parse_payment_service(yaml.safe_load((REPO / "examples" / "checkout.yaml").read_text()))


def network_policies(variant_platform: Platform) -> str:
    children = render_children(CHECKOUT, platform=variant_platform)
    return yaml.safe_dump_all([c for c in children if c["kind"] == "NetworkPolicy"], sort_keys=True)


def test_every_variant_has_a_golden_file_and_none_is_orphaned() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(VARIANTS)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_checkout_network_policies_on_each_platform_match_the_golden_file(variant: str) -> None:
    rendered = network_policies(platform(variant))
    golden = GOLDEN / f"{variant}.yaml"
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered)
        pytest.fail(f"PAYGUARD_UPDATE_GOLDEN=1: rewrote {golden}; review the diff and rerun without it")
    assert golden.exists(), f"{golden} missing: run with PAYGUARD_UPDATE_GOLDEN=1 to create it"
    assert rendered == golden.read_text(), f"checkout on {variant} renders differently from {golden}"


@pytest.mark.parametrize("variant", sorted(set(VARIANTS) - {"kube-dns"}))
def test_only_the_network_policies_depend_on_the_platform(variant: str) -> None:
    others = [c for c in render_children(CHECKOUT, platform=Platform()) if c["kind"] != "NetworkPolicy"]
    moved = [c for c in render_children(CHECKOUT, platform=platform(variant)) if c["kind"] != "NetworkPolicy"]
    assert moved == others
    assert network_policies(platform(variant)) != network_policies(Platform())
