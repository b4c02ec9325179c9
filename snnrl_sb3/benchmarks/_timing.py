"""Timing helpers for the benchmarks: interleaved rounds, median per-call time."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_calls(candidates: dict[str, Callable[[], object]], *, rounds: int = 7, min_seconds: float = 0.15,
               warmup: int = 5) -> dict[str, float]:
    """Median seconds per call of each candidate.

    Candidates are timed in interleaved rounds (A, B, C, A, B, C, ...) so that machine noise hits
    all of them alike; the ratios between them are what the benchmarks report.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    calls: dict[str, int] = {}
    for name, fn in candidates.items():  # calibrate repetitions to ~min_seconds per round
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < min_seconds / 3:
            fn()
            n += 1
        calls[name] = max(1, int(n * 3))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table (pasted as is into README)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
