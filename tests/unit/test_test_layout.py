"""pytest imports test modules by basename (rootdir mode, no packages): two files with one basename make the
whole run stop at collection, which only a full-suite run shows. Catch it in the unit tier instead."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_basename_of_its_own() -> None:
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not clashes, f"test modules sharing a basename (pytest cannot collect both): {clashes}"
    assert len(by_name) > 30, "the layout check found almost no test modules: is TESTS wrong?"
