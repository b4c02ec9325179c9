r"""Input encoders (analog -> spikes over time) and output read-outs (spikes over time -> values).

Encoders return either a *static* tensor ``[B, ...]`` (the same input at every step, so the
first synaptic layer runs once) or a time-major tensor ``[T, B, ...]``.

Read-outs map the last hidden spike trains ``[T, B, F]`` to values ``[B, A]``:

* ``spike_count`` (seed 000): a linear layer summing spikes, :math:`Q = W \bar s + b` with
  :math:`\bar s = \frac1T\sum_t s_t`;
* ``membrane_max`` / ``membrane_mean`` / ``membrane_last`` (DSQN, seed 003): a non-spiking
  leaky integrator :math:`U_t = \beta U_{t-1} + W s_t + b`, and the max, mean or last value of
  :math:`U_t` over time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_choice, check_int, check_real
from snnrl_sb3.multistep import decay_matrix

__all__ = ["Encoder", "DirectEncoder", "BernoulliEncoder", "ENCODERS", "make_encoder", "Readout", "READOUTS"]


class Encoder(nn.Module):
    """Base class. ``static`` encoders return ``[B, ...]``; others return ``[T, B, ...]``.

    An encoder that also owns the first synaptic layer (e.g. Pop-SAN's population input) sets
    ``synapse`` to it and implements :meth:`spikes`; analysis tools (energy, NIR) then treat the
    synapse as part of the spiking core and the rest as host-side coding.
    """

    static: bool = False
    synapse: nn.Module | None = None

    def spikes(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        """What the spiking core receives: the encoder's output, or, when it owns ``synapse``,
        the spikes fed into it."""
        return self(x, num_steps, deterministic)

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class DirectEncoder(Encoder):
    """Direct (analog current) coding: the observation is the input current at every step."""

    static = True

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        return x


class BernoulliEncoder(Encoder):
    r"""Rate coding: :math:`s_t \sim \mathrm{Bernoulli}(p)` for inputs :math:`p \in [0, 1]`.

    The gradient is straight-through (:math:`\partial s_t/\partial p = 1`). Noise comes from the
    encoder's own generator, seeded from ``seed`` (or, if ``None``, from torch's global RNG at
    construction, so ``torch.manual_seed``/SB3's ``seed`` make it reproducible).

    With ``deterministic=True`` the encoder uses *frozen noise*: one fixed uniform pattern per
    step, shared by every sample, so the output depends only on the observation (identical
    batched or one by one, call after call) while keeping the rate-coded input statistics.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.seed = check_int("seed", seed, low=0)
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def __getstate__(self) -> dict[str, Any]:  # generators are rebuilt lazily after pickling/deepcopy
        state = self.__dict__.copy()
        state["_generators"] = {}
        return state

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        if not torch.all((x >= 0) & (x <= 1)):
            raise ValueError("BernoulliEncoder needs inputs in [0, 1] (firing probabilities); "
                             f"got values in [{x.min().item():.4g}, {x.max().item():.4g}]")
        if deterministic:
            frozen = torch.Generator(device=x.device).manual_seed(self.seed)
            noise = torch.rand((num_steps, 1, *x.shape[1:]), generator=frozen, device=x.device, dtype=x.dtype)
            spikes = (noise < x).to(x.dtype)
        else:
            noise = torch.rand((num_steps, *x.shape), generator=self._generator(x.device), device=x.device,
                               dtype=x.dtype)
            # the comparison written into the noise buffer: one pass, no bool temporary (T*B frames)
            spikes = torch.lt(noise, x, out=noise)
        if x.requires_grad:  # straight-through estimator
            spikes = spikes + (x - x.detach())
        return spikes

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


ENCODERS: dict[str, type[Encoder]] = {"direct": DirectEncoder, "bernoulli": BernoulliEncoder}


def make_encoder(name: str, **params: Any) -> Encoder:
    """Build an encoder by name: ``"direct"`` or ``"bernoulli"`` (``seed=``)."""
    check_choice("encoder", name, ENCODERS)
    return ENCODERS[name](**params)


READOUTS = ("spike_count", "membrane_max", "membrane_mean", "membrane_last")


class Readout(nn.Module):
    r"""Output layer reading values from spike trains ``[T, B, in_features]`` -> ``[B, out_features]``.

    :param mode: one of ``spike_count``, ``membrane_max``, ``membrane_mean``, ``membrane_last``
    :param beta: leak of the non-spiking integrator (membrane modes), in [0, 1]
    """

    def __init__(self, in_features: int, out_features: int, mode: str = "membrane_max", beta: float = 0.9,
                 bias: bool = True) -> None:
        super().__init__()
        self.mode = check_choice("decoder", mode, READOUTS)
        self.beta = check_real("beta", beta, low=0.0, high=1.0)
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def time_weights(self, num_steps: int, device: torch.device, dtype: torch.dtype) -> Tensor | None:
        r"""Weights ``c`` with output ``= W (\sum_t c_t s_t) + b \sum_t c_t`` for linear modes
        (``None`` for ``membrane_max``, which needs the whole trajectory)."""
        if self.mode == "spike_count":
            return torch.full((num_steps,), 1.0 / num_steps, device=device, dtype=dtype)
        if self.mode == "membrane_max":
            return None
        m = decay_matrix(num_steps, self.beta, device=device, dtype=dtype)  # U = M @ (W s + b)
        return m[-1] if self.mode == "membrane_last" else m.mean(0)

    def membrane(self, spikes: Tensor) -> Tensor:
        """Membrane trajectory ``[T, B, out]`` of the output integrator."""
        currents = self.linear(spikes)
        m = decay_matrix(spikes.shape[0], self.beta, device=spikes.device, dtype=currents.dtype)
        return (m @ currents.reshape(spikes.shape[0], -1)).reshape(currents.shape)

    def forward(self, spikes: Tensor) -> Tensor:
        weights = self.time_weights(spikes.shape[0], spikes.device, spikes.dtype)
        if weights is None:
            return self.membrane(spikes).amax(0)
        # linear modes: weight the spikes over time first, then run the layer once
        pooled = torch.tensordot(weights, spikes, dims=1)
        out = nn.functional.linear(pooled, self.linear.weight)
        if self.linear.bias is not None:
            out = out + self.linear.bias * weights.sum()
        return out

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, beta={self.beta}"
