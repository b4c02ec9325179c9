r"""Single-step spiking neurons: pure step functions and thin snnTorch-style modules.

The dynamics live in pure functions of ``(input, state, parameters)`` (as in norse); the
modules only hold parameters and call them. The multi-step kernels in
:mod:`snnrl_sb3.multistep` are checked against these functions.

Conventions follow ``snntorch.Leaky`` (``reset_mechanism="subtract"``, ``reset_delay=True``):
the reset is taken from the *incoming* membrane and detached from the graph, thresholds are
strict, and the membrane returned is the one compared against the thresholds.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_real
from snnrl_sb3.surrogate import atan, rectangular

__all__ = [
    "ternary_leaky_step",
    "current_leaky_step",
    "AsymmetricTernaryLeaky",
    "CurrentLeaky",
    "PositiveParameter",
]

SpikeFn = Callable[[Tensor], Tensor]

#: Floor of a positive trainable threshold: keeps it > 0 whatever the optimiser does.
THRESHOLD_FLOOR = 1e-3


def ternary_leaky_step(input_: Tensor, mem: Tensor, beta: float | Tensor, pos_threshold: float | Tensor,
                       neg_threshold: float | Tensor | None, spike_fn: SpikeFn) -> tuple[Tensor, Tensor]:
    r"""One step of the (asymmetric) ternary leaky neuron.

    .. math::
        U_t = \beta U_{t-1} + I_t - \theta^+ [U_{t-1} > \theta^+] + \theta^- [U_{t-1} < -\theta^-],
        \qquad S_t = [U_t > \theta^+] - [U_t < -\theta^-]

    The reset brackets carry no gradient (snnTorch's convention; the threshold factors do), the
    spike brackets use
    ``spike_fn``'s surrogate at both thresholds. ``neg_threshold=None`` is the binary LIF
    neuron, identical to ``snn.Leaky``.

    :return: ``(spk, mem)``, spikes in {-1, 0, +1} and the new membrane
    """
    reset = (mem > pos_threshold).to(mem.dtype) * pos_threshold
    if neg_threshold is not None:
        reset = reset - (mem < -neg_threshold).to(mem.dtype) * neg_threshold
    mem = beta * mem + input_ - reset
    spk = spike_fn(mem - pos_threshold)
    if neg_threshold is not None:
        spk = spk - spike_fn(-neg_threshold - mem)
    return spk, mem


def current_leaky_step(input_: Tensor, current: Tensor, volt: Tensor, spike: Tensor, current_decay: float,
                       volt_decay: float, threshold: float,
                       spike_fn: SpikeFn) -> tuple[Tensor, Tensor, Tensor]:
    r"""One step of Pop-SAN's current-based LIF neuron (refractory "hard" reset).

    .. math::
        C_t = d_c C_{t-1} + I_t, \qquad V_t = d_v V_{t-1} (1 - S_{t-1}) + C_t, \qquad
        S_t = [V_t > \theta]

    As in Pop-SAN, the reset factor ``(1 - S)`` is *not* detached: gradients flow through it.

    :return: ``(spike, current, volt)``
    """
    current = current_decay * current + input_
    volt = volt_decay * volt * (1.0 - spike) + current
    spike = spike_fn(volt - threshold)
    return spike, current, volt


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class PositiveParameter(nn.Module):
    r"""A scalar kept strictly positive by construction: :math:`\theta = \mathrm{softplus}(\rho) + \epsilon`.

    ``rho`` is the ``nn.Parameter`` (so SB3 copies it to target networks); ``value`` is the
    positive quantity. ``requires_grad=False`` freezes it.
    """

    def __init__(self, init: float, requires_grad: bool = True, floor: float = THRESHOLD_FLOOR) -> None:
        super().__init__()
        if init <= floor:
            raise ValueError(f"initial value must exceed the floor {floor}, got {init}")
        self.floor = floor
        self.rho = nn.Parameter(torch.tensor(_inverse_softplus(init - floor)), requires_grad=requires_grad)

    @property
    def value(self) -> Tensor:
        return F.softplus(self.rho) + self.floor

    def extra_repr(self) -> str:
        return f"value={self.value.item():.4g}, trainable={self.rho.requires_grad}"


class AsymmetricTernaryLeaky(nn.Module):
    r"""Asymmetric ternary leaky integrate-and-fire neuron (Ghoreishee et al., seed 000).

    Emits +1 when ``mem > pos_threshold``, -1 when ``mem < -neg_threshold``, else 0. A +1 spike
    subtracts ``pos_threshold`` at the next step, a -1 spike adds ``neg_threshold``
    (see :func:`ternary_leaky_step`). Call it like ``snn.Leaky``::

        lif = AsymmetricTernaryLeaky(beta=0.9)
        mem = lif.init_leaky()
        for step in range(num_steps):
            spk, mem = lif(x[step], mem)

    Unlike ``snn.Leaky`` it keeps no hidden state and registers in no global list: the state is
    what you pass (``mem=None`` or an empty tensor means zeros).

    :param beta: membrane decay in [0, 1]
    :param pos_threshold: positive threshold :math:`\theta^+ > 0` (fixed)
    :param neg_threshold: initial negative threshold :math:`\theta^- > 0`
    :param learn_neg_threshold: train :math:`\theta^-` (kept > 0 through a softplus parametrisation)
    :param symmetric: tie :math:`\theta^- = \theta^+` (fixed): the symmetric ternary ablation
    :param spike_grad: spike function with surrogate backward: any snnTorch surrogate or
        :mod:`snnrl_sb3.surrogate` module; default ``atan()`` like snnTorch. Pickling needs a
        picklable one (snnTorch's are closures).
    """

    def __init__(self, beta: float = 0.9, pos_threshold: float = 1.0, neg_threshold: float = 2.0,
                 learn_neg_threshold: bool = True, symmetric: bool = False,
                 spike_grad: SpikeFn | None = None) -> None:
        super().__init__()
        self.beta = check_real("beta", beta, low=0.0, high=1.0)
        self.pos_threshold = check_real("pos_threshold", pos_threshold, low=0.0, low_inclusive=False)
        neg_threshold = check_real("neg_threshold", neg_threshold, low=THRESHOLD_FLOOR, low_inclusive=False)
        self.symmetric = check_bool("symmetric", symmetric)
        learn_neg_threshold = check_bool("learn_neg_threshold", learn_neg_threshold)
        if spike_grad is None:
            spike_grad = atan()
        elif not callable(spike_grad):
            raise TypeError(f"spike_grad must be callable (a surrogate), got {type(spike_grad).__name__}")
        self.spike_grad = spike_grad
        if self.symmetric:
            self.neg = None
        else:
            self.neg = PositiveParameter(neg_threshold, requires_grad=learn_neg_threshold)

    @property
    def neg_threshold(self) -> Tensor:
        """Current negative threshold (a positive tensor)."""
        if self.neg is None:
            return torch.tensor(self.pos_threshold)
        return self.neg.value

    @staticmethod
    def init_leaky() -> Tensor:
        """An empty state, expanded to zeros on the first call (snnTorch's convention)."""
        return torch.zeros(0)

    reset_mem = init_leaky

    def forward(self, input_: Tensor, mem: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if mem is None or mem.numel() == 0:
            mem = torch.zeros_like(input_)
        neg = self.pos_threshold if self.neg is None else self.neg.value
        return ternary_leaky_step(input_, mem, self.beta, self.pos_threshold, neg, self.spike_grad)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, pos_threshold={self.pos_threshold}, symmetric={self.symmetric}"


class CurrentLeaky(nn.Module):
    """Pop-SAN's current-based LIF neuron as a single-step module (see :func:`current_leaky_step`).

    ``spk, (current, volt) = neuron(input_, state)``; ``state=None`` means zeros.
    Defaults are Pop-SAN's: current decay 0.5, voltage decay 0.75, threshold 0.5,
    rectangular surrogate of half-width 0.5.
    """

    def __init__(self, current_decay: float = 0.5, volt_decay: float = 0.75, threshold: float = 0.5,
                 spike_grad: SpikeFn | None = None) -> None:
        super().__init__()
        self.current_decay = check_real("current_decay", current_decay, low=0.0, high=1.0)
        self.volt_decay = check_real("volt_decay", volt_decay, low=0.0, high=1.0)
        self.threshold = check_real("threshold", threshold, low=0.0, low_inclusive=False)
        self.spike_grad = rectangular(0.5) if spike_grad is None else spike_grad

    def forward(self, input_: Tensor, state: tuple[Tensor, Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        if state is None:
            zeros = torch.zeros_like(input_)
            state = (zeros, zeros, zeros)
        current, volt, spike = state
        spike, current, volt = current_leaky_step(input_, current, volt, spike, self.current_decay,
                                                  self.volt_decay, self.threshold, self.spike_grad)
        return spike, (current, volt, spike)
