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

import warnings
from typing import Any

import torch
from torch import Tensor, nn

from snnrl_sb3._validation import MAX_SEED, InvalidStateDictError, check_choice, check_real, check_seed
from snnrl_sb3.kernels import decay_matrix

__all__ = ["Encoder", "DirectEncoder", "BernoulliEncoder", "ENCODERS", "make_encoder", "Readout", "READOUTS"]


class Encoder(nn.Module):
    """Base class. ``static`` encoders return ``[B, ...]``; others return ``[T, B, ...]``.

    An encoder that also owns the first synaptic layer (e.g. Pop-SAN's population input) sets
    ``synapse`` to it (a submodule of that name, or an override of the property) and implements
    :meth:`spikes`; analysis tools (energy, NIR) then treat the synapse as part of the spiking
    core and the rest as host-side coding.
    """

    static: bool = False

    @property
    def synapse(self) -> nn.Module | None:
        """The first synaptic layer, when this encoder owns it (``None`` otherwise)."""
        # a property, not a class attribute ``None``: that would hide a submodule assigned as self.synapse
        return self._modules.get("synapse")

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


#: What a Bernoulli encoder does when asked to act deterministically: frozen noise, or fresh noise anyway.
DETERMINISTIC_NOISE = ("frozen", "fresh")


class BernoulliEncoder(Encoder):
    r"""Rate coding: :math:`s_t \sim \mathrm{Bernoulli}(p)` for inputs :math:`p \in [0, 1]`.

    The gradient is straight-through (:math:`\partial s_t/\partial p = 1`). Noise comes from the
    encoder's own generator (one per device), seeded from ``seed``; ``None`` draws the seed from
    torch's global RNG at construction, so ``torch.manual_seed`` / SB3's ``seed`` make it
    reproducible.

    The seed is encoder *state*: an int64 buffer (``noise_seed``) in the state dict, so it travels
    with ``model.save`` / ``load`` and with SB3's copy into target networks, exactly, for every
    seed in ``[0, 2**63 - 1]``. Loading a state dict whose seed is not such an int is refused.

    With ``deterministic=True`` the encoder uses *frozen noise*: one fixed uniform pattern per
    step, shared by every sample, so the output depends only on the observation (identical
    batched or one by one, call after call) while keeping the rate-coded input statistics.
    ``deterministic_noise="fresh"`` draws fresh noise even then, as DATSQN's evaluation does
    (greedy actions, but a stochastic encoder).
    """

    noise_seed: Tensor

    def __init__(self, seed: int | None = None, deterministic_noise: str = "frozen") -> None:
        super().__init__()
        self.deterministic_noise = check_choice("deterministic_noise", deterministic_noise, DETERMINISTIC_NOISE)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.register_buffer("noise_seed", torch.tensor(check_seed("seed", seed), dtype=torch.int64))
        self._generators: dict[torch.device, torch.Generator] = {}

    @property
    def seed(self) -> int:
        """The noise seed (an int)."""
        return int(self.noise_seed)

    def _generator(self, device: torch.device) -> torch.Generator:
        generator = self._generators.get(device)
        if generator is None:
            generator = self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return generator

    def __getstate__(self) -> dict[str, Any]:  # generators are rebuilt lazily after pickling/deepcopy
        state = self.__dict__.copy()
        state["_generators"] = {}
        return state

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        key = prefix + "noise_seed"
        if key not in state_dict:
            # version 0.1 did not save the seed of Pop-SAN's Bernoulli encoder: keep the one drawn at
            # construction (what 0.1 did; the same only if the model was built with an algorithm seed)
            warnings.warn(f"the state dict has no {key!r} (saved by snnrl_sb3 0.1): keeping the Bernoulli seed drawn "
                          f"at construction ({self.seed}); save the model again to keep it", UserWarning, stacklevel=2)
            state_dict[key] = self.noise_seed.clone()
        if key in state_dict:  # refuse what copy_ would silently truncate or wrap (3.7 -> 3, -5, NaN)
            value = state_dict[key]
            if (not isinstance(value, Tensor) or value.numel() != 1 or value.dtype != torch.int64
                    or not 0 <= int(value) <= MAX_SEED):
                shown = value.tolist() if isinstance(value, Tensor) and value.numel() < 5 else type(value).__name__
                raise InvalidStateDictError(f"state dict entry {key!r} must be one int64 seed in [0, 2**63 - 1], "
                                            f"got {shown!r} ({getattr(value, 'dtype', type(value).__name__)}): "
                                            "the saved model is corrupted")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._generators = {}  # rebuilt lazily from the loaded seed

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        if not torch.all((x >= 0) & (x <= 1)):
            raise ValueError("BernoulliEncoder needs inputs in [0, 1] (firing probabilities); "
                             f"got values in [{x.min().item():.4g}, {x.max().item():.4g}]")
        if deterministic and self.deterministic_noise == "frozen":
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
        fresh = ", deterministic_noise='fresh'" if self.deterministic_noise == "fresh" else ""
        return f"seed={self.seed}{fresh}"


ENCODERS: dict[str, type[Encoder]] = {"direct": DirectEncoder, "bernoulli": BernoulliEncoder}


def make_encoder(name: str, **params: Any) -> Encoder:
    """Build an encoder by name: ``"direct"`` or ``"bernoulli"`` (``seed=``)."""
    check_choice("encoder", name, ENCODERS)
    try:
        return ENCODERS[name](**params)
    except TypeError as err:  # unexpected keyword: name the encoder and what it takes
        raise TypeError(f"bad parameters {sorted(params)} for encoder {name!r}: {err}") from None


READOUTS = ("spike_count", "current_sum", "membrane_max", "membrane_mean", "membrane_last")


class Readout(nn.Module):
    r"""Output layer reading values from spike trains ``[T, B, in_features]`` -> ``[B, out_features]``.

    With the output currents :math:`I_t = W s_t + b`:

    * ``spike_count``: the mean current :math:`\frac1T \sum_t I_t` (seed 000's paper);
    * ``current_sum``: the summed current :math:`\sum_t I_t` (DATSQN's released code);
    * ``membrane_max`` / ``membrane_mean`` / ``membrane_last``: the max, mean or last value of a
      non-spiking integrator :math:`U_t = \beta U_{t-1} + \alpha I_t` (DSQN; spikingjelly's
      input-decaying LIF output with time constant :math:`\tau` is :math:`\beta = 1 - 1/\tau`,
      :math:`\alpha = 1/\tau`).

    :param mode: one of :data:`READOUTS`
    :param beta: leak :math:`\beta` of the integrator (membrane modes), in [0, 1]
    :param input_scale: input scale :math:`\alpha` of the integrator (membrane modes), in (0, 1e6]
    :param bias: whether the synapse has a bias :math:`b`
    """

    def __init__(self, in_features: int, out_features: int, mode: str = "membrane_max", beta: float = 0.9,
                 bias: bool = True, input_scale: float = 1.0) -> None:
        super().__init__()
        self.mode = check_choice("readout", mode, READOUTS)
        self.beta = check_real("beta", beta, low=0.0, high=1.0)
        self.input_scale = check_real("input_scale", input_scale, low=0.0, high=1e6, low_inclusive=False)
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    def time_weights(self, num_steps: int, device: torch.device, dtype: torch.dtype) -> Tensor | None:
        r"""Weights ``c`` with output ``= W (\sum_t c_t s_t) + b \sum_t c_t`` for linear modes
        (``None`` for ``membrane_max``, which needs the whole trajectory)."""
        if self.mode == "spike_count":
            return torch.full((num_steps,), 1.0 / num_steps, device=device, dtype=dtype)
        if self.mode == "current_sum":
            return torch.ones((num_steps,), device=device, dtype=dtype)
        if self.mode == "membrane_max":
            return None
        m = decay_matrix(num_steps, self.beta, device=device, dtype=dtype)  # U = M @ (alpha (W s + b))
        weights = m[-1] if self.mode == "membrane_last" else m.mean(0)
        return weights if self.input_scale == 1.0 else weights * self.input_scale

    def membrane(self, spikes: Tensor) -> Tensor:
        """Membrane trajectory ``[T, B, out]`` of the output integrator."""
        currents = self.linear(spikes)
        if self.input_scale != 1.0:
            currents = currents * self.input_scale
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
        scale = "" if self.input_scale == 1.0 else f", input_scale={self.input_scale}"
        return f"mode={self.mode!r}, beta={self.beta}{scale}"
