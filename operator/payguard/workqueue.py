"""Owns the queue of PaymentServices waiting for a pass: deduplicated, one pass per service at a time."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    """Like client-go's workqueue: a key is queued at most once, and a key added while its pass runs is
    queued again when that pass ends, so bursts of events collapse into one pass and none is lost.

    Keys woken by a change (a tampered child, an edited spec) go before keys woken by the clock (the
    periodic resync, certificate deadlines), so a drift repair never waits behind a resync of the fleet.
    Used from one event loop only, so it needs no locks.
    """

    def __init__(self) -> None:
        self._urgent: deque[Key] = deque()
        self._routine: deque[Key] = deque()
        # Queued keys and whether urgent: membership in O(1), as a restart adds the fleet at once. A key
        # promoted to urgent stays behind in the routine deque, and is skipped there.
        self._queued: dict[Key, bool] = {}
        self._ready = asyncio.Event()
        self._active: set[Key] = set()
        self._again: dict[Key, bool] = {}  # added while active -> urgent?

    def add(self, key: Key, *, urgent: bool = True) -> None:
        if key in self._active:
            self._again[key] = self._again.get(key, False) or urgent
        elif key in self._queued:
            if urgent and not self._queued[key]:  # promote: a change arrived for a key due for a resync
                self._queued[key] = True
                self._urgent.append(key)
        else:
            self._queued[key] = urgent
            (self._urgent if urgent else self._routine).append(key)
        self._ready.set()

    async def get(self) -> Key:
        while True:
            while not (self._urgent or self._routine):
                self._ready.clear()
                await self._ready.wait()
            urgent = bool(self._urgent)
            key = self._urgent.popleft() if urgent else self._routine.popleft()
            if self._queued.get(key) == urgent:  # else a promoted key's stale routine entry
                del self._queued[key]
                self._active.add(key)
                return key

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._again:
            self.add(key, urgent=self._again.pop(key))

    def active(self) -> set[Key]:
        """Keys whose pass runs now."""
        return set(self._active)

    def __len__(self) -> int:
        return len(self._queued)
