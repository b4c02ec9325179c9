"""Core benchmark: fwd+bwd time of a 4-256-256-2 spiking MLP body, as ratios.

Run ``python -m snnrl_sb3.benchmarks.core``. For batch 64 and T = 4, 8, 20 it times, in one
process and interleaved rounds:

* ``ann``: the same-shape ReLU MLP (the unit of every ratio);
* ``naive``: the textbook snnTorch loop: every layer called at every step, ``snn.Leaky``
  hidden neurons, and a non-spiking ``snn.Leaky`` output integrator whose membrane is
  recorded, stacked and max-pooled over time (the body's ``membrane_max`` read-out);
* ``lif`` / ``ternary``: :func:`snnrl_sb3.spiking_mlp` (layers once over all T, fused neuron
  kernels) with the binary LIF and the asymmetric ternary neuron;
* ``floor``: the LIF body with its neurons removed
  (:func:`~snnrl_sb3.benchmarks._timing.without_neurons`): the synaptic layers over ``T * B``
  rows and the read-out alone, the least any neuron kernel can cost;
* with ``--compile``, also ``lif+compile`` / ``ternary+compile``: the same bodies with
  ``backend="compile"`` (``torch.compile``d neuron kernels; compiling happens in the warm-up
  and is reported separately).

Every T is timed twice: first with the C library's default allocator settings, then after
:func:`~snnrl_sb3.utils.tune_allocator` (glibc only; it cannot be undone within a
process, hence that order). Ratios compare candidates timed in the same rounds only.
"""

from __future__ import annotations

import argparse
from typing import Callable

import snntorch as snn
import torch
from torch import nn

from snnrl_sb3.benchmarks._timing import first_call_seconds, print_table, time_calls, without_neurons
from snnrl_sb3.utils import tune_allocator
from snnrl_sb3.body import spiking_mlp


class NaiveSnnTorchMLP(nn.Module):
    """The textbook snnTorch loop: every layer is called at every time step.

    Hidden layers are ``snn.Leaky`` (snnTorch's default arctan surrogate, subtractive reset);
    the output layer is a non-spiking leaky integrator (``snn.Leaky`` without reset), whose
    membrane is recorded at every step and max-pooled over time, as in snnTorch's tutorials.
    Same function as ``spiking_mlp(..., neuron="lif", readout="membrane_max")``.
    """

    def __init__(self, sizes: list[int], num_steps: int, beta: float = 0.9, readout_beta: float = 0.9) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lifs = nn.ModuleList(snn.Leaky(beta=beta) for _ in sizes[1:-1])
        self.out = snn.Leaky(beta=readout_beta, reset_mechanism="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [lif.init_leaky() for lif in self.lifs]
        mem_out = self.out.init_leaky()
        mem_rec = []
        for _ in range(self.num_steps):
            h = x
            for i, lif in enumerate(self.lifs):
                h, mems[i] = lif(self.fcs[i](h), mems[i])
            _, mem_out = self.out(self.fcs[-1](h), mem_out)
            mem_rec.append(mem_out)
        return torch.stack(mem_rec).amax(0)


def fwd_bwd(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    return step


def _row(steps: int, allocator: str, t: dict[str, float], spiking: list[str]) -> list[str]:
    return [str(steps), allocator, f"{t['ann'] * 1e6:.0f} µs", f"{t['naive'] / t['ann']:.1f}x",
            f"{t['floor'] / t['ann']:.1f}x",
            *(f"{t[name] / t['ann']:.1f}x" for name in spiking), *(f"{t['naive'] / t[name]:.1f}x" for name in spiking)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 20])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="per-candidate statistic over the rounds")
    parser.add_argument("--allocator", choices=["both", "default", "tuned"], default="both")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the bodies with backend='compile' (needs a C++ compiler)")
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall",
                        help="thread: CPU time of this thread, robust on a busy machine (needs --threads 1)")
    args = parser.parse_args()
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread needs --threads 1 (other threads' work would not be counted)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = [4, 256, 256, 2]
    x = torch.randn(args.batch, sizes[0])
    ann = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    spiking = {"lif": ("lif", "eager"), "ternary": ("ternary", "eager")}
    if args.compile:
        spiking.update({"lif+compile": ("lif", "compile"), "ternary+compile": ("ternary", "compile")})
    nets = {steps: {"ann": ann, "naive": NaiveSnnTorchMLP(sizes, steps),
                    **{name: spiking_mlp(4, [256, 256], 2, num_steps=steps, neuron=neuron,
                                         neuron_kwargs={"backend": backend})
                       for name, (neuron, backend) in spiking.items()}}
            for steps in args.steps}
    for candidates in nets.values():
        candidates["floor"] = without_neurons(candidates["lif"])
    if args.compile:
        for steps in args.steps:
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
        for steps in args.steps:
            candidates = {name: fwd_bwd(model, x) for name, model in nets[steps].items()}
            times = time_calls(candidates, rounds=args.rounds, stat=args.stat, clock=args.clock)
            rows.append(_row(steps, allocator, times, list(spiking)))
    print_table(["T", "allocator", "ANN", "naive/ANN", "floor/ANN", *(f"{name}/ANN" for name in spiking),
                 *(f"naive/{name}" for name in spiking)], rows)


if __name__ == "__main__":
    main()
