"""Owns telling a fight from a one-off edit (pure, times passed in): the same object drifting again and
again within a window means another writer keeps undoing payguard's repair."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

FIGHT_DRIFTS = 3  # drifts of one object within the window that make a fight
ObjectKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Fight:
    key: ObjectKey
    drifts: int
    by: tuple[str, ...]  # the other writers, when known
    ends: datetime  # when it counts as over if nothing drifts again

    @property
    def ref(self) -> str:
        return f"{self.key[0]}/{self.key[2]}"


@dataclass
class DriftHistory:
    """Recent drifts per object, kept in memory (a restart forgets a fight; the next drifts show it again)."""

    window: timedelta
    _drifts: dict[ObjectKey, list[tuple[datetime, str]]] = field(default_factory=dict)
    _by: dict[ObjectKey, tuple[str, ...]] = field(default_factory=dict)

    def record(self, key: ObjectKey, *, version: str, by: tuple[str, ...], now: datetime) -> None:
        """One drift seen on `version` of the object; the same version seen again (drift left in place
        under Report, read by a later pass) is not a new drift."""
        seen = [entry for entry in self._drifts.get(key, []) if now - entry[0] < self.window]
        if not seen or seen[-1][1] != version:
            seen.append((now, version))
        self._drifts[key] = seen
        if by:
            self._by[key] = by

    def fights(self, keys: Iterable[ObjectKey], *, now: datetime) -> list[Fight]:
        found = []
        for key in keys:
            recent = [when for when, _ in self._drifts.get(key, []) if now - when < self.window]
            if not recent:
                self._drifts.pop(key, None)
                self._by.pop(key, None)
            elif len(recent) >= FIGHT_DRIFTS:
                ends = recent[-FIGHT_DRIFTS] + self.window  # fewer drifts than a fight from then on
                found.append(Fight(key, len(recent), self._by.get(key, ()), ends))
        return found
