"""`python -m bench`: run the benchmarks (see bench/run.py, and `make bench` / `make bench-quick`)."""

from __future__ import annotations

from bench.run import main

raise SystemExit(main())
