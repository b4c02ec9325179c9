"""Core benchmark: fwd+bwd time of a 4-256-256-2 spiking MLP body, as ratios.

Run ``python -m snnrl_sb3.benchmarks.core`` (``--help`` for the options). By default it runs in
the stable mode (one torch thread, the thread's CPU clock, the minimum over rounds: the least
disturbed estimate on a shared machine). For batch 64 and T = 4, 8, 20 it times, in one process
and interleaved rounds:

* ``ann``: the same-shape ReLU MLP (the unit of every ratio);
* ``naive``: the textbook snnTorch loop
  (:class:`~snnrl_sb3.benchmarks._baselines.NaiveSnnTorchMLP`): every layer called at every
  step, ``snn.Leaky`` hidden neurons, and a non-spiking ``snn.Leaky`` output integrator whose
  membrane is recorded, stacked and max-pooled over time (the body's ``membrane_max`` read-out);
* ``lif`` / ``ternary``: :func:`snnrl_sb3.spiking_mlp` (layers once over all T, fused neuron
  kernels) with the binary LIF and the asymmetric ternary neuron;
* ``floor``: the LIF body with its neurons removed
  (:func:`~snnrl_sb3.benchmarks._timing.without_neurons`): the synaptic layers over ``T * B``
  rows and the read-out alone, the least any neuron kernel can cost;
* with ``--compile``, also ``lif+compile`` / ``ternary+compile``: the same bodies with
  ``backend="compile"`` (``torch.compile``d neuron kernels; compiling happens in the warm-up
  and is reported separately);
* with ``--cpp``, also ``lif+cpp`` / ``ternary+cpp``: the same bodies with ``backend="cpp"``
  (the fused C++ kernels of :mod:`snnrl_sb3.kernels._cpp`; building or loading the extension happens
  before the timing and is reported separately).

Every T is timed twice: first with the C library's default allocator settings, then after
:func:`~snnrl_sb3.utils.tune_allocator` (glibc only; it cannot be undone within a
process, hence that order). Ratios compare candidates timed in the same rounds only; the
``lif/floor`` and ``ternary/floor`` columns are what the neuron kernels add to the layer-once floor.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from snnrl_sb3.benchmarks._baselines import NaiveSnnTorchMLP, fwd_bwd
from snnrl_sb3.benchmarks._timing import first_call_seconds, print_table, time_calls, without_neurons
from snnrl_sb3.body import spiking_mlp
from snnrl_sb3.kernels._cpp import CppKernels, extension_name
from snnrl_sb3.utils import tune_allocator

__all__ = ["NaiveSnnTorchMLP", "fwd_bwd", "main"]


def _row(steps: int, allocator: str, t: dict[str, float], spiking: list[str]) -> list[str]:
    return [str(steps), allocator, f"{t['ann'] * 1e6:.0f} µs", f"{t['naive'] / t['ann']:.1f}x",
            f"{t['floor'] / t['ann']:.1f}x",
            *(f"{t[name] / t['ann']:.1f}x" for name in spiking), *(f"{t[name] / t['floor']:.2f}x" for name in spiking),
            *(f"{t['naive'] / t[name]:.1f}x" for name in spiking)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="batch size B (default: 64)")
    parser.add_argument("--num-steps", type=int, nargs="+", default=[4, 8, 20],
                        help="simulation steps T to time, one table row each (default: 4 8 20)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default: 7)")
    parser.add_argument("--stat", choices=["median", "min"], default="min",
                        help="per-candidate statistic over the rounds (default: min, the least disturbed)")
    parser.add_argument("--allocator", choices=["both", "default", "tuned"], default="both",
                        help="glibc allocator settings: default, tuned (snnrl_sb3.utils.tune_allocator), "
                             "or both in that order (default: both)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default: 1; 0 keeps torch's default)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the bodies with backend='compile' (needs a C++ compiler)")
    parser.add_argument("--cpp", action="store_true",
                        help="also time the bodies with backend='cpp' (fused C++ kernels; needs a C++ compiler and "
                             "ninja, built once per machine)")
    parser.add_argument("--clock", choices=["wall", "thread"], default="thread",
                        help="thread (default): CPU time of this thread, robust on a busy machine (needs "
                             "--threads 1); wall: elapsed time")
    args = parser.parse_args(argv)
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread needs --threads 1 (other threads' work would not be counted); "
                     "use --clock wall with more threads")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = [4, 256, 256, 2]
    x = torch.randn(args.batch, sizes[0])
    ann = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    spiking = {"lif": ("lif", "eager"), "ternary": ("ternary", "eager")}
    if args.compile:
        spiking.update({"lif+compile": ("lif", "compile"), "ternary+compile": ("ternary", "compile")})
    if args.cpp:
        spiking.update({"lif+cpp": ("lif", "cpp"), "ternary+cpp": ("ternary", "cpp")})
        seconds = first_call_seconds(CppKernels.load)
        if CppKernels.failed is not None:
            parser.error(f"--cpp: the C++ kernels are unavailable ({CppKernels.failed.splitlines()[0]})")
        print(f"building/loading the C++ kernels ({extension_name()}): {seconds:.1f} s")
    nets = {steps: {"ann": ann, "naive": NaiveSnnTorchMLP(sizes, steps),
                    **{name: spiking_mlp(4, [256, 256], 2, num_steps=steps, neuron=neuron,
                                         neuron_kwargs={"backend": backend} if backend != "eager" else None)
                       for name, (neuron, backend) in spiking.items()}}
            for steps in args.num_steps}
    for candidates in nets.values():
        candidates["floor"] = without_neurons(candidates["lif"])
    if args.compile:
        for steps in args.num_steps:
            for name in ("lif+compile", "ternary+compile"):
                print(f"compiling {name} at T={steps}: {first_call_seconds(fwd_bwd(nets[steps][name], x)):.1f} s")
    phases = {"both": ["default", "tuned"], "default": ["default"], "tuned": ["tuned"]}[args.allocator]
    print(f"fwd+bwd, 4-256-256-2 MLP, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{args.stat} of {args.rounds} interleaved rounds, {args.clock} clock")
    rows = []
    for allocator in phases:
        if allocator == "tuned" and not tune_allocator():
            print("(allocator tuning needs glibc; skipped)")
            break
        for steps in args.num_steps:
            steps_of = {name: fwd_bwd(model, x) for name, model in nets[steps].items()}
            times = time_calls(steps_of, rounds=args.rounds, stat=args.stat, clock=args.clock)
            rows.append(_row(steps, allocator, times, list(spiking)))
    print_table(["T", "allocator", "ANN", "naive/ANN", "floor/ANN", *(f"{name}/ANN" for name in spiking),
                 *(f"{name}/floor" for name in spiking), *(f"naive/{name}" for name in spiking)], rows)


if __name__ == "__main__":
    main()
