"""Shared by the benchmark scripts (run as `python bench/<name>.py`, so this folder is on sys.path)."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """(median seconds, last result) of `repeat` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def reference_ms() -> float:
    """Milliseconds of a fixed mix of small numpy calls and Python loops, best of five.

    Shared virtual machines change speed from minute to minute (up to 2x here); printing this
    next to a benchmark's figures says how fast the machine was while it ran (lower is faster).
    """
    import numpy as np

    values = np.arange(50.0)

    def work() -> float:
        acc = 0.0
        for _ in range(20_000):
            acc += float(np.add.reduce(values * 2.0))
            acc += sum(range(20))
        return acc

    return min(timed(work)[0] for _ in range(5)) * 1000
