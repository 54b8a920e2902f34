"""Owns the measurements: single apply-to-Ready samples, bursts, the floor, no-op resync, restart, drift
repair and the profiled burst. Each returns plain figures plus the time windows in which the audit log
is counted afterwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from bench.environment import BenchEnvironment
from bench.floor import FloorClient
from bench.observer import ClusterObserver, ServiceTimes
from bench.operator_metrics import scrape, wait_for_passes, wait_for_quiet
from bench.processes import PhaseMeter, PhaseUsage
from bench.tamper import TAMPERINGS, tamper
from bench.workload import Applied, Batch, apply_batch, create_namespaces, delete_namespaces, make_batch

logger = logging.getLogger(__name__)
Window = tuple[float, float]
SINGLE_TIMEOUT_SECONDS = 60.0
DRIFT_TIMEOUT_SECONDS = 20.0


@dataclass
class Context:
    """What every scenario needs: the environment, the observer, the floor client and run settings."""

    env: BenchEnvironment
    observer: ClusterObserver
    floor: FloorClient
    per_namespace: int
    meter: PhaseMeter = field(init=False)

    def __post_init__(self) -> None:
        self.meter = PhaseMeter(self.env.sampler)

    @property
    def metrics_port(self) -> int:
        return self.env.metrics_port

    def settle(self, *, quiet_seconds: float, timeout: float) -> bool:
        """Waits until payguard has run no pass for `quiet_seconds`."""
        return wait_for_quiet(self.metrics_port, quiet_seconds=quiet_seconds, timeout=timeout)


# --- single PaymentServices, one at a time -----------------------------------------------------------


@dataclass(frozen=True)
class SingleSample:
    started: float
    own_work_seconds: float | None
    ready_seconds: float | None
    window: Window  # from the apply to the end of the last pass it caused


def single_samples(
    ctx: Context, *, label: str, samples: int, by_payguard: bool
) -> tuple[Batch, list[SingleSample]]:
    """Applies `samples` PaymentServices one after the other and times each to its milestone."""
    batch = make_batch(label, samples, per_namespace=samples)
    create_namespaces(ctx.env.admin, batch)
    milestone = "ready" if by_payguard else "own_work_done"
    results = []
    for manifest in batch.manifests:
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        started = time.time()
        body = ctx.env.admin.apply(manifest, field_manager="payguard-bench").to_dict()
        if not by_payguard:
            ctx.floor.submit(Applied(body=body, started=started))
        ctx.observer.wait_for(
            lambda key=key: ctx.observer.all_reached([key], milestone),
            timeout=SINGLE_TIMEOUT_SECONDS,
            what=f"{key} {milestone}",
        )
        if by_payguard:
            ctx.settle(quiet_seconds=0.5, timeout=15)
        else:
            ctx.floor.finish()
        times = ctx.observer.times.get(key, ServiceTimes())
        results.append(
            SingleSample(
                started=started,
                own_work_seconds=_since(started, times.own_work_done),
                ready_seconds=_since(started, times.ready),
                window=(started, time.time()),
            )
        )
    return batch, results


def _since(start: float, moment: float | None) -> float | None:
    return None if moment is None else round(moment - start, 4)


# --- bursts --------------------------------------------------------------------------------------------


@dataclass
class BurstResult:
    count: int
    started: float
    applies_seconds: float
    own_work_seconds: float | None  # last service with every child present and status observed
    ready_seconds: float | None  # last service Ready=True (includes the stand-in issuer)
    last_certificate_issued_seconds: float | None
    own_work_reached: int
    ready_reached: int
    per_service_own_work: list[float]
    per_service_ready: list[float]
    usage: PhaseUsage | None = None
    steady_rss_mib: float | None = None
    window: Window = (0.0, 0.0)
    pass_seconds: float | None = None  # time payguard spent inside passes (its histogram's sum)
    passes: float | None = None


def burst(
    ctx: Context,
    *,
    label: str,
    count: int,
    on_applied: Callable[[Applied], None] | None,
    wait_ready: bool,
) -> tuple[Batch, BurstResult]:
    """Applies `count` PaymentServices at once and waits for every one to reach its milestones."""
    batch = make_batch(label, count, per_namespace=ctx.per_namespace)
    create_namespaces(ctx.env.admin, batch)
    keys = batch.keys
    counters = scrape(ctx.metrics_port) if wait_ready else None
    ctx.meter.start()
    started = time.time()
    applied = apply_batch(ctx.env.admin, batch, on_applied=on_applied)
    applies_done = time.time()
    timeout = 120 + 1.0 * count
    ctx.observer.wait_for(
        lambda: ctx.observer.all_reached(keys, "own_work_done"), timeout=timeout, what=f"{label} own work"
    )
    if wait_ready:
        ctx.observer.wait_for(
            lambda: ctx.observer.all_reached(keys, "ready"), timeout=timeout, what=f"{label} Ready"
        )
    usage = ctx.meter.end()
    result = _burst_result(ctx, batch, applied, started=started, applies_done=applies_done)
    result.usage = usage
    if counters is not None:
        after = scrape(ctx.metrics_port)
        result.pass_seconds = round(after.pass_seconds - counters.pass_seconds, 2)
        result.passes = after.passes - counters.passes
    return batch, result


def _burst_result(
    ctx: Context,
    batch: Batch,
    applied: dict[tuple[str, str], Applied],
    *,
    started: float,
    applies_done: float,
) -> BurstResult:
    times = {key: ctx.observer.times.get(key, ServiceTimes()) for key in batch.keys}
    own = [t.own_work_done for t in times.values() if t.own_work_done is not None]
    ready = [t.ready for t in times.values() if t.ready is not None]
    namespaces = set(batch.namespaces)
    issued = [moment for key, moment in ctx.observer.issued.items() if key[1] in namespaces]
    return BurstResult(
        count=len(batch),
        started=started,
        applies_seconds=round(applies_done - started, 3),
        own_work_seconds=_since(started, max(own)) if len(own) == len(batch) else None,
        ready_seconds=_since(started, max(ready)) if len(ready) == len(batch) else None,
        last_certificate_issued_seconds=_since(started, max(issued)) if issued else None,
        own_work_reached=len(own),
        ready_reached=len(ready),
        per_service_own_work=[
            round(t.own_work_done - applied[key].started, 4)
            for key, t in times.items()
            if t.own_work_done is not None
        ],
        per_service_ready=[
            round(t.ready - applied[key].started, 4) for key, t in times.items() if t.ready is not None
        ],
    )


def floor_burst(ctx: Context, *, label: str, count: int) -> tuple[Batch, BurstResult]:
    batch, result = burst(ctx, label=label, count=count, on_applied=ctx.floor.submit, wait_ready=False)
    ctx.floor.finish()
    result.window = (result.started, time.time())
    return batch, result


def payguard_burst(ctx: Context, *, label: str, count: int) -> tuple[Batch, BurstResult]:
    batch, result = burst(ctx, label=label, count=count, on_applied=None, wait_ready=True)
    ctx.settle(quiet_seconds=3.0, timeout=180)
    result.window = (result.started, time.time())
    reading = ctx.env.sampler.reading("payguard")
    result.steady_rss_mib = None if reading is None else round(reading.rss_mib, 1)
    return batch, result


def remove_batches(ctx: Context, batches: list[Batch]) -> float:
    """Deletes the namespaces of finished floor batches (so payguard never sees them); returns seconds."""
    started = time.time()
    namespaces = [ns for batch in batches for ns in batch.namespaces]
    services = sum(len(batch) for batch in batches)
    # 500 took 54 s to empty: 2,000 needs more than the 300 s that suits the smaller scales.
    if not delete_namespaces(ctx.env.admin, namespaces, timeout=max(300.0, 0.5 * services)):
        logger.warning("namespaces %s still terminating", namespaces)
    for batch in batches:
        ctx.observer.forget(batch.keys)
    return round(time.time() - started, 1)


# --- no-op resync and restart ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietPass:
    """A round of passes over every PaymentService with nothing to change (a resync or a restart)."""

    services: int
    passes: float
    seconds: float  # from the trigger until payguard fell quiet again
    window: Window
    rss_mib: float | None


def noop_resync(ctx: Context, *, services: int, resync_seconds: float) -> QuietPass:
    """Waits for the next periodic resync and brackets it; every service gets a pass, none should write."""
    ctx.settle(quiet_seconds=2.0, timeout=300)
    before = scrape(ctx.metrics_port).passes
    started = time.time()
    wait_for_passes(ctx.metrics_port, at_least=before + 1, timeout=resync_seconds + 60, interval=0.05)
    triggered = time.time()  # the resync's first pass
    if not wait_for_passes(ctx.metrics_port, at_least=before + services, timeout=300):
        logger.warning("no full resync seen")
    ctx.settle(quiet_seconds=2.0, timeout=300)
    ended = time.time()
    reading = ctx.env.sampler.reading("payguard")
    return QuietPass(
        services=services,
        passes=scrape(ctx.metrics_port).passes - before,
        seconds=round(ended - triggered - 2.0, 2),
        window=(started, ended),
        rss_mib=None if reading is None else round(reading.rss_mib, 1),
    )


def restart(ctx: Context, *, services: int) -> QuietPass:
    """Stops payguard (SIGTERM) and starts it again; its startup pass over every service should not write."""
    ctx.settle(quiet_seconds=2.0, timeout=300)
    ctx.env.stop_operator()
    started = time.time()
    ctx.env.start_operator()
    if not wait_for_passes(ctx.metrics_port, at_least=services, timeout=300):
        logger.warning("restart: fewer than %d passes within 300s", services)
    ctx.settle(quiet_seconds=2.0, timeout=300)
    ended = time.time()
    reading = ctx.env.sampler.reading("payguard")
    return QuietPass(
        services=services,
        passes=scrape(ctx.metrics_port).passes,
        seconds=round(ended - started - 2.0, 2),
        window=(started, ended),
        rss_mib=None if reading is None else round(reading.rss_mib, 1),
    )


# --- drift repair --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSample:
    tampering: str
    child: str
    seconds: float | None  # None: not repaired within DRIFT_TIMEOUT_SECONDS
    window: Window
    # Passes payguard ran from the tampering until it was quiet again; a repair needs 2 or 3, so many
    # more mean the repair waited in the queue behind other work (a periodic resync of every service).
    passes: float


def drift_repair(ctx: Context, batch: Batch, *, samples: int, workloads: list[str]) -> list[DriftSample]:
    """Tampers children one at a time (edits and deletions) and times each until it is back as rendered."""
    custom = client.CustomObjectsApi(ctx.env.admin.api_client)
    results = []
    for index in range(samples):
        tampering = TAMPERINGS[index % len(TAMPERINGS)]
        namespace, service = batch.keys[(index * 7) % len(batch)]
        key = (tampering.kind, namespace, f"{service}-{workloads[index % len(workloads)]}")
        before = ctx.observer.child(key)
        if before is None:
            logger.warning("no %s to tamper with", key)
            continue
        passes_before = scrape(ctx.metrics_port).passes
        started = time.time()
        version = tamper(custom, tampering, namespace=namespace, name=key[2], spec=before.spec)

        def repaired(key: tuple[str, str, str] = key, version: int = version, before: Any = before) -> bool:
            now = ctx.observer.children.get(key)
            if now is None or now.event == "DELETED" or now.spec != before.spec:
                return False
            return now.uid != before.uid if version == 0 else now.resource_version > version

        done = ctx.observer.wait_for(repaired, timeout=DRIFT_TIMEOUT_SECONDS, what=f"repair of {key}")
        seen = ctx.observer.child(key)
        ctx.settle(quiet_seconds=0.3, timeout=15)
        results.append(
            DriftSample(
                tampering=tampering.name,
                child=f"{key[0]}/{key[1]}/{key[2]}",
                seconds=round(seen.seen_at - started, 4) if done and seen is not None else None,
                window=(started, time.time()),
                passes=scrape(ctx.metrics_port).passes - passes_before,
            )
        )
    return results
