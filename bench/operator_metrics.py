"""Owns the reading of payguard's own Prometheus metrics (passes run, time spent in passes), scraped from
its loopback metrics port, so the benchmark knows when a resync or a restart pass has happened.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class PassCounters:
    passes: float  # payguard_reconciles_total, every result
    pass_seconds: float  # payguard_reconcile_duration_seconds_sum


def scrape(port: int) -> PassCounters:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    passes = pass_seconds = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "payguard_reconciles_total":
                passes += sample.value
            elif sample.name == "payguard_reconcile_duration_seconds_sum":
                pass_seconds += sample.value
    return PassCounters(passes=passes, pass_seconds=pass_seconds)


def wait_for_quiet(port: int, *, quiet_seconds: float, timeout: float, interval: float = 0.25) -> bool:
    """Waits until no pass has run for `quiet_seconds` (the queue has drained); False on timeout."""
    deadline = time.monotonic() + timeout
    last = scrape(port).passes
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = scrape(port).passes
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_seconds:
            return True
    return False


def wait_for_passes(port: int, *, at_least: float, timeout: float, interval: float = 0.1) -> bool:
    """Waits until payguard_reconciles_total reaches `at_least`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape(port).passes >= at_least:
            return True
        time.sleep(interval)
    return False
