r"""Ghoreishee et al. 2025's Q-networks (DATSQN, DTSQN, binary DSQN) as their released code computes them.

Written from reading ``github.com/Aref7792/DATSQN``, ``DATSQN_DTSQN_DSQN/{DATSQN,DTSQN,DSQN}_train.py``
(the three files differ only in the neuron; line numbers below are DATSQN_train.py's unless said).

Network (``Network``, l.164-207): conv 8x8/4 (C->32), neuron, conv 4x4/2 (32->64), neuron,
conv 3x3/1 (64->64), neuron, flatten, linear 3136->512, neuron, linear 512->A; every synapse
with its bias, PyTorch's default init. Input: ``x / 255`` rate-coded by ``snntorch.spikegen.rate``
(a fresh Bernoulli draw per step and per call, l.193-194), T = 20 (l.271). Output:
:math:`Q = \sum_{t=1}^{T} (W s_t + b)` (l.205-207: the per-step output currents, stacked and summed).

Neuron (``IF``, l.109-162; despite the name it leaks, beta = 0.9 clamped to [0, 1]), from a zero
membrane every forward:

.. math::
    U_t = \beta U_{t-1} + I_t - \theta^+ [S_{t-1} = +1] + \theta^-_{raw} [S_{t-1} = -1]

with :math:`S_{t-1}` the spike of the previous membrane, recomputed and detached (``reset_mem``,
l.123-127, ``_base_sub`` l.161-162; the reset uses the *raw* :math:`\theta^-`, unclamped). The
spike (``fire`` l.137-141, ``PseudoSpikeRect.forward`` l.85-89) is taken on the side of the
membrane's sign, with :math:`\theta^-` clamped to [0, 10]:

.. math::
    m_t = U_t - \theta^+ \text{ if } U_t \ge 0 \text{ else } U_t + \mathrm{clamp}(\theta^-, 0, 10), \qquad
    S_t = [U_t \ge 0][m_t > 0] - [U_t < 0][m_t < 0]

i.e. +1 for :math:`U_t > \theta^+`, -1 for :math:`U_t < -\theta^-` (both strict). Its backward
(l.91-100) is ONE arctan surrogate at the shifted membrane, whatever the branch:
:math:`\partial S_t/\partial m_t = 1 / (1 + (\pi m_t)^2)` (snnTorch's atan with alpha = 2); the
sign argument gets no gradient. :math:`\theta^-` (``vthn``, one scalar ``nn.Parameter`` per
neuron layer, initialised to 2, l.115) gets gradient through the clamp of the spike and, unclamped,
through the reset.

* DTSQN (DTSQN_train.py l.117-152): the same with :math:`\theta^- = \theta^+ = 1` fixed, no parameter.
* binary DSQN (DSQN_train.py l.84-155): :math:`S_t = [U_t - 1 > 0]`, the same single surrogate at
  :math:`U_t - 1`, reset :math:`U_t = \beta U_{t-1} + I_t - S_{t-1}` (``self.reset * self.vth``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["KINDS", "PLAIN_KEYS", "ShiftedATanSpike", "ghoreishee_neuron_step", "GhoreisheeNeuron",
           "GhoreisheeQNetwork", "rate_code"]

#: The three agents of the paper, by their preset names.
KINDS = ("datsqn", "dtsqn", "dsqn_binary")

#: Names of the plain state dict (``GhoreisheeQNetwork.plain_state``): the synapses in order, then
#: (DATSQN only) the negative threshold of each of the four neuron layers, as 0-dim tensors.
SYNAPSES = ("conv1", "conv2", "conv3", "fc", "out")
PLAIN_KEYS = tuple(f"{s}.{p}" for s in SYNAPSES for p in ("weight", "bias"))
NEG_KEYS = tuple(f"neuron{i}.neg_threshold" for i in range(1, 5))


class ShiftedATanSpike(torch.autograd.Function):
    r"""``value`` forward (the spike already decided by the comparisons), and the reference's backward:
    :math:`g / (1 + (\pi m)^2)` into the shifted membrane ``m``, nothing into ``value``."""

    @staticmethod
    def forward(ctx, shifted: Tensor, value: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(shifted)
        return value.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (shifted,) = ctx.saved_tensors
        # PseudoSpikeRect.backward, l.94-99: 2 / 2 / (1 + (pi / 2 * 2 * x) ** 2)
        return grad / (1.0 + (math.pi * shifted) ** 2), None


def _fire(kind: str, mem: Tensor, pos: float, neg_clamped: Tensor | float) -> Tensor:
    """The spike of membrane ``mem`` (surrogate gradient into ``mem`` and, for DATSQN, into θ⁻)."""
    if kind == "dsqn_binary":
        shifted = mem - pos
        value = (shifted > 0).to(mem.dtype)
    else:
        positive_side = mem >= 0  # torch.sign(0) = 0 counts as the positive side (l.88: x >= 0)
        shifted = torch.where(positive_side, mem - pos, mem + neg_clamped)
        value = ((positive_side & (shifted > 0)).to(mem.dtype)
                 - ((~positive_side) & (shifted < 0)).to(mem.dtype))
    return ShiftedATanSpike.apply(shifted, value)


def ghoreishee_neuron_step(kind: str, current: Tensor, mem: Tensor, prev_spike: Tensor, beta: Tensor,
                           pos: float, neg_raw: Tensor | float | None) -> tuple[Tensor, Tensor]:
    """One step: ``(spike, mem)`` from the input current, the previous membrane and its (detached) spike.

    ``beta`` is a float32 0-dim tensor (the reference's ``th.tensor(beta)``); ``neg_raw`` is DATSQN's
    unclamped θ⁻ parameter (``None`` for the other two kinds)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    prev = prev_spike.detach()
    up = (prev > 0).to(mem.dtype)
    down = (prev < 0).to(mem.dtype)
    mem = beta.clamp(0, 1) * mem + current
    if kind == "datsqn":
        assert neg_raw is not None
        mem = mem - up * pos + down * neg_raw  # raw θ⁻ in the reset (l.162)
        neg_fire: Tensor | float = neg_raw.clamp(0, 10) if isinstance(neg_raw, Tensor) else min(max(neg_raw, 0), 10)
    elif kind == "dtsqn":
        mem = mem - up * pos + down * pos
        neg_fire = pos
    else:
        mem = mem - up * pos
        neg_fire = pos
    return _fire(kind, mem, pos, neg_fire), mem


class GhoreisheeNeuron(nn.Module):
    """One neuron layer (the reference's ``IF``): beta 0.9, θ⁺ = 1, and for DATSQN a trainable θ⁻ (init 2)."""

    def __init__(self, kind: str, beta: float = 0.9, threshold: float = 1.0, neg_threshold: float = 2.0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.beta = torch.tensor(beta)  # a plain float32 tensor, not in the state dict (as in the reference)
        self.threshold = float(threshold)
        self.neg_threshold = nn.Parameter(torch.ones(1) * neg_threshold) if kind == "datsqn" else None

    def forward(self, currents: list[Tensor]) -> list[Tensor]:
        """Spikes for a list of per-step currents, from a zero membrane."""
        mem = torch.zeros_like(currents[0])
        spike = torch.zeros_like(currents[0])
        out = []
        for current in currents:
            spike, mem = ghoreishee_neuron_step(self.kind, current, mem, spike, self.beta, self.threshold,
                                                self.neg_threshold)
            out.append(spike)
        return out


def _per_step(layer: nn.Module, x: Tensor) -> list[Tensor]:
    """A stateless layer applied at every step of ``x[T, B, ...]``, as a list over t."""
    return list(layer(x.flatten(0, 1)).unflatten(0, x.shape[:2]).unbind(0))


def rate_code(frame: Tensor, noise: Tensor) -> Tensor:
    """``spikegen.rate(frame / 255, T)``: a Bernoulli draw per step with probability ``frame / 255``,
    written with explicit uniform noise ``[T, B, C, H, W]`` (``[u < p]`` is Bernoulli(p))."""
    p = (frame.float() / 255).clamp(0, 1)
    return (noise < p.unsqueeze(0)).to(p.dtype)


class GhoreisheeQNetwork(nn.Module):
    """The reference Q-network of one kind (``"datsqn"``, ``"dtsqn"``, ``"dsqn_binary"``).

    ``forward_spikes(spikes[T, B, C, 84, 84])`` -> Q ``[B, A]``; ``trace=True`` also returns the
    per-layer spike trains and the per-step output currents (the terms of Σ_t)."""

    def __init__(self, kind: str, n_actions: int, in_channels: int = 4, num_steps: int = 20, beta: float = 0.9,
                 threshold: float = 1.0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.num_steps = kind, num_steps
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3, stride=1)
        self.fc = nn.Linear(3136, 512)
        self.out = nn.Linear(512, n_actions)
        self.neurons = nn.ModuleList(GhoreisheeNeuron(kind, beta, threshold) for _ in range(4))

    def forward_spikes(self, spikes: Tensor, trace: bool = False):
        if spikes.dim() != 5 or spikes.shape[0] != self.num_steps:
            raise ValueError(f"spikes must be [T={self.num_steps}, B, C, H, W], got {tuple(spikes.shape)}")
        # The reference runs every layer inside one loop over t (l.196-206). A neuron's state depends only
        # on its own past, so running each layer over all t before the next is the same computation; the
        # synapses are stateless, so they take the T steps in one call (a batch of T*B), for speed.
        s1 = self.neurons[0](_per_step(self.conv1, spikes))
        s2 = self.neurons[1](_per_step(self.conv2, torch.stack(s1)))
        s3 = self.neurons[2](_per_step(self.conv3, torch.stack(s2)))
        s4 = self.neurons[3](_per_step(self.fc, torch.stack(s3).flatten(2)))
        currents = [self.out(s) for s in s4]  # the output currents, one per step
        q = torch.stack(currents, dim=0).sum(dim=0)
        if not trace:
            return q
        return q, {"spikes": [torch.stack(s) for s in (s1, s2, s3, s4)], "currents": torch.stack(currents)}

    def forward(self, frame: Tensor, noise: Tensor, trace: bool = False):
        """Q of uint8-valued frames ``[B, C, H, W]`` rate-coded with the uniform ``noise[T, B, C, H, W]``."""
        return self.forward_spikes(rate_code(frame, noise), trace)

    # ---- plain state dict ---------------------------------------------------------------------

    def neg_keys(self) -> tuple[str, ...]:
        return NEG_KEYS if self.kind == "datsqn" else ()

    def plain_state(self) -> dict[str, Tensor]:
        """``{conv1.weight, ..., out.bias[, neuron{i}.neg_threshold]}``, detached copies."""
        state = {key: self.get_submodule(key.split(".")[0]).get_parameter(key.split(".")[1]).detach().clone()
                 for key in PLAIN_KEYS}
        for key, neuron in zip(self.neg_keys(), self.neurons):
            state[key] = neuron.neg_threshold.detach().reshape(()).clone()
        return state

    def plain_grads(self) -> dict[str, Tensor]:
        """The gradients, under the keys of :meth:`plain_state`."""
        grads = {key: self.get_submodule(key.split(".")[0]).get_parameter(key.split(".")[1]).grad
                 for key in PLAIN_KEYS}
        for key, neuron in zip(self.neg_keys(), self.neurons):
            grads[key] = neuron.neg_threshold.grad.reshape(())
        return grads

    @torch.no_grad()
    def load_plain(self, state: Mapping[str, Tensor]) -> None:
        """Copy a plain state dict in (exactly the keys of :meth:`plain_state`, same shapes)."""
        expected = set(PLAIN_KEYS) | set(self.neg_keys())
        if set(state) != expected:
            raise KeyError(f"plain state must have the keys {sorted(expected)}, got {sorted(state)}")
        for key in PLAIN_KEYS:
            param = self.get_submodule(key.split(".")[0]).get_parameter(key.split(".")[1])
            if tuple(state[key].shape) != tuple(param.shape):
                raise ValueError(f"{key}: shape {tuple(state[key].shape)} != the reference's {tuple(param.shape)}")
            param.copy_(state[key])
        for key, neuron in zip(self.neg_keys(), self.neurons):
            neuron.neg_threshold.copy_(state[key].reshape(1))
