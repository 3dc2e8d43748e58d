"""Percentiles and rates (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted samples; ``None`` if empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def latency_ms(samples_us: Sequence[int]) -> dict[str, float | None]:
    """p50/p99/max of microsecond samples, in milliseconds."""
    if not samples_us:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(samples_us)

    def at(q: float) -> float:
        return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] / 1000

    return {"p50_ms": at(50), "p99_ms": at(99), "max_ms": ordered[-1] / 1000}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)
