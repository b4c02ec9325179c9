"""Timing helpers for the benchmarks: interleaved rounds, robust per-call time, allocator tuning."""

from __future__ import annotations

import ctypes
import platform
import statistics
import time
from typing import Callable

#: glibc ``mallopt`` parameters (``<malloc.h>``)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Make glibc keep freed large buffers in the heap instead of returning them to the OS.

    By default glibc serves blocks of 128 KiB and more with ``mmap`` and gives them back on
    ``free`` (or trims the heap top), so each fresh ``[T, B, N]`` tensor of a spiking network
    (512 KiB for ``T=8, B=64, N=256``) page-faults again on first touch: on this benchmark's
    CPU a kernel backward took about 4x longer because of it. This sets
    ``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` with ``mallopt``, the same as running with
    ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728`` in the environment.
    The cost is that the process keeps up to ``trim_threshold`` bytes of freed memory.

    Process-wide and opt-in: nothing in the library calls it. Returns ``True`` when applied,
    ``False`` (and does nothing) when the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc without the usual soname
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


def time_calls(candidates: dict[str, Callable[[], object]], *, rounds: int = 7, min_seconds: float = 0.15,
               warmup: int = 5, stat: str = "median", clock: str = "wall") -> dict[str, float]:
    """Seconds per call of each candidate: the ``stat`` (``"median"`` or ``"min"``) over rounds.

    Candidates are timed in interleaved rounds (A, B, C, A, B, C, ...) so that machine noise hits
    all of them alike; the ratios between them are what the benchmarks report. On a shared
    machine ``"min"`` (as :mod:`timeit` recommends) is the least disturbed estimate, and
    ``clock="thread"`` (CPU time of the calling thread, :func:`time.thread_time`) ignores the
    time the process waits for a core; it only counts all the work with one torch thread.
    """
    if stat not in ("median", "min"):
        raise ValueError(f"stat must be 'median' or 'min', got {stat!r}")
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.thread_time
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
            start = now()
            for _ in range(calls[name]):
                fn()
            samples[name].append((now() - start) / calls[name])
    reduce = statistics.median if stat == "median" else min
    return {name: reduce(values) for name, values in samples.items()}


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table (pasted as is into README)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
