"""Small timing helpers shared by the benchmarks: medians of repeated runs, printed as tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_op_seconds(fn: Callable[[], object], *, repeats: int = 7, min_time: float = 0.2) -> float:
    """Median over ``repeats`` runs of the mean time of one call (each run >= ``min_time``)."""
    fn()  # warm up
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 4:
            break
        calls *= 2
    calls = max(1, int(calls * (min_time / max(elapsed, 1e-9)) / 4)) or 1
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def fmt_us(seconds: float) -> str:
    """Seconds as microseconds (or milliseconds above 10 ms)."""
    if seconds >= 0.01:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds * 1e6:,.1f} µs"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table (pastes straight into docs/performance.md)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
