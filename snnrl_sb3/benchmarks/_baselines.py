"""Baselines shared by the benchmarks: the naive snnTorch network and the fwd+bwd step."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import snntorch as snn
import torch
from torch import nn

__all__ = ["NaiveSnnTorchMLP", "fwd_bwd"]


class NaiveSnnTorchMLP(nn.Module):
    """The textbook snnTorch loop: every layer is called at every time step.

    Hidden layers are ``snn.Leaky`` (snnTorch's default arctan surrogate, subtractive reset);
    the output layer is a non-spiking leaky integrator (``snn.Leaky`` without reset), whose
    membrane is recorded at every step and max-pooled over time, as in snnTorch's tutorials.
    Same function as ``spiking_mlp(..., neuron="lif", readout="membrane_max")`` (the MLP body and
    Q-network of :class:`~snnrl_sb3.SpikingQPolicy` with ``neuron="lif"``).

    :param sizes: layer widths, input first, e.g. ``[4, 256, 256, 2]``
    :param num_steps: ``T``
    :param beta: hidden membrane decay
    :param readout_beta: decay of the output integrator
    """

    def __init__(self, sizes: list[int], num_steps: int, beta: float = 0.9, readout_beta: float = 0.9) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.lifs = nn.ModuleList(snn.Leaky(beta=beta) for _ in sizes[1:-1])
        self.out = snn.Leaky(beta=readout_beta, reset_mechanism="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lifs: list[Any] = list(self.lifs)  # snn.Leaky: snntorch ships no type information
        mems = [lif.init_leaky() for lif in lifs]
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
    """One training-like call: zero the gradients, forward, ``mean(out²)`` loss, backward."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    return step
