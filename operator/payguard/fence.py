"""Owns the fence: the one check every write passes before it is sent, so a replica writes only for the
shards whose Leases it holds and renewed within the renew deadline.

Time-based on the monotonic clock, so it holds even when the renew loop itself is stuck (an API server
out of reach, a process paused by SIGSTOP): once the deadline passes, writes stop without anyone telling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from payguard.api import FencedError
from payguard.sharding import shard_of


class Fence:
    """Which shards this replica may write for, and until when. Thread-safe: passes run in threads."""

    def __init__(
        self, *, shards: int, renew_deadline: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.shards = shards
        self.renew_deadline = renew_deadline
        self._clock = clock
        self._renewed: dict[int, float] = {}  # shard -> monotonic time the last successful renew was sent
        self._lock = threading.Lock()

    def renewed(self, shard: int, *, sent_at: float) -> None:
        """A renew (or acquire) sent at `sent_at` succeeded; other candidates wait a whole lease duration
        from when they see it, which is later, so counting from the send is on the safe side."""
        with self._lock:
            self._renewed[shard] = sent_at

    def revoke(self, shard: int) -> None:
        """Stops writes for the shard now (lost, released, or its deadline passed)."""
        with self._lock:
            self._renewed.pop(shard, None)

    def holds(self, shard: int) -> bool:
        with self._lock:
            renewed = self._renewed.get(shard)
        return renewed is not None and self._clock() - renewed < self.renew_deadline

    def held(self) -> set[int]:
        """Shards this replica may write for right now."""
        return {shard for shard in range(self.shards) if self.holds(shard)}

    def shard(self, namespace: str) -> int:
        return shard_of(namespace, shards=self.shards)

    def owns(self, namespace: str) -> bool:
        return self.holds(self.shard(namespace))

    def check(self, namespace: str, action: str) -> None:
        """Raises FencedError unless this replica may write into `namespace` now."""
        shard = self.shard(namespace)
        with self._lock:
            renewed = self._renewed.get(shard)
        if renewed is None:
            raise FencedError(action, f"shard {shard} is not held by this replica")
        if self._clock() - renewed >= self.renew_deadline:
            raise FencedError(action, f"the Lease of shard {shard} was not renewed within the renew deadline")
