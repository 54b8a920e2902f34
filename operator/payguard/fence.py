"""Owns the fence: the one check every write passes before it is sent, so a replica writes only for the
shards whose Leases it holds and renewed within the renew deadline.

Time-based on the monotonic clock, so it holds even when the renew loop itself is stuck (an API server
out of reach, a process paused by SIGSTOP): once the deadline passes, writes stop without anyone telling.
Gated (sharded caches), a shard just acquired is also held back until its part of the cache is filled:
a pass on a half-listed shard would take missing objects for deleted ones.
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
        self,
        *,
        shards: int,
        renew_deadline: float,
        gated: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shards = shards
        self.renew_deadline = renew_deadline
        self.gated = gated
        self._clock = clock
        self._renewed: dict[int, float] = {}  # shard -> monotonic time the last successful renew was sent
        self._filling: set[int] = set()  # acquired, but the cache does not hold the shard's objects yet
        self._lock = threading.Lock()

    def renewed(self, shard: int, *, sent_at: float) -> None:
        """A renew (or acquire) sent at `sent_at` succeeded; other candidates wait a whole lease duration
        from when they see it, which is later, so counting from the send is on the safe side."""
        with self._lock:
            if self.gated and shard not in self._renewed:  # acquired: held back until filled
                self._filling.add(shard)
            self._renewed[shard] = sent_at

    def filled(self, shard: int) -> None:
        """The cache now holds every object of the shard's namespaces: its passes may run."""
        with self._lock:
            self._filling.discard(shard)

    def filling(self, shard: int) -> bool:
        with self._lock:
            return shard in self._filling

    def revoke(self, shard: int) -> None:
        """Stops writes for the shard now (lost, released, or its deadline passed)."""
        with self._lock:
            self._renewed.pop(shard, None)
            self._filling.discard(shard)

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
        """May write for `namespace` now, and the cache holds its shard: passes of it may run."""
        shard = self.shard(namespace)
        return self.holds(shard) and not self.filling(shard)

    def check(self, namespace: str, action: str) -> None:
        """Raises FencedError unless this replica may write into `namespace` now."""
        shard = self.shard(namespace)
        with self._lock:
            renewed = self._renewed.get(shard)
        if renewed is None:
            raise FencedError(action, f"shard {shard} is not held by this replica")
        if self.filling(shard):
            raise FencedError(action, f"the cache of shard {shard} is still being filled")
        if self._clock() - renewed >= self.renew_deadline:
            raise FencedError(action, f"the Lease of shard {shard} was not renewed within the renew deadline")
