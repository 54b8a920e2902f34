"""Owns the profile of one burst: py-spy samples the running payguard process (without pausing it) into a
flame graph (SVG) and collapsed stacks, and the stacks are summarised into where the CPU time goes.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.environment import BIN
from bench.processes import ManagedProcess

SAMPLE_RATE = 50
FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*)\)$")
# Where a pass spends its time, by the function that owns the step (inclusive samples).
STEPS = {
    "reconcile pass (all of it)": "_reconcile (payguard/reconcile.py)",
    "render children": "render_children (payguard/render/__init__.py)",
    "drift detection": "detect_drift (payguard/drift.py)",
    "server-side apply of children": "Cluster.apply (payguard/cluster.py)",
    "posting Events": "Cluster.post_event (payguard/cluster.py)",
    "status patch": "Cluster.patch_status (payguard/cluster.py)",
    "waiting on the client-side rate limit": "RateLimiter.acquire (payguard/ratelimit.py)",
    "effective mTLS": "effective_mtls (payguard/posture/mtls.py)",
    "least-privilege findings": "least_privilege_findings (payguard/posture/privilege.py)",
    "certificate posture": "certificate_postures (payguard/judge.py)",
    "conditions": "build_conditions (payguard/conditions.py)",
    "watch events into the cache": "Controller._remember (payguard/controller.py)",
    "kopf event processing": "process_resource_event (kopf/_core/reactor/processing.py)",
    "kopf diff-base (per event)": "AnnotationsDiffBaseStorage.build (kopf/_cogs/configs/diffbase.py)",
}


@dataclass
class Profiler:
    """Two py-spy recorders on one pid: a flame graph and raw collapsed stacks."""

    pid: int
    svg: Path
    raw: Path
    log: Path
    _recorders: tuple[ManagedProcess, ...] = ()

    def start(self) -> None:
        common = ["record", "--pid", str(self.pid), "--rate", str(SAMPLE_RATE), "--nonblocking", "--nolineno"]
        self._recorders = (
            ManagedProcess("py-spy-svg", [str(BIN / "py-spy"), *common, "-o", str(self.svg)], self.log),
            ManagedProcess(
                "py-spy-raw", [str(BIN / "py-spy"), *common, "--format", "raw", "-o", str(self.raw)], self.log
            ),
        )
        for recorder in self._recorders:
            recorder.start()

    def stop(self) -> None:
        """SIGINT makes py-spy write its output and exit."""
        for recorder in self._recorders:
            recorder.stop(sig=signal.SIGINT, grace_seconds=60)


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    steps: dict[str, float]  # share of samples (0..1) in which the step's function is on the stack
    top_inclusive: list[tuple[str, float]]
    top_self: list[tuple[str, float]]


def summarise(raw: Path, *, top: int = 15) -> ProfileSummary:
    """Reads py-spy's collapsed stacks ('frame;frame;... count') into shares of the sampled time."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        leaf[frames[-1]] += count
    share = (lambda n: round(n / total, 4)) if total else (lambda n: 0.0)
    return ProfileSummary(
        samples=total,
        steps={step: share(_step_samples(inclusive, frame)) for step, frame in STEPS.items()},
        top_inclusive=[(f, share(n)) for f, n in inclusive.most_common(top + 10) if not _is_root(f)][:top],
        top_self=[(f, share(n)) for f, n in leaf.most_common(top)],
    )


def _step_samples(inclusive: Counter[str], step_frame: str) -> int:
    """Samples of the frames that are this step: same function, a file path ending as given."""
    wanted_function, _, wanted_path = step_frame.partition(" (")
    total = 0
    for frame, count in inclusive.items():
        function, _, path = frame.partition(" (")
        if function == wanted_function and path.rstrip(")").endswith(wanted_path.rstrip(")")):
            total += count
    return total


def _short(frame: str) -> str:
    """'function (path/to/site-packages/pkg/mod.py)' -> 'function (pkg/mod.py)'."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "operator/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


def _is_root(frame: str) -> bool:
    """Frames on nearly every stack (thread and event-loop plumbing) say nothing about where time goes."""
    return frame.split(" ", maxsplit=1)[0] in {"<module>", "_bootstrap", "_bootstrap_inner", "run", "main"}
