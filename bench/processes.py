"""Owns the processes the benchmark starts (payguard, the cert-manager stand-in, py-spy) and reads their
memory and CPU from /proc, so the figures are those of a separate process, as in production.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = 1024


@dataclass
class ManagedProcess:
    """A child process with its output in a log file; stopped by its own pid only."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str] | None = None) -> int:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        return self.process.pid

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, grace_seconds: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        """Signals the process (TERM by default), waits, then KILLs it; returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


@dataclass(frozen=True)
class ProcessReading:
    rss_mib: float
    peak_rss_mib: float  # VmHWM: the high-water mark since the process started
    cpu_seconds: float  # user + system


def read_process(pid: int) -> ProcessReading | None:
    """RSS, its high-water mark and CPU time of one process, straight from /proc (None if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = _status_fields(status)
    # Fields after the command name (which may hold spaces) start at index 2 of the stat line.
    after_name = stat.rsplit(")", 1)[1].split()
    user_ticks, system_ticks = int(after_name[11]), int(after_name[12])
    return ProcessReading(
        rss_mib=fields.get("VmRSS", 0) / PAGE_KIB,
        peak_rss_mib=fields.get("VmHWM", 0) / PAGE_KIB,
        cpu_seconds=(user_ticks + system_ticks) / CLOCK_TICKS,
    )


def _status_fields(text: str) -> dict[str, int]:
    """The kB-valued lines of /proc/<pid>/status."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            values[key] = int(parts[0])
    return values


@dataclass
class Sampler:
    """Samples RSS of named processes on a timer, so a phase's peak is known even between readings."""

    interval_seconds: float = 0.2
    pids: dict[str, int] = field(default_factory=dict)
    _peaks: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self.pids[name] = pid
            self._peaks.pop(name, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def reset_peaks(self) -> None:
        with self._lock:
            self._peaks.clear()

    def peak_mib(self, name: str) -> float:
        with self._lock:
            return self._peaks.get(name, 0.0)

    def reading(self, name: str) -> ProcessReading | None:
        with self._lock:
            pid = self.pids.get(name)
        return None if pid is None else read_process(pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            with self._lock:
                watched = dict(self.pids)
            for name, pid in watched.items():
                reading = read_process(pid)
                if reading is not None:
                    with self._lock:
                        self._peaks[name] = max(self._peaks.get(name, 0.0), reading.rss_mib)


@dataclass
class PhaseUsage:
    """CPU seconds and peak RSS of each watched process over one phase."""

    cpu_seconds: dict[str, float]
    peak_rss_mib: dict[str, float]
    end_rss_mib: dict[str, float]


class PhaseMeter:
    """Brackets a phase: CPU seconds used and the RSS peak of every watched process between start and end."""

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler
        self._cpu_at_start: dict[tuple[str, int], float] = {}

    def start(self) -> None:
        self._sampler.reset_peaks()
        self._cpu_at_start = {
            (name, pid): reading.cpu_seconds
            for name, pid in list(self._sampler.pids.items())
            if (reading := read_process(pid)) is not None
        }

    def end(self) -> PhaseUsage:
        usage = PhaseUsage(cpu_seconds={}, peak_rss_mib={}, end_rss_mib={})
        for name, pid in list(self._sampler.pids.items()):
            reading = read_process(pid)
            if reading is None:
                continue
            # A process restarted during the phase counts from zero.
            at_start = self._cpu_at_start.get((name, pid), 0.0)
            usage.cpu_seconds[name] = round(reading.cpu_seconds - at_start, 2)
            usage.peak_rss_mib[name] = round(max(self._sampler.peak_mib(name), reading.rss_mib), 1)
            usage.end_rss_mib[name] = round(reading.rss_mib, 1)
        return usage


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05) -> bool:
    """Polls until the predicate is truthy or the timeout passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
