r"""MDC-SAN's second-order dynamic neuron (Zhang et al., AAAI 2022).

Zhang et al. ("Multi-scale dynamic coding improved spiking actor network", MDC-SAN) replace
Pop-SAN's current-based LIF by a two-variable (Izhikevich-like) neuron. The seed paper (001) gives
no equations; these follow the public MDC-SAN/ILC-SAN TD3 actor (``lucifer2859/ILC-SAN``,
``ilcsan-td3/mdcsan.py``), per step :math:`t` from zero state
(:func:`snnrl_sb3.neurons.dynamic_step`, the ground truth):

.. math::
    C_t &= d_c C_{t-1} + I_t \\
    \hat V_t &= V_{t-1}(1 - S_{t-1}) + \theta_r S_{t-1}, \qquad
    \hat U_t = U_{t-1} + \theta_s S_{t-1} \\
    V_t &= \hat V_t + (\hat V_t^2 - \hat V_t - \hat U_t + C_t) \\
    U_t &= \hat U_t + (\theta_v \hat V_t - \theta_u \hat U_t) \\
    S_t &= [V_t > V_{th}]

with the published constants :math:`\theta_v=-0.172, \theta_u=0.529, \theta_r=0.021,
\theta_s=0.132`, :math:`d_c=0.5`, :math:`V_{th}=0.5` and the rectangular pseudo-gradient of
half-width 0.5. As in MDC-SAN the reset terms are *not* detached: gradients flow through
:math:`S_{t-1}` into :math:`\hat V_t` and :math:`\hat U_t`.

The eager forward runs the recurrence in place in MDC-SAN's order of operations, so with its
roundings (voltages bit-identical to the step function and to ``mdcsan.py``'s expression); the
backward is a hand-written adjoint loop over the whole sequence; the graph
forms are for ``torch.compile`` and the NumPy form for no-grad batch-1 calls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnrl_sb3._validation import check_choice, check_float32
from snnrl_sb3.kernels._time import reverse_discount_
from snnrl_sb3.kernels.base import BACKENDS, CompiledKernel, MultiStepNeuron, NeuronKind, check_time_major, use_numpy
from snnrl_sb3.neurons import dynamic_step
from snnrl_sb3.surrogate import Surrogate, make_surrogate, rectangular

__all__ = [
    "DynamicParameters",
    "DynamicKernel",
    "MultiStepDynamic",
    "dynamic_forward_eager",
    "dynamic_backward_eager",
    "dynamic_forward_graph",
    "dynamic_backward_graph",
    "dynamic_forward_numpy",
    "KINDS",
]


@dataclass(frozen=True)
class DynamicParameters:
    """MDC-SAN's dynamic neuron (defaults: the published constants).

    :param current_decay: synaptic current decay :math:`d_c`, in [0, 1]
    :param threshold: firing threshold :math:`V_{th} > 0`, finite in float32
    :param theta_v: recovery coupling to the voltage, finite in float32
    :param theta_u: recovery decay, in [0, 2]
    :param theta_r: reset voltage, below ``threshold``
    :param theta_s: recovery jump per spike, finite in float32
    """

    current_decay: float = 0.5
    threshold: float = 0.5
    theta_v: float = -0.172
    theta_u: float = 0.529
    theta_r: float = 0.021
    theta_s: float = 0.132

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "current_decay", check_float32("current_decay", self.current_decay, low=0.0, high=1.0))
        set_(self, "threshold", check_float32("threshold", self.threshold, low=0.0, low_inclusive=False))
        set_(self, "theta_v", check_float32("theta_v", self.theta_v))
        set_(self, "theta_u", check_float32("theta_u", self.theta_u, low=0.0, high=2.0))
        set_(self, "theta_r", check_float32("theta_r", self.theta_r))
        set_(self, "theta_s", check_float32("theta_s", self.theta_s))
        if self.theta_r >= self.threshold:
            raise ValueError(f"theta_r (reset voltage) must be below threshold {self.threshold}, got {self.theta_r}")

    def constants(self) -> tuple[float, float, float, float, float, float]:
        """``(current_decay, threshold, theta_v, theta_u, theta_r, theta_s)``, the step function's order."""
        return (self.current_decay, self.threshold, self.theta_v, self.theta_u, self.theta_r, self.theta_s)


def dynamic_forward_eager(x: Tensor, current_decay: float, threshold: float, theta_v: float, theta_u: float,
                          theta_r: float, theta_s: float) -> tuple[Tensor, Tensor, Tensor]:
    """Forward over ``x[T, B, ...]`` in place: ``(spikes, volt, volt_hat)``, voltages bit-identical."""
    volt = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    volt_hat = torch.empty_like(volt)
    spikes = torch.empty_like(volt)
    xs, volts, hats, spks = x.unbind(0), volt.unbind(0), volt_hat.unbind(0), spikes.unbind(0)
    one = torch.tensor(1.0, dtype=x.dtype, device=x.device)
    thr = torch.tensor(threshold, dtype=x.dtype, device=x.device)
    current = xs[0].clone(memory_format=torch.contiguous_format)
    rec = torch.zeros_like(current)
    tmp = torch.empty_like(current)
    tmp2 = torch.empty_like(current)
    hats[0].zero_()
    volts[0].copy_(current)  # zero state: V_0 = C_0, U_0 = 0
    torch.gt(volts[0], thr, out=spks[0])
    for t in range(1, len(xs)):
        s_prev, v_prev, vh = spks[t - 1], volts[t - 1], hats[t]
        torch.addcmul(xs[t], current, one, value=current_decay, out=current)  # d_c C + x
        # V^ = V (1 - S) + θr S: V - V S is V (1 - S) exactly (S in {0, 1}); θr S is exact
        torch.mul(v_prev, s_prev, out=tmp)
        torch.sub(v_prev, tmp, out=vh).add_(s_prev, alpha=theta_r)
        rec.add_(s_prev, alpha=theta_s)  # U^ = U + θs S (exact product)
        # V = V^ + (((V^² - V^) - U^) + C), MDC-SAN's order (the roundings of the reference)
        torch.mul(vh, vh, out=volts[t]).sub_(vh).sub_(rec).add_(current).add_(vh)
        # U = U^ + (θv V^ - θu U^): each product rounded, then the difference (no fused multiply-add)
        torch.mul(vh, theta_v, out=tmp)
        torch.mul(rec, theta_u, out=tmp2)
        rec.add_(tmp.sub_(tmp2))
        torch.gt(volts[t], thr, out=spks[t])
    return spikes, volt, volt_hat


def dynamic_backward_eager(volt: Tensor, volt_hat: Tensor, spikes: Tensor, grad_spikes: Tensor,
                           current_decay: float, threshold: float, theta_v: float, theta_u: float, theta_r: float,
                           theta_s: float, surrogate: Surrogate) -> Tensor:
    """Backward of :func:`dynamic_forward_eager`: the input gradient (adjoint loop over time)."""
    local = surrogate.grad_times(volt, None, shift=threshold)  # σ'_t
    grad_volt = torch.empty_like(volt)  # total adjoint of V_t (= of C_t's direct path)
    g_hat = torch.zeros_like(volt[0])  # adjoint of V^_{t+1}
    g_rhat = torch.zeros_like(volt[0])  # adjoint of U^_{t+1}
    g_spike = torch.empty_like(g_hat)
    for t in range(volt.shape[0] - 1, -1, -1):
        # S_t feeds V^_{t+1} (theta_r - V_t) and U^_{t+1} (theta_s); V_t feeds V^_{t+1} (1 - S_t)
        torch.sub(volt[t], theta_r, out=g_spike).mul_(g_hat)
        torch.sub(grad_spikes[t], g_spike, out=g_spike).add_(g_rhat, alpha=theta_s)
        g_v = grad_volt[t]
        torch.mul(spikes[t], g_hat, out=g_v)
        torch.sub(g_hat, g_v, out=g_v).addcmul_(g_spike, local[t])
        # V_t = V^_t² - U^_t + C_t ; U_t = (1 - theta_u) U^_t + theta_v V^_t ; adjoint of U_t = g_rhat
        torch.mul(volt_hat[t], g_v, out=g_hat).mul_(2.0).add_(g_rhat, alpha=theta_v)
        g_rhat.mul_(1.0 - theta_u).sub_(g_v)
    return reverse_discount_(grad_volt, current_decay)


def dynamic_forward_graph(x: Tensor, current_decay: float, threshold: float, theta_v: float, theta_u: float,
                          theta_r: float, theta_s: float) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`dynamic_forward_eager` written out of place for ``torch.compile``."""
    current = x[0]
    rec = torch.zeros_like(current)
    volts, hats, spikes = [current], [torch.zeros_like(current)], [(current > threshold).to(x.dtype)]
    for t in range(1, x.shape[0]):
        s_prev, v_prev = spikes[-1], volts[-1]
        current = current * current_decay + x[t]
        vh = (v_prev - v_prev * s_prev) + s_prev * theta_r
        rec = rec + s_prev * theta_s
        volt = vh + (vh * vh - vh - rec + current)
        rec = rec + (vh * theta_v - rec * theta_u)
        volts.append(volt)
        hats.append(vh)
        spikes.append((volt > threshold).to(x.dtype))
    return torch.stack(spikes), torch.stack(volts), torch.stack(hats)


def dynamic_backward_graph(volt: Tensor, volt_hat: Tensor, spikes: Tensor, grad_spikes: Tensor,
                           current_decay: float, threshold: float, theta_v: float, theta_u: float, theta_r: float,
                           theta_s: float, surrogate: Surrogate) -> Tensor:
    """:func:`dynamic_backward_eager` written out of place for ``torch.compile``."""
    local = surrogate.grad(volt - threshold)
    g_hat = torch.zeros_like(volt[0])
    g_rhat = torch.zeros_like(volt[0])
    grads = []
    for t in range(volt.shape[0] - 1, -1, -1):
        g_spike = grad_spikes[t] + g_hat * (theta_r - volt[t]) + g_rhat * theta_s
        g_v = g_hat * (1.0 - spikes[t]) + g_spike * local[t]
        grads.append(g_v)
        g_hat = 2.0 * volt_hat[t] * g_v + theta_v * g_rhat
        g_rhat = (1.0 - theta_u) * g_rhat - g_v
    steps = grads[::-1]
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + current_decay * steps[t + 1]
    return torch.stack(steps)


_FORWARD_COMPILED = CompiledKernel(dynamic_forward_graph)
_BACKWARD_COMPILED = CompiledKernel(dynamic_backward_graph)


def dynamic_forward_numpy(x: Tensor, current_decay: float, threshold: float, theta_v: float, theta_u: float,
                          theta_r: float, theta_s: float) -> tuple[Tensor, Tensor]:
    """:func:`dynamic_forward_eager` in NumPy float32, with the same roundings: ``(spikes, volt)``."""
    xs = x.detach().numpy()
    f32 = np.float32
    cd, th, tv, tu, tr, ts = (f32(current_decay), f32(threshold), f32(theta_v), f32(theta_u), f32(theta_r),
                              f32(theta_s))
    volt = np.empty(xs.shape, np.float32)
    spikes = np.empty(xs.shape, np.float32)
    current = np.array(xs[0], dtype=np.float32)
    rec = np.zeros_like(current)
    vh = np.empty_like(current)
    tmp = np.empty_like(current)
    tmp2 = np.empty_like(current)
    volt[0] = current
    np.greater(volt[0], th, out=spikes[0])
    for t in range(1, xs.shape[0]):
        s_prev, v_prev = spikes[t - 1], volt[t - 1]
        np.multiply(current, cd, out=current)
        np.add(current, xs[t], out=current)
        np.multiply(v_prev, s_prev, out=tmp)
        np.subtract(v_prev, tmp, out=vh)
        np.multiply(s_prev, tr, out=tmp)
        np.add(vh, tmp, out=vh)
        np.multiply(s_prev, ts, out=tmp)
        np.add(rec, tmp, out=rec)
        cur = volt[t]
        np.multiply(vh, vh, out=cur)
        np.subtract(cur, vh, out=cur)
        np.subtract(cur, rec, out=cur)
        np.add(cur, current, out=cur)
        np.add(cur, vh, out=cur)
        np.multiply(vh, tv, out=tmp)
        np.multiply(rec, tu, out=tmp2)
        np.subtract(tmp, tmp2, out=tmp)
        np.add(rec, tmp, out=rec)
        np.greater(cur, th, out=spikes[t])
    return torch.from_numpy(spikes), torch.from_numpy(volt)


class DynamicKernel(torch.autograd.Function):
    """MDC-SAN's dynamic neuron over ``T`` steps: the eager or compiled kernels above."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, constants: tuple[float, float, float, float, float, float], surrogate: Surrogate,
                backend: str = "eager") -> Tensor:
        x = x.detach()
        spikes, volt, volt_hat = _FORWARD_COMPILED.run(backend, dynamic_forward_eager, x, *constants)
        ctx.save_for_backward(volt, volt_hat, spikes)
        ctx.params = (constants, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        volt, volt_hat, spikes = ctx.saved_tensors
        constants, surrogate, backend = ctx.params
        args = (volt, volt_hat, spikes, grad_spikes, *constants, surrogate)
        return _BACKWARD_COMPILED.run(backend, dynamic_backward_eager, *args), None, None, None


class MultiStepDynamic(MultiStepNeuron):
    """MDC-SAN's second-order dynamic neuron over ``[T, B, ...]`` (see the module docstring).

    :param current_decay: synaptic current decay :math:`d_c` in [0, 1]
    :param threshold: firing threshold :math:`V_{th} > 0`
    :param theta_v, theta_u, theta_r, theta_s: the neuron's dynamic constants (fixed)
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`;
        ``None`` is MDC-SAN's rectangular window of half-width 0.5
    :param backend: ``"eager"`` or ``"compile"`` (see :class:`~snnrl_sb3.kernels.MultiStepLeaky`)
    """

    parameter_class = DynamicParameters

    def __init__(self, current_decay: float = 0.5, threshold: float = 0.5, theta_v: float = -0.172,
                 theta_u: float = 0.529, theta_r: float = 0.021, theta_s: float = 0.132,
                 surrogate: str | dict | Surrogate | None = None, surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.params = params = DynamicParameters(current_decay, threshold, theta_v, theta_u, theta_r, theta_s)
        self.current_decay, self.threshold = params.current_decay, params.threshold
        self.theta_v, self.theta_u, self.theta_r, self.theta_s = (params.theta_v, params.theta_u, params.theta_r,
                                                                  params.theta_s)
        if surrogate is None and surrogate_kwargs:
            raise ValueError("surrogate_kwargs needs surrogate: name the surrogate they belong to")
        self.surrogate = rectangular(0.5) if surrogate is None else make_surrogate(surrogate, surrogate_kwargs)

    @classmethod
    def from_parameters(cls, params: DynamicParameters, *, surrogate: Surrogate | str | dict | None = None,
                        backend: str = "eager") -> MultiStepDynamic:
        """The module of a validated :class:`DynamicParameters`."""
        if not isinstance(params, DynamicParameters):
            raise TypeError(f"params must be DynamicParameters, got {type(params).__name__}")
        return cls(**dataclasses.asdict(params), surrogate=surrogate, backend=backend)

    def _constants(self) -> tuple[float, float, float, float, float, float]:
        return self.params.constants()

    def forward(self, x: Tensor) -> Tensor:
        check_time_major(x)
        if use_numpy(x):
            return dynamic_forward_numpy(x, *self._constants())[0]
        return DynamicKernel.apply(x, self._constants(), self.surrogate, self.backend)

    def reference(self, x: Tensor) -> Tensor:
        check_time_major(x)
        current = volt = recovery = spike = torch.zeros_like(x[0])
        out = []
        current_decay, threshold, theta_v, theta_u, theta_r, theta_s = self._constants()
        for t in range(x.shape[0]):
            spike, current, volt, recovery = dynamic_step(x[t], current, volt, recovery, spike, current_decay,
                                                          threshold, theta_v, theta_u, theta_r, theta_s, self.surrogate)
            out.append(spike)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return (f"current_decay={self.current_decay}, threshold={self.threshold}, theta_v={self.theta_v}, "
                f"theta_u={self.theta_u}, theta_r={self.theta_r}, theta_s={self.theta_s}, backend={self.backend!r}")


#: The kinds of this file, collected by :data:`snnrl_sb3.kernels.NEURONS`.
KINDS = (
    NeuronKind("dynamic", DynamicParameters, MultiStepDynamic, {"name": "rectangular", "width": 0.5},
               "MDC-SAN's second-order dynamic neuron"),
)
