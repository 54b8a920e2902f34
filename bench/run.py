"""Owns the order of a benchmark run: a fresh control plane, then for each scale the floor and payguard,
then the steady-state measurements (no-op resync, restart, drift repair, a profiled burst).

The floor runs while payguard is stopped (otherwise payguard would reconcile the floor's
PaymentServices), and its namespaces are deleted before payguard starts again, so at every scale both
see the same cluster: the earlier scales' payguard-managed services, and the cert-manager stand-in
signing in the background.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import config as kube_config

from bench.audit import AuditLog
from bench.environment import PROFILED_ARGS, BenchEnvironment
from bench.floor import FloorClient
from bench.footprint import watched_objects_footprint
from bench.observer import CHILDREN_PER_WORKLOAD, ClusterObserver
from bench.profiling import Profiler, ProfileSummary, summarise
from bench.report import write_results
from bench.results import Record, build_results
from bench.scenarios import (
    Context,
    drift_repair,
    floor_burst,
    noop_resync,
    payguard_burst,
    remove_batches,
    restart,
    single_samples,
)
from bench.workload import Batch, checkout_template, workload_count

logger = logging.getLogger("bench")


@dataclass(frozen=True)
class BenchConfig:
    mode: str  # "full" or "quick"
    scales: tuple[int, ...]  # 1: single PaymentServices one at a time; more: a burst of that many
    # Bursts measured last, after the steady state, so every other figure stays comparable from run to run.
    beyond_scales: tuple[int, ...]
    single_samples: int
    drift_samples: int
    per_namespace: int
    workers: int
    resync_seconds: float
    profiled: bool  # also a burst at profile_scale again, with py-spy attached
    profile_scale: int  # the burst profiled: the goals are set at 500, not at the largest scale
    output: Path


@dataclass
class Run:
    """A run in progress: the scenario context, what has been measured, and payguard's batches so far."""

    config: BenchConfig
    ctx: Context
    record: Record = field(default_factory=Record)
    payguard_batches: list[Batch] = field(default_factory=list)

    @property
    def services(self) -> int:
        return sum(len(batch) for batch in self.payguard_batches)


def parse_args(argv: Sequence[str] | None) -> BenchConfig:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=["full", "quick"], default="full")
    parser.add_argument("--scales", default=None, help="comma-separated, e.g. 1,100,500")
    parser.add_argument(
        "--beyond",
        default=None,
        help="bursts measured last, floor included (full: 2000; '' for none)",
    )
    parser.add_argument("--single-samples", type=int, default=None)
    parser.add_argument("--drift-samples", type=int, default=None)
    parser.add_argument("--per-namespace", type=int, default=50, help="PaymentServices per namespace")
    parser.add_argument("--workers", type=int, default=4, help="payguard's --workers, and the floor's")
    parser.add_argument("--resync-seconds", type=float, default=None)
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the burst repeated with py-spy attached"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    full = args.mode == "full"
    return BenchConfig(
        mode=args.mode,
        scales=_scales(args.scales or ("1,100,500" if full else "1,20")),
        beyond_scales=_scales(args.beyond if args.beyond is not None else ("2000" if full else "")),
        single_samples=args.single_samples or (20 if full else 5),
        drift_samples=args.drift_samples or (120 if full else 24),
        per_namespace=args.per_namespace,
        workers=args.workers,
        resync_seconds=args.resync_seconds or (180.0 if full else 30.0),
        profiled=not args.no_profile,
        profile_scale=500 if full else 20,
        output=args.output or Path("bench/results" if full else "bench/results/quick"),
    )


def _scales(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    config = parse_args(argv)
    config.output.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="payguard-bench-"))
    env = BenchEnvironment(state_dir=state_dir, workers=config.workers, resync_seconds=config.resync_seconds)
    began = time.time()
    observer: ClusterObserver | None = None
    try:
        env.up()
        env.start_issuer()
        # Its own connection pool: the watches must not compete with the burst's apply threads.
        observer = ClusterObserver(
            kube_config.new_client_from_config(config_file=str(env.cluster.kubeconfig)),
            children_per_service=workload_count() * CHILDREN_PER_WORKLOAD,
        )
        observer.start()
        floor = FloorClient(
            kube_config.new_client_from_config(config_file=str(env.identities.floor)), config.workers
        )
        run = Run(
            config=config,
            ctx=Context(env=env, observer=observer, floor=floor, per_namespace=config.per_namespace),
        )
        measure_scales(run, config.scales)
        measure_steady_state(run)
        # The scales beyond 500 (issue 19): the same floor-then-payguard steps, after everything else.
        measure_beyond(run, config.beyond_scales)
        env.stop_operator()
        floor.close()
        logger.info("reading the audit log (%.0f MiB)", env.audit_log.stat().st_size / 2**20)
        results = build_results(run.record, AuditLog.read(env.audit_log), env=env, config=config, began=began)
        write_results(results, config.output)
        logger.info("done in %.0fs: %s", time.time() - began, config.output / "latest.md")
    finally:
        if observer is not None:
            observer.stop()
        _keep_logs(env, config.output / "logs")
        env.down()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


def measure_scales(run: Run, scales: Sequence[int]) -> None:
    for scale in scales:
        logger.info("scale %d: the floor", scale)
        run.ctx.env.stop_operator()
        floor_batch = _floor(run, scale)
        run.record.cleanup_seconds[scale] = remove_batches(run.ctx, [floor_batch])
        _start_operator(run)
        logger.info("scale %d: payguard", scale)
        _payguard(run, scale)


def measure_beyond(run: Run, scales: Sequence[int]) -> None:
    """Like `measure_scales`, but a scale this machine cannot hold is recorded, with why, instead of
    losing the hour already measured; larger scales are not tried after it."""
    for scale in scales:
        try:
            measure_scales(run, [scale])
        except Exception as error:  # any failure is the finding, reported with the results
            logger.exception("scale %d could not be measured", scale)
            run.record.not_measured[scale] = f"{type(error).__name__}: {error}"
            return


def _floor(run: Run, scale: int) -> Batch:
    if scale == 1:
        batch, run.record.floor_single = single_samples(
            run.ctx, label="floor-single", samples=run.config.single_samples, by_payguard=False
        )
        return batch
    batch, run.record.floor_bursts[scale] = floor_burst(run.ctx, label=f"floor-{scale}", count=scale)
    return batch


def _payguard(run: Run, scale: int) -> None:
    if scale == 1:
        batch, run.record.payguard_single = single_samples(
            run.ctx, label="payguard-single", samples=run.config.single_samples, by_payguard=True
        )
    else:
        batch, run.record.payguard_bursts[scale] = payguard_burst(
            run.ctx, label=f"payguard-{scale}", count=scale
        )
    run.payguard_batches.append(batch)


def _start_operator(run: Run, extra_args: Sequence[str] = ()) -> None:
    """Every start after the first is also a restart over the services already there: it is counted."""
    started = time.time()
    run.ctx.env.start_operator(extra_args)
    run.ctx.settle(quiet_seconds=2.0, timeout=300)
    run.record.operator_starts.append((run.services, (started, time.time())))
    reading = run.ctx.env.sampler.reading("payguard")
    if run.services == 0 and not run.record.baseline and reading is not None:  # no PaymentService yet
        objects = watched_objects_footprint(run.ctx.env.admin.api_client)["objects"]
        run.record.baseline = {"objects": objects, "rss_mib": round(reading.rss_mib, 1)}


def measure_steady_state(run: Run) -> None:
    ctx, config = run.ctx, run.config
    logger.info("no-op resync over %d PaymentServices (period %.0fs)", run.services, config.resync_seconds)
    run.record.noop = noop_resync(ctx, services=run.services, resync_seconds=config.resync_seconds)
    run.record.footprint = watched_objects_footprint(ctx.env.admin.api_client)
    logger.info("restart over %d PaymentServices", run.services)
    run.record.restart = restart(ctx, services=run.services)
    largest = max(run.payguard_batches, key=len)
    workloads = [w["name"] for w in checkout_template()["spec"]["workloads"]]
    logger.info("drift repair: %d tamperings in %s", config.drift_samples, largest.label)
    run.record.drift = drift_repair(ctx, largest, samples=config.drift_samples, workloads=workloads)
    if config.profiled:
        profiled = [b for b in run.payguard_batches if len(b) == config.profile_scale] or [largest]
        run.record.profile = _profiled_burst(run, profiled[0])


def _profiled_burst(run: Run, batch: Batch) -> ProfileSummary:
    """One burst again (the 500 in a full run), with py-spy attached.

    payguard is stopped and that batch deleted first, so the cluster holds the other scales' services, as
    when the burst was first measured; with 2,000 measured after it, that is more than the first time.
    """
    config, env = run.config, run.ctx.env
    env.stop_operator()
    remove_batches(run.ctx, [batch])
    run.payguard_batches.remove(batch)
    _start_operator(run, PROFILED_ARGS)
    assert env.operator is not None
    profiler = Profiler(
        pid=env.operator.pid,
        svg=config.output / "profile.svg",
        raw=config.output / "profile.txt",
        log=env.state_dir / "py-spy.log",
    )
    logger.info("profiled burst of %d PaymentServices, payguard %s", len(batch), " ".join(PROFILED_ARGS))
    profiler.start()
    time.sleep(1.0)  # let py-spy attach before the burst starts
    again, run.record.profiled = payguard_burst(run.ctx, label=f"profiled-{len(batch)}", count=len(batch))
    profiler.stop()
    run.payguard_batches.append(again)
    return summarise(config.output / "profile.txt")


def _keep_logs(env: BenchEnvironment, directory: Path) -> None:
    """The operator's and the stand-in's logs, next to the results (not committed)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("payguard.log", "fake-cert-manager.log", "py-spy.log"):
        source = env.state_dir / name
        if source.exists():
            shutil.copy(source, directory / name)
