"""Timing calls one by one, and the statistics the report quotes."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CallTimes:
    """Per-call times of one run: medians and p99s per call; calls/s is calls
    over the summed call time (the time the caller spent inside the calls)."""

    name: str
    slots: int
    calls: int
    median_us: float
    p99_us: float
    calls_per_s: float

    @classmethod
    def of(cls, name: str, slots: int, samples_ns: Sequence[int]) -> CallTimes:
        if not samples_ns:
            return cls(name, slots, 0, math.nan, math.nan, math.nan)
        total_s = sum(samples_ns) / 1e9
        return cls(
            name,
            slots,
            len(samples_ns),
            statistics.median(samples_ns) / 1e3,
            percentile(samples_ns, 0.99) / 1e3,
            len(samples_ns) / total_s if total_s > 0 else math.nan,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_each(calls: Sequence[Callable[[], object]]) -> list[int]:
    """Nanoseconds of each call, with the garbage collector held off so that a
    collection triggered by one run's garbage is not charged to a random call."""
    samples = [0] * len(calls)
    gc.collect()
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for i, call in enumerate(calls):
            t0 = clock()
            call()
            samples[i] = clock() - t0
    finally:
        gc.enable()
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """The value at quantile `q` (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan
