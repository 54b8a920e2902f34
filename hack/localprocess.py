"""Owns the control plane's processes: spawning them in their own session, probing health, stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def spawn(argv: list[str], log_file: Path) -> int:
    """Starts argv as the leader of a new process group, output appended to log_file; returns its pid."""
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return process.pid


def pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def stop(pid: int | None, *, kill: bool = False, grace_seconds: float = 10.0) -> None:
    """Stops a process group: SIGTERM, then SIGKILL after grace_seconds (at once when kill); waits it out."""
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    _wait_gone(pid, grace_seconds)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, grace_seconds)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    if pid_alive(pid):
        raise RuntimeError(f"process {pid} survived SIGKILL")


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


def http_status(url: str, context: ssl.SSLContext | None) -> int:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def wait_for_ok(
    url: str,
    *,
    what: str,
    context: ssl.SSLContext | None,
    timeout_seconds: float,
    check_alive: Callable[[], None] = lambda: None,
) -> None:
    """Polls url until it answers 200; check_alive raises when a process it depends on has died."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        check_alive()
        with contextlib.suppress(OSError, urllib.error.URLError):
            if http_status(url, context) == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready at {url} after {timeout_seconds}s")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
