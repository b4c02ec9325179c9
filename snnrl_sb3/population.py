r"""Population coding for continuous control (Pop-SAN, Tang et al. 2020; seed 001, eqs. 6-16).

**Encoder.** Each observation dimension :math:`s_i` drives ``pop_dim`` neurons with learnable
Gaussian receptive fields :math:`(\mu_{i,j}, \sigma_{i,j})`:

.. math::
    A_{i,j} = \exp\!\Big(-\tfrac12 \big(\tfrac{s_i - \mu_{i,j}}{\sigma_{i,j}}\big)^2\Big)

(computed as Pop-SAN computes it, :math:`\exp(-\frac12 (s - \mu)^2 / \sigma^2)`, so with its
roundings) and turns the stimulus into spikes over ``T`` steps, either

* ``"regular"`` (deterministic, seed eqs. 8-10): :math:`v_t = v_{t-1} + A`,
  :math:`o_t = [v_t > 1 - \epsilon]`, :math:`v_t \leftarrow v_t - (1 - \epsilon) o_t`, with
  Pop-SAN's straight-through pseudo-gradient :math:`\partial o_t / \partial v_t = 1` (through the
  reset too, so :math:`\partial o_t / \partial A = \sum_{k \le t} \epsilon^k`), or
* ``"bernoulli"``: :math:`o_t \sim \mathrm{Bernoulli}(A)` with a straight-through gradient
  (Pop-SAN's "Poisson" option); frozen noise when ``deterministic=True`` unless
  ``deterministic_noise="fresh"`` (Pop-SAN's evaluation samples fresh spikes), or
* ``"analog"``: no spikes, the activations :math:`A` themselves are the input at every step
  (MDC-SAN as ILC-SAN runs it, ``--encode pop``).

Gradients reach :math:`\mu` and :math:`\sigma` (both ``nn.Parameter`` s).

**Receptive-field initialisation.** Means are evenly spaced over ``[lo_i, hi_i]`` per
dimension, where ``[lo_i, hi_i]`` is the observation space's bound when it is finite (and below
:data:`UNBOUNDED` in magnitude), else :data:`NORMALISED_RANGE` ``= (-3, 3)``: the range of
observations normalised by ``VecNormalize`` and clipped to :math:`\pm 3` as in Pop-SAN. The
standard deviation is Pop-SAN's :math:`\sqrt{0.15}` for a range of width 6, scaled with the
range width. ``mean_range``/``std`` override both for every dimension (use
``mean_range=(-3, 3)`` with ``VecNormalize`` on an environment whose space has finite bounds).

**Decoder.** Output spikes ``[T, B, act_dim * pop_dim]`` give firing rates
:math:`f_{i,j} = \frac1T \sum_t o_{i,j}(t)`; each action is a learnable weighted sum over its own
population, :math:`a_i = \tanh(\sum_j W_{i,j} f_{i,j} + b_i)` (Pop-SAN's grouped ``Conv1d``;
``squash=False`` drops the ``tanh``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_choice, check_int, check_real
from snnrl_sb3.coding import BernoulliEncoder, Encoder

__all__ = [
    "PopulationEncoder",
    "PopulationDecoder",
    "PopulationInput",
    "receptive_fields",
    "NORMALISED_RANGE",
    "POPSAN_STD",
    "UNBOUNDED",
    "ENCODINGS",
    "SPIKES",
]

#: Receptive-field mean range for unbounded dimensions (VecNormalize output clipped to ±3).
NORMALISED_RANGE = (-3.0, 3.0)
#: Pop-SAN's receptive-field standard deviation for a mean range of width 6.
POPSAN_STD = math.sqrt(0.15)
#: Bounds at or beyond this magnitude count as unbounded (e.g. ``np.finfo(np.float32).max``).
UNBOUNDED = 1e6
#: Spike generation modes of :class:`PopulationEncoder`.
SPIKES = ("regular", "bernoulli", "analog")
ENCODINGS = SPIKES[:2]  # the name of version 0.1
#: Observations farther than this many field standard deviations beyond the outermost receptive
#: field drive every field to below exp(-8) ~ 3e-4: they all encode alike.
SATURATION_STDS = 4.0


def _check_range(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair [low, high] of real numbers, got {value!r}")
    low = check_real(f"{name}[0]", value[0])
    high = check_real(f"{name}[1]", value[1])
    if not high > low:
        raise ValueError(f"{name} must have low < high, got {[low, high]}")
    return low, high


def receptive_fields(obs_dim: int, pop_dim: int, low: Any = None, high: Any = None,
                     mean_range: Sequence[float] | None = None,
                     std: float | None = None) -> tuple[Tensor, Tensor]:
    """Initial receptive-field means and standard deviations, each ``[obs_dim, pop_dim]``.

    :param low, high: per-dimension observation bounds (arrays, or ``None`` for unbounded)
    :param mean_range: ``(lo, hi)`` for every dimension, overriding the bounds
    :param std: one standard deviation for every neuron (default: :data:`POPSAN_STD` times the
        range width / 6)
    """
    obs_dim = check_int("obs_dim", obs_dim, low=1)
    pop_dim = check_int("pop_dim", pop_dim, low=1)
    if std is not None:
        std = check_real("std", std, low=0.0, low_inclusive=False)
    lows = np.full(obs_dim, NORMALISED_RANGE[0])
    highs = np.full(obs_dim, NORMALISED_RANGE[1])
    if mean_range is not None:
        lo, hi = _check_range("mean_range", mean_range)
        lows[:], highs[:] = lo, hi
    elif low is not None and high is not None:
        low = np.broadcast_to(np.asarray(low, dtype=np.float64).reshape(-1), (obs_dim,))
        high = np.broadcast_to(np.asarray(high, dtype=np.float64).reshape(-1), (obs_dim,))
        bounded = (np.isfinite(low) & np.isfinite(high) & (np.abs(low) < UNBOUNDED) & (np.abs(high) < UNBOUNDED)
                   & (high > low))
        lows[bounded], highs[bounded] = low[bounded], high[bounded]
    if pop_dim == 1:
        means = ((lows + highs) / 2)[:, None]
    else:  # Pop-SAN's arithmetic: lo + k * (hi - lo) / (pop_dim - 1), in double, then float32
        means = lows[:, None] + ((highs - lows) / (pop_dim - 1))[:, None] * np.arange(pop_dim)[None, :]
    stds = np.full((obs_dim, pop_dim), std) if std is not None else np.repeat(
        (POPSAN_STD * (highs - lows) / 6.0)[:, None], pop_dim, axis=1)
    return torch.as_tensor(means, dtype=torch.float32), torch.as_tensor(stds, dtype=torch.float32)


class _RegularSpikes(torch.autograd.Function):
    """Deterministic regular spike trains from stimuli ``A`` (seed eqs. 8-10), Pop-SAN's
    straight-through pseudo-gradient, whole sequence at once."""

    @staticmethod
    def forward(ctx: Any, stimulus: Tensor, num_steps: int, threshold: float) -> Tensor:
        spikes = stimulus.new_empty((num_steps, *stimulus.shape))
        volt = torch.zeros_like(stimulus)
        for t in range(num_steps):
            volt.add_(stimulus)
            torch.gt(volt, threshold, out=spikes[t])
            volt.sub_(spikes[t], alpha=threshold)
        ctx.params = (num_steps, threshold)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor, None, None]:
        num_steps, threshold = ctx.params
        leak = 1.0 - threshold  # d v'_t / d v_t through the straight-through reset
        weights = [sum(leak ** k for k in range(t + 1)) for t in range(num_steps)]
        w = torch.as_tensor(weights, dtype=grad_spikes.dtype, device=grad_spikes.device)
        return torch.tensordot(w, grad_spikes, dims=1), None, None


class PopulationEncoder(Encoder):
    """Learnable Gaussian population encoder: ``[B, obs_dim]`` -> spikes ``[T, B, obs_dim * pop_dim]``.

    :param obs_dim: observation dimension
    :param pop_dim: neurons per observation dimension
    :param low, high: observation bounds used to spread the means (see module docstring)
    :param mean_range: ``(lo, hi)`` for every dimension (overrides the bounds)
    :param std: initial standard deviation of every receptive field
    :param spikes: ``"regular"`` (deterministic), ``"bernoulli"`` or ``"analog"`` (no spikes:
        the activations themselves, MDC-SAN's input) (``encoding=`` is the deprecated name of
        this argument)
    :param threshold: regular-spike threshold :math:`1 - \\epsilon` in (0, 1] (Pop-SAN: 0.999)
    :param seed: Bernoulli noise seed (default: drawn from torch's global RNG)
    :param deterministic_noise: Bernoulli spikes when asked to act deterministically: ``"frozen"``
        noise (default) or ``"fresh"`` noise anyway (Pop-SAN's evaluation)

    Observations far outside the receptive fields (more than :data:`SATURATION_STDS` field
    standard deviations beyond the outermost one) all encode to the same near-silent spikes: the
    first such batch raises a :class:`UserWarning` (normalise them, e.g. with ``VecNormalize``,
    or widen ``mean_range``). The check runs on no-grad calls (acting, evaluation) until it warns.
    """

    static = False

    def __init__(self, obs_dim: int, pop_dim: int = 10, low: Any = None, high: Any = None,
                 mean_range: Sequence[float] | None = None, std: float | None = None, spikes: str = "regular",
                 threshold: float = 0.999, learnable: bool = True, seed: int | None = None, *,
                 deterministic_noise: str = "frozen", encoding: str | None = None) -> None:
        super().__init__()
        if encoding is not None:
            warnings.warn("PopulationEncoder(encoding=...) is deprecated: use spikes=...", DeprecationWarning,
                          stacklevel=2)
            spikes = encoding
        self.obs_dim = check_int("obs_dim", obs_dim, low=1)
        self.pop_dim = check_int("pop_dim", pop_dim, low=1)
        # not ``self.spikes``: that would shadow Encoder.spikes(), which the energy count calls
        self.spike_mode = check_choice("spikes", spikes, SPIKES)
        self.threshold = check_real("encoder_threshold", threshold, low=0.0, high=1.0, low_inclusive=False)
        check_bool("learnable", learnable)
        means, stds = receptive_fields(obs_dim, pop_dim, low, high, mean_range, std)
        self.mean = nn.Parameter(means, requires_grad=learnable)
        self.std = nn.Parameter(stds, requires_grad=learnable)
        self.bernoulli = BernoulliEncoder(seed, deterministic_noise) if spikes == "bernoulli" else None
        self._warned_saturation = False

    @property
    def out_features(self) -> int:
        return self.obs_dim * self.pop_dim

    @property
    def emits_spikes(self) -> bool:
        """Whether the output is spikes in {0, 1} (``False`` for ``"analog"``: real-valued activations)."""
        return self.spike_mode != "analog"

    def stimulus(self, obs: Tensor) -> Tensor:
        """Receptive-field activations :math:`A` in (0, 1], ``[B, obs_dim * pop_dim]``."""
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"PopulationEncoder expects observations [B, {self.obs_dim}], got {tuple(obs.shape)}")
        # acting and evaluation (no grad) see what the environment emits; training batches are replays of those,
        # so the gradient path, the hot one, skips the check
        if not self._warned_saturation and not torch.is_grad_enabled():
            self._warn_if_saturated(obs)
        # Pop-SAN's expression and rounding order: exp((-1/2 (s - mu)^2) / sigma^2)
        return torch.exp(-0.5 * (obs.unsqueeze(-1) - self.mean).square() / self.std.square()).flatten(1)

    @torch.no_grad()
    def _warn_if_saturated(self, obs: Tensor) -> None:
        reach = SATURATION_STDS * self.std.abs()
        low, high = (self.mean - reach).amin(1), (self.mean + reach).amax(1)
        outside = ((obs < low) | (obs > high)).any(0)
        if bool(outside.any()):
            self._warned_saturation = True
            dims = outside.nonzero().flatten().tolist()
            warnings.warn(f"observation dimensions {dims[:8]} fall outside the receptive fields of the population "
                          f"encoder (e.g. dimension {dims[0]}: values in [{obs[:, dims[0]].min().item():.4g}, "
                          f"{obs[:, dims[0]].max().item():.4g}], fields reach [{low[dims[0]].item():.4g}, "
                          f"{high[dims[0]].item():.4g}]): such values all encode alike, so the actor cannot tell them "
                          "apart. Normalise observations (e.g. VecNormalize, clipped at 3) or set "
                          "encoder_kwargs={'mean_range': [low, high]}", UserWarning, stacklevel=3)

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        stimulus = self.stimulus(x)
        if self.bernoulli is not None:
            return self.bernoulli(stimulus, num_steps, deterministic)
        if self.spike_mode == "analog":
            return stimulus.unsqueeze(0).expand(num_steps, *stimulus.shape)
        return _RegularSpikes.apply(stimulus, num_steps, self.threshold)

    def reference(self, x: Tensor, num_steps: int) -> Tensor:
        """Regular spikes by the plain autograd loop of Pop-SAN (for tests)."""
        stimulus = self.stimulus(x)
        if self.spike_mode == "analog":
            return torch.stack([stimulus] * num_steps)
        volt = torch.zeros_like(stimulus)
        out = []
        for _ in range(num_steps):
            volt = volt + stimulus
            spike = (volt > self.threshold).to(volt.dtype) + (volt - volt.detach())  # straight-through
            out.append(spike)
            volt = volt - spike * self.threshold
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"obs_dim={self.obs_dim}, pop_dim={self.pop_dim}, spikes={self.spike_mode!r}, threshold={self.threshold}"


class _RegularSpikesLinear(torch.autograd.Function):
    r"""Regular spikes followed by a linear layer, ``[B, N] -> [T, B, H]``, with a cheaper backward.

    By linearity the stimulus gradient :math:`\sum_t w_t\, (g_t W)` is computed as
    :math:`(\sum_t w_t g_t)\, W`: one ``[B, H] x [H, N]`` product instead of ``T`` of them.
    """

    @staticmethod
    def forward(ctx: Any, stimulus: Tensor, weight: Tensor, bias: Tensor | None, num_steps: int,
                threshold: float) -> Tensor:
        spikes = _RegularSpikes.forward(ctx, stimulus, num_steps, threshold)
        flat = spikes.reshape(-1, spikes.shape[-1])
        out = torch.addmm(bias, flat, weight.t()) if bias is not None else flat @ weight.t()
        ctx.save_for_backward(flat, weight)
        ctx.has_bias = bias is not None
        return out.view(num_steps, stimulus.shape[0], weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        flat, weight = ctx.saved_tensors
        num_steps, threshold = ctx.params
        grad_flat = grad_out.reshape(-1, grad_out.shape[-1])
        grad_weight = grad_flat.t() @ flat if ctx.needs_input_grad[1] else None
        grad_bias = grad_flat.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        grad_stimulus = None
        if ctx.needs_input_grad[0]:
            leak = 1.0 - threshold
            w = torch.as_tensor([sum(leak ** k for k in range(t + 1)) for t in range(num_steps)],
                                dtype=grad_out.dtype, device=grad_out.device)
            grad_stimulus = torch.tensordot(w, grad_out, dims=1) @ weight
        return grad_stimulus, grad_weight, grad_bias, None, None


class PopulationInput(Encoder):
    """A :class:`PopulationEncoder` and the first synaptic ``nn.Linear``, as one encoder returning
    input currents ``[T, B, out_features]`` (so the next layer of a
    :class:`~snnrl_sb3.body.SpikingNetwork` is a neuron).

    Same function as ``linear(encoder(x))``; for regular spikes the backward is fused (see
    :class:`_RegularSpikesLinear`), which saves ``T - 1`` of the ``T`` input-gradient products.
    """

    static = False

    def __init__(self, encoder: PopulationEncoder, out_features: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.linear = nn.Linear(encoder.out_features, check_int("out_features", out_features, low=1))

    @property
    def synapse(self) -> nn.Linear:
        return self.linear

    @property
    def emits_spikes(self) -> bool:
        """Whether :meth:`spikes` are spikes (``False`` for analog activations: the synapse is a MAC layer)."""
        return self.encoder.emits_spikes

    def spikes(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        """The population spikes ``[T, B, obs_dim * pop_dim]`` fed into ``linear``."""
        return self.encoder(x, num_steps, deterministic)

    def forward(self, x: Tensor, num_steps: int, deterministic: bool = False) -> Tensor:
        enc = self.encoder
        if enc.spike_mode == "analog":  # the same current at every step: one product, expanded
            current = self.linear(enc.stimulus(x))
            return current.unsqueeze(0).expand(num_steps, *current.shape)
        if enc.bernoulli is None:
            return _RegularSpikesLinear.apply(enc.stimulus(x), self.linear.weight, self.linear.bias, num_steps,
                                              enc.threshold)
        spikes = enc(x, num_steps, deterministic)
        return self.linear(spikes.flatten(0, 1)).unflatten(0, (num_steps, -1))

    def reference(self, x: Tensor, num_steps: int) -> Tensor:
        """``linear`` over the plain-loop regular spikes (for tests)."""
        return self.linear(self.encoder.reference(x, num_steps))


class PopulationDecoder(nn.Module):
    """Firing rates of ``act_dim`` output populations -> one value per population.

    ``[T, B, act_dim * pop_dim]`` -> ``[B, act_dim]``: per-population learnable weighted sum and
    bias (initialised like Pop-SAN's grouped ``Conv1d``), then ``tanh`` if ``squash``.
    """

    def __init__(self, act_dim: int, pop_dim: int = 10, squash: bool = True) -> None:
        super().__init__()
        self.act_dim = check_int("act_dim", act_dim, low=1)
        self.pop_dim = check_int("pop_dim", pop_dim, low=1)
        self.squash = check_bool("squash", squash)
        bound = 1.0 / math.sqrt(pop_dim)
        self.weight = nn.Parameter(torch.empty(act_dim, pop_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(act_dim).uniform_(-bound, bound))

    @property
    def in_features(self) -> int:
        return self.act_dim * self.pop_dim

    def forward(self, spikes: Tensor) -> Tensor:
        if spikes.dim() != 3 or spikes.shape[-1] != self.in_features:
            raise ValueError(f"PopulationDecoder expects spikes [T, B, {self.in_features}], got {tuple(spikes.shape)}")
        rates = spikes.mean(0).view(-1, self.act_dim, self.pop_dim)
        out = (rates * self.weight).sum(-1) + self.bias
        return torch.tanh(out) if self.squash else out

    def extra_repr(self) -> str:
        return f"act_dim={self.act_dim}, pop_dim={self.pop_dim}, squash={self.squash}"
