r"""Single-step spiking neurons: pure step functions and thin snnTorch-style modules.

The dynamics live in pure functions of ``(input, state, parameters)`` (as in norse); the
modules only hold parameters and call them. These step functions are the ground truth: the
multi-step kernels of :mod:`snnrl_sb3.kernels` are checked against them (spikes and membranes
bit-identical).

Conventions follow ``snntorch.Leaky`` (``reset_mechanism="subtract"``, ``reset_delay=True``):
the reset is taken from the *incoming* membrane and detached from the graph, thresholds are
strict, and the membrane returned is the one compared against the thresholds. The variants the
published systems need are keyword options of the same functions, each named once here:

* ``reset``: :data:`RESETS`, ``"subtract"`` (minus θ per spike) or ``"zero"`` (hard reset to 0);
* ``fire``: :data:`FIRES`, ``"gt"`` (:math:`U > \theta`, snnTorch) or ``"ge"`` (:math:`U \ge \theta`,
  spikingjelly);
* ``surrogate_branches``: :data:`SURROGATE_BRANCHES` of the ternary neuron, ``"both"`` (the
  surrogates of both thresholds summed) or ``"sign"`` (only the one on the membrane's side, DATSQN);
* :class:`ClampedParameter` next to :class:`PositiveParameter`: a raw θ⁻ used clamped (DATSQN).

:func:`sj_lif_step` is spikingjelly's ``LIFNode`` (input-decay charging
:math:`H = V + (X - V)/\tau`, reset applied at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_float32, check_real
from snnrl_sb3.surrogate import atan, rectangular

__all__ = [
    "ternary_leaky_step",
    "sj_lif_step",
    "current_leaky_step",
    "dynamic_step",
    "AsymmetricTernaryLeaky",
    "CurrentLeaky",
    "PositiveParameter",
    "ClampedParameter",
    "THRESHOLD_FLOOR",
    "RESETS",
    "FIRES",
    "SURROGATE_BRANCHES",
    "NEG_THRESHOLD_PARAMS",
]

SpikeFn = Callable[[Tensor], Tensor]

#: Floor of a positive trainable threshold: keeps it > 0 whatever the optimiser does.
THRESHOLD_FLOOR = 1e-3

#: Reset mechanisms: ``"subtract"`` the threshold per spike, or ``"zero"`` (hard reset to 0);
#: snnTorch's ``reset_mechanism`` names.
RESETS = ("subtract", "zero")
#: Firing conditions: ``"gt"`` spikes for :math:`U > \theta` (snnTorch, strict), ``"ge"`` for
#: :math:`U \ge \theta` (spikingjelly's ``heaviside``).
FIRES = ("gt", "ge")
#: Surrogate of the ternary spike: ``"both"`` thresholds' surrogates summed, or only the one on
#: the ``"sign"`` side of the membrane (:math:`U \ge 0`: at :math:`\theta^+`; :math:`U < 0`: at
#: :math:`-\theta^-`), as DATSQN's code computes it.
SURROGATE_BRANCHES = ("both", "sign")
#: Parametrisations of a trainable θ⁻: ``"softplus"`` (kept > 0 by construction,
#: :class:`PositiveParameter`) or ``"clamped"`` (a raw parameter clamped where it sets the firing
#: condition, :class:`ClampedParameter`, DATSQN).
NEG_THRESHOLD_PARAMS = ("softplus", "clamped")


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {sorted(allowed)}")


def _spike(spike_fn: SpikeFn, shifted: Tensor, fire: str) -> Tensor:
    """``[shifted > 0]`` (``"gt"``) or ``[shifted >= 0]`` (``"ge"``), with ``spike_fn``'s surrogate.

    ``spike_fn`` is strict (snnTorch's and this library's surrogates); ``"ge"`` adds the
    gradient-free indicator of ``shifted == 0``, so the backward stays ``spike_fn``'s.
    """
    spk = spike_fn(shifted)
    if fire == "ge":
        spk = spk + (shifted == 0).to(shifted.dtype)
    return spk


def ternary_leaky_step(input_: Tensor, mem: Tensor, beta: float | Tensor, pos_threshold: float | Tensor,
                       neg_threshold: float | Tensor | None, spike_fn: SpikeFn, *, reset: str = "subtract",
                       fire: str = "gt", surrogate_branches: str = "both",
                       neg_reset_threshold: float | Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""One step of the (asymmetric) ternary leaky neuron.

    .. math::
        U_t = \beta U_{t-1} + I_t - \theta^+ [U_{t-1} > \theta^+] + \theta^- [U_{t-1} < -\theta^-],
        \qquad S_t = [U_t > \theta^+] - [U_t < -\theta^-]

    The reset brackets carry no gradient (snnTorch's convention; the threshold factors do), the
    spike brackets use
    ``spike_fn``'s surrogate at both thresholds. ``neg_threshold=None`` is the binary LIF
    neuron, identical to ``snn.Leaky``.

    Options (the defaults are the equations above):

    * ``reset="zero"`` (binary only): snnTorch's ``reset_mechanism="zero"``,
      :math:`U_t = \beta ((1 - S_{t-1}) U_{t-1}) + I_t`;
    * ``fire="ge"`` (binary only): :math:`S_t = [U_t \ge \theta]`, in the reset too;
    * ``surrogate_branches="sign"`` (ternary only): the same spikes, but the backward takes only
      the surrogate of the membrane's side, :math:`\partial S_t / \partial U_t = \sigma'(U_t - \theta^+)`
      for :math:`U_t \ge 0` and :math:`\sigma'(-\theta^- - U_t)` for :math:`U_t < 0` (DATSQN);
    * ``neg_reset_threshold`` (ternary only): the θ⁻ the reset adds, when it is not the firing
      one (DATSQN fires at :math:`\mathrm{clamp}(\theta^-_{raw}, 0, 10)` and adds the raw
      :math:`\theta^-_{raw}`); ``None``: ``neg_threshold``.

    :return: ``(spk, mem)``, spikes in {-1, 0, +1} and the new membrane
    """
    _check_option("reset", reset, RESETS)
    _check_option("fire", fire, FIRES)
    _check_option("surrogate_branches", surrogate_branches, SURROGATE_BRANCHES)
    if neg_threshold is None:
        if surrogate_branches != "both" or neg_reset_threshold is not None:
            raise ValueError("surrogate_branches and neg_reset_threshold apply to the ternary neuron only "
                             "(neg_threshold=None is the binary one)")
        spiked = ((mem >= pos_threshold) if fire == "ge" else (mem > pos_threshold)).to(mem.dtype)
        if reset == "zero":
            mem = beta * ((1.0 - spiked) * mem) + input_
        else:
            mem = beta * mem + input_ - spiked * pos_threshold
        return _spike(spike_fn, mem - pos_threshold, fire), mem
    if reset != "subtract" or fire != "gt":
        raise ValueError(f"reset={reset!r} and fire={fire!r}: the ternary neuron has the subtractive reset and "
                         "strict thresholds only (reset='subtract', fire='gt')")
    neg_reset = neg_threshold if neg_reset_threshold is None else neg_reset_threshold
    reset_ = (mem > pos_threshold).to(mem.dtype) * pos_threshold
    reset_ = reset_ - (mem < -neg_threshold).to(mem.dtype) * neg_reset
    mem = beta * mem + input_ - reset_
    up = spike_fn(mem - pos_threshold)
    down = spike_fn(-neg_threshold - mem)
    if surrogate_branches == "sign":
        return torch.where(mem >= 0, up, -down), mem
    return up - down, mem


def sj_lif_step(input_: Tensor, volt: Tensor, tau: float, threshold: float, spike_fn: SpikeFn, *,
                reset: str = "zero", fire: str = "ge") -> tuple[Tensor, Tensor, Tensor]:
    r"""One step of spikingjelly's ``LIFNode`` (``decay_input=True``, ``detach_reset=True``).

    .. math::
        H_t = V_{t-1} + (X_t - V_{t-1}) / \tau, \qquad S_t = [H_t \ge \theta], \qquad
        V_t = (1 - S_t) H_t \;\; (\texttt{reset="zero"}: v_{reset} = 0) \quad\text{or}\quad
        V_t = H_t - \theta S_t \;\; (\texttt{"subtract"}: v_{reset} = \mathrm{None})

    Charge, fire, then reset at once (spikingjelly's order, unlike snnTorch's delayed reset), with
    :math:`S_t` detached in the reset: the gradient of :math:`V_t` is :math:`(1 - S_t)` (zero) or 1
    (subtract) times that of :math:`H_t`. ``fire="gt"`` spikes for :math:`H_t > \theta` instead.
    ``volt`` is the state after the reset (:math:`V_0 = 0`); ``spike_fn`` takes its surrogate
    at :math:`H_t - \theta`.

    :return: ``(spike, charged, volt)``: :math:`S_t`, :math:`H_t` (the membrane compared with the
        threshold) and :math:`V_t` (the next state)
    """
    _check_option("reset", reset, RESETS)
    _check_option("fire", fire, FIRES)
    charged = volt + (input_ - volt) / tau
    spike = _spike(spike_fn, charged - threshold, fire)
    fired = spike.detach()
    volt = (1.0 - fired) * charged if reset == "zero" else charged - fired * threshold
    return spike, charged, volt


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


def dynamic_step(input_: Tensor, current: Tensor, volt: Tensor, recovery: Tensor, spike: Tensor,
                 current_decay: float, threshold: float, theta_v: float, theta_u: float, theta_r: float,
                 theta_s: float, spike_fn: SpikeFn) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""One step of MDC-SAN's second-order dynamic neuron (see :mod:`snnrl_sb3.kernels.dynamic`).

    .. math::
        C_t = d_c C_{t-1} + I_t, \quad \hat V_t = V_{t-1}(1 - S_{t-1}) + \theta_r S_{t-1}, \quad
        \hat U_t = U_{t-1} + \theta_s S_{t-1}, \\
        V_t = \hat V_t + (\hat V_t^2 - \hat V_t - \hat U_t + C_t), \quad
        U_t = \hat U_t + (\theta_v \hat V_t - \theta_u \hat U_t), \quad S_t = [V_t > V_{th}]

    written in MDC-SAN's order of operations (so its roundings too: ``ilcsan-td3/mdcsan.py``,
    ``SpikeMLP.neuron_model``). Autograd flows through everything, the reset included (as in MDC-SAN).

    :return: ``(spike, current, volt, recovery)``
    """
    current = current_decay * current + input_
    volt_hat = volt * (1.0 - spike) + theta_r * spike
    rec_hat = recovery + theta_s * spike
    volt = volt_hat + (volt_hat * volt_hat - volt_hat - rec_hat + current)
    recovery = rec_hat + (theta_v * volt_hat - theta_u * rec_hat)
    spike = spike_fn(volt - threshold)
    return spike, current, volt, recovery


def check_float_input(x: object, name: str = "input") -> None:
    """Neurons compute in the input's floating dtype: refuse other tensors with a clear message."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _check_state(name: str, state: object, input_: Tensor) -> Tensor:
    """A state tensor must have the input's shape: broadcasting it would silently change the batch."""
    if not isinstance(state, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(state).__name__}")
    if state.shape != input_.shape:
        raise ValueError(f"{name} must have the input's shape {tuple(input_.shape)}, got {tuple(state.shape)} "
                         "(pass None, or an empty tensor from init_leaky(), for a zero state)")
    return state


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


class ClampedParameter(nn.Module):
    r"""A raw scalar ``nn.Parameter`` used clamped: :math:`\theta = \mathrm{clamp}(\theta_{raw}, low, high)`.

    DATSQN's θ⁻ (``vthn = nn.Parameter(2)``, used as ``vthn.clamp(0, 10)`` in the firing
    condition): the optimiser may move ``raw`` anywhere, ``value`` stays in ``[low, high]`` and its
    gradient reaches ``raw`` only inside the range (``torch.clamp``'s, bounds included). ``raw``
    is the ``nn.Parameter`` (so SB3 copies it to target networks); ``requires_grad=False``
    freezes it.
    """

    def __init__(self, init: float, low: float, high: float, requires_grad: bool = True) -> None:
        super().__init__()
        if not low <= init <= high:
            raise ValueError(f"initial value must be in [{low}, {high}], got {init}")
        self.low, self.high = float(low), float(high)
        self.raw = nn.Parameter(torch.tensor(float(init)), requires_grad=requires_grad)

    @property
    def value(self) -> Tensor:
        return self.raw.clamp(self.low, self.high)

    def extra_repr(self) -> str:
        return (f"value={self.value.item():.4g}, raw={self.raw.item():.4g}, range=[{self.low:g}, {self.high:g}], "
                f"trainable={self.raw.requires_grad}")


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
    :param pos_threshold: positive threshold :math:`\theta^+ > 0` (fixed, finite in float32)
    :param neg_threshold: initial negative threshold :math:`\theta^- >` :data:`THRESHOLD_FLOOR`
        (finite in float32)
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
        self.pos_threshold = check_float32("pos_threshold", pos_threshold, low=0.0, low_inclusive=False)
        neg_threshold = check_float32("neg_threshold", neg_threshold, low=THRESHOLD_FLOOR, low_inclusive=False)
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
        check_float_input(input_)
        if mem is None or (isinstance(mem, Tensor) and mem.numel() == 0):
            mem = torch.zeros_like(input_)
        else:
            _check_state("mem", mem, input_)
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
        self.threshold = check_float32("threshold", threshold, low=0.0, low_inclusive=False)
        if spike_grad is not None and not callable(spike_grad):
            raise TypeError(f"spike_grad must be callable (a surrogate), got {type(spike_grad).__name__}")
        self.spike_grad = rectangular(0.5) if spike_grad is None else spike_grad

    def forward(self, input_: Tensor, state: tuple[Tensor, Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        check_float_input(input_)
        if state is None:
            zeros = torch.zeros_like(input_)
            state = (zeros, zeros, zeros)
        if not isinstance(state, (tuple, list)) or len(state) != 3:
            raise TypeError("state must be None or a (current, volt, spike) tuple of tensors")
        current, volt, spike = (_check_state(name, value, input_)
                                for name, value in zip(("current", "volt", "spike"), state))
        spike, current, volt = current_leaky_step(input_, current, volt, spike, self.current_decay,
                                                  self.volt_decay, self.threshold, self.spike_grad)
        return spike, (current, volt, spike)
