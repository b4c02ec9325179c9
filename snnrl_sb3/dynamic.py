r"""MDC-SAN's second-order dynamic neuron as a :class:`~snnrl_sb3.multistep.MultiStepNeuron`.

Zhang et al. (AAAI 2022, "Multi-scale dynamic coding improved spiking actor network", MDC-SAN)
replace Pop-SAN's current-based LIF by a two-variable (Izhikevich-like) neuron. The seed paper
(001) gives no equations; these follow the public MDC-SAN/ILC-SAN TD3 actor
(``lucifer2859/ILC-SAN``, ``ilcsan-td3/mdcsan.py``), per step :math:`t` from zero state:

.. math::
    C_t &= d_c C_{t-1} + I_t \\
    \hat V_t &= V_{t-1}(1 - S_{t-1}) + \theta_r S_{t-1}, \qquad
    \hat U_t = U_{t-1} + \theta_s S_{t-1} \\
    V_t &= \hat V_t + (\hat V_t^2 - \hat V_t - \hat U_t + C_t) = \hat V_t^2 - \hat U_t + C_t \\
    U_t &= \hat U_t + (\theta_v \hat V_t - \theta_u \hat U_t) \\
    S_t &= [V_t > V_{th}]

with the published constants :math:`\theta_v=-0.172, \theta_u=0.529, \theta_r=0.021,
\theta_s=0.132`, :math:`d_c=0.5`, :math:`V_{th}=0.5` and the rectangular pseudo-gradient of
half-width 0.5. As in MDC-SAN the reset terms are *not* detached: gradients flow through
:math:`S_{t-1}` into :math:`\hat V_t` and :math:`\hat U_t`.

``forward`` runs the recurrence without autograd and back-propagates the whole sequence with a
hand-written adjoint loop; ``reference`` is the plain autograd loop over :func:`dynamic_step`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from snnrl_sb3._validation import check_real
from snnrl_sb3.multistep import NEURONS, MultiStepNeuron, _check_time_major, _over_time, decay_matrix
from snnrl_sb3.surrogate import Surrogate, make_surrogate, rectangular

__all__ = ["MultiStepDynamic", "dynamic_step", "DYNAMIC_KIND"]

#: The name under which :class:`MultiStepDynamic` is meant to be registered in ``NEURONS``.
DYNAMIC_KIND = "dynamic"


def dynamic_step(input_: Tensor, current: Tensor, volt: Tensor, recovery: Tensor, spike: Tensor,
                 current_decay: float, threshold: float, theta_v: float, theta_u: float, theta_r: float,
                 theta_s: float, spike_fn: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step of the MDC-SAN dynamic neuron (autograd through everything, reset included).

    :return: ``(spike, current, volt, recovery)``
    """
    current = current_decay * current + input_
    volt_hat = volt * (1.0 - spike) + theta_r * spike
    rec_hat = recovery + theta_s * spike
    volt = volt_hat * volt_hat - rec_hat + current
    recovery = (1.0 - theta_u) * rec_hat + theta_v * volt_hat
    spike = spike_fn(volt - threshold)
    return spike, current, volt, recovery


class _DynamicKernel(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, current_decay: float, threshold: float, theta_v: float, theta_u: float,
                theta_r: float, theta_s: float, surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        steps = x.shape[0]
        volt = torch.empty_like(x, memory_format=torch.contiguous_format)
        volt_hat = torch.empty_like(volt)
        spikes = torch.empty_like(volt)
        current = x[0].clone()
        rec = torch.zeros_like(current)
        volt_hat[0].zero_()
        volt[0].copy_(current)  # zero state: V_0 = C_0, U_0 = 0
        torch.gt(volt[0], threshold, out=spikes[0])
        tmp = torch.empty_like(current)
        for t in range(1, steps):
            s_prev = spikes[t - 1]
            current.mul_(current_decay).add_(x[t])
            vh = volt_hat[t]
            # V^ = V (1 - S) + theta_r S
            torch.mul(volt[t - 1], s_prev, out=tmp)
            torch.sub(volt[t - 1], tmp, out=vh).add_(s_prev, alpha=theta_r)
            rec.add_(s_prev, alpha=theta_s)  # U^
            torch.mul(vh, vh, out=volt[t]).sub_(rec).add_(current)
            rec.mul_(1.0 - theta_u).add_(vh, alpha=theta_v)
            torch.gt(volt[t], threshold, out=spikes[t])
        ctx.save_for_backward(volt, volt_hat, spikes)
        ctx.params = (current_decay, threshold, theta_v, theta_u, theta_r, theta_s, surrogate)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        volt, volt_hat, spikes = ctx.saved_tensors
        current_decay, threshold, theta_v, theta_u, theta_r, theta_s, surrogate = ctx.params
        local = surrogate.grad(volt - threshold)
        grad_volt = torch.empty_like(volt)  # total adjoint of V_t (= adjoint of C_t's direct path)
        g_hat = torch.zeros_like(volt[0])  # adjoint of V^_{t+1}
        g_rhat = torch.zeros_like(volt[0])  # adjoint of U^_{t+1}
        for t in range(volt.shape[0] - 1, -1, -1):
            # S_t feeds V^_{t+1} (theta_r - V_t) and U^_{t+1} (theta_s); V_t feeds V^_{t+1} (1 - S_t)
            g_spike = grad_spikes[t] + g_hat * (theta_r - volt[t]) + g_rhat * theta_s
            g_v = g_hat * (1.0 - spikes[t]) + g_spike * local[t]
            grad_volt[t] = g_v
            g_u = g_rhat  # adjoint of U_t = adjoint of U^_{t+1}
            # V_t = V^_t^2 - U^_t + C_t ; U_t = (1 - theta_u) U^_t + theta_v V^_t
            g_hat = 2.0 * volt_hat[t] * g_v + theta_v * g_u
            g_rhat = (1.0 - theta_u) * g_u - g_v
        grad_x = _over_time(decay_matrix(volt.shape[0], current_decay, device=volt.device, dtype=volt.dtype,
                                         transpose=True), grad_volt)
        return grad_x, None, None, None, None, None, None, None


class MultiStepDynamic(MultiStepNeuron):
    """MDC-SAN's second-order dynamic neuron over ``[T, B, ...]`` (see the module docstring).

    :param current_decay: synaptic current decay :math:`d_c` in [0, 1]
    :param threshold: firing threshold :math:`V_{th} > 0`
    :param theta_v, theta_u, theta_r, theta_s: the neuron's dynamic constants (fixed)
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`;
        ``None`` is MDC-SAN's rectangular window of half-width 0.5
    """

    def __init__(self, current_decay: float = 0.5, threshold: float = 0.5, theta_v: float = -0.172,
                 theta_u: float = 0.529, theta_r: float = 0.021, theta_s: float = 0.132,
                 surrogate: str | dict | Surrogate | None = None, surrogate_kwargs: dict | None = None) -> None:
        super().__init__()
        self.current_decay = check_real("current_decay", current_decay, low=0.0, high=1.0)
        self.threshold = check_real("threshold", threshold, low=0.0, low_inclusive=False)
        self.theta_v = check_real("theta_v", theta_v)
        self.theta_u = check_real("theta_u", theta_u, low=0.0, high=2.0)
        self.theta_r = check_real("theta_r", theta_r)
        self.theta_s = check_real("theta_s", theta_s)
        if self.theta_r >= self.threshold:
            raise ValueError(f"theta_r (reset voltage) must be below threshold {self.threshold}, got {self.theta_r}")
        self.surrogate = rectangular(0.5) if surrogate is None else make_surrogate(surrogate, surrogate_kwargs)

    def _constants(self) -> tuple[float, ...]:
        return (self.current_decay, self.threshold, self.theta_v, self.theta_u, self.theta_r, self.theta_s)

    def forward(self, x: Tensor) -> Tensor:
        _check_time_major(x)
        return _DynamicKernel.apply(x, *self._constants(), self.surrogate)

    def reference(self, x: Tensor) -> Tensor:
        _check_time_major(x)
        current = volt = recovery = spike = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            spike, current, volt, recovery = dynamic_step(x[t], current, volt, recovery, spike, *self._constants(),
                                                          self.surrogate)
            out.append(spike)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return (f"current_decay={self.current_decay}, threshold={self.threshold}, theta_v={self.theta_v}, "
                f"theta_u={self.theta_u}, theta_r={self.theta_r}, theta_s={self.theta_s}")


NEURONS[DYNAMIC_KIND] = MultiStepDynamic  # make_neuron("dynamic"); registered on package import
