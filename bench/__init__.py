"""payguard's benchmarks: apply-to-Ready, drift repair, scale, no-op writes and memory, against a floor.

Run with `make bench` (full) or `make bench-quick`; see README.md, section Benchmarks. The benchmark
reuses the local control plane from `hack/` and the chart RBAC helpers from `tests/`, so both folders
are put on the import path here.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _folder in ("hack", "tests", "operator"):
    if str(REPO / _folder) not in sys.path:
        sys.path.insert(0, str(REPO / _folder))
