"""Timing helpers for the benchmarks: interleaved rounds, robust per-call time."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import Tensor, nn

from snnrl_sb3.kernels import MultiStepNeuron

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def time_calls(candidates: Mapping[str, Callable[[], object]], *, rounds: int = 7, min_seconds: float = 0.15,
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


def learn_rates(models: Mapping[str, Any], steps: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median env-steps/s of ``model.learn(steps)`` per model, in interleaved rounds after ``warmup``
    steps each (first rollouts, a replay buffer past ``learning_starts``, the first updates)."""
    for model in models.values():
        model.learn(warmup)
    rates: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            rates[name].append(steps / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def first_call_seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call: what ``backend="compile"`` spends compiling before it is timed."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table (pasted as is into README)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


class _PassThrough(MultiStepNeuron):
    """A neuron that costs nothing: its output is its input current."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def without_neurons(model: ModuleT) -> ModuleT:
    """A deep copy of ``model`` whose multi-step neurons pass their input through unchanged.

    Timing it gives the *layer-once floor*: everything a spiking step costs except the neuron
    recurrences (synaptic layers over ``T * B`` rows, encoder, read-out, optimiser). No neuron
    kernel, however fused, can make the spiking step cheaper than that.
    """
    model = copy.deepcopy(model)
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, MultiStepNeuron):
                setattr(parent, name, _PassThrough())
    return model
