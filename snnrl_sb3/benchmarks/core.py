"""Core benchmark: fwd+bwd time of a 4-256-256-2 spiking MLP body, as ratios.

Run ``python -m snnrl_sb3.benchmarks.core``. For batch 64 and T = 4, 8, 20 it times, in one
process and interleaved rounds:

* ``ann``: the same-shape ReLU MLP (the unit of every ratio);
* ``naive``: a plain snnTorch loop calling every layer at every step (``snn.Leaky``);
* ``multistep``: :func:`snnrl_sb3.spiking_mlp` (layers once over all T, fused neuron kernel),
  for the binary LIF and the asymmetric ternary neuron.
"""

from __future__ import annotations

import argparse

import snntorch as snn
import torch
from torch import nn

from snnrl_sb3.benchmarks._timing import print_table, time_calls
from snnrl_sb3.body import spiking_mlp
from snnrl_sb3.surrogate import atan


class NaiveSnnTorchMLP(nn.Module):
    """The textbook snnTorch loop: every layer is called at every time step."""

    def __init__(self, sizes: list[int], num_steps: int, beta: float = 0.9) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lifs = nn.ModuleList(snn.Leaky(beta=beta, spike_grad=atan()) for _ in sizes[1:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [torch.zeros(()) for _ in self.lifs]
        out = 0.0
        for _ in range(self.num_steps):
            h = x
            for i, lif in enumerate(self.lifs):
                h, mems[i] = lif(self.fcs[i](h), mems[i])
            out = out + self.fcs[-1](h)
        return out / self.num_steps


def fwd_bwd(model: nn.Module, x: torch.Tensor) -> callable:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 20])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    sizes = [4, 256, 256, 2]
    x = torch.randn(args.batch, sizes[0])
    ann = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    rows = []
    print(f"fwd+bwd, 4-256-256-2 MLP, batch {args.batch}, {torch.get_num_threads()} threads")
    for steps in args.steps:
        candidates = {
            "ann": fwd_bwd(ann, x),
            "naive": fwd_bwd(NaiveSnnTorchMLP(sizes, steps), x),
            "lif": fwd_bwd(spiking_mlp(4, [256, 256], 2, num_steps=steps, neuron="lif"), x),
            "ternary": fwd_bwd(spiking_mlp(4, [256, 256], 2, num_steps=steps, neuron="ternary"), x),
        }
        t = time_calls(candidates, rounds=args.rounds)
        rows.append([str(steps), f"{t['ann'] * 1e6:.0f} µs", f"{t['naive'] / t['ann']:.1f}x",
                     f"{t['lif'] / t['ann']:.1f}x", f"{t['ternary'] / t['ann']:.1f}x",
                     f"{t['naive'] / t['lif']:.1f}x", f"{t['naive'] / t['ternary']:.1f}x"])
    print_table(["T", "ANN", "naive/ANN", "LIF/ANN", "ternary/ANN", "naive/LIF", "naive/ternary"], rows)


if __name__ == "__main__":
    main()
