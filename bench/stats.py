"""Owns the small statistics the report needs: percentiles, summaries and ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 4)


def summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max and mean of the values that are present; `missing` counts the rest."""
    present = [v for v in values if v is not None]
    return {
        "n": len(present),
        "missing": len(values) - len(present),
        "p50": percentile(present, 0.50),
        "p95": percentile(present, 0.95),
        "p99": percentile(present, 0.99),
        "max": round(max(present), 4) if present else None,
        "mean": round(sum(present) / len(present), 4) if present else None,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)
