r"""Pop-SAN's current-based LIF neuron (refractory "hard" reset, not detached).

The ground truth is :func:`snnrl_sb3.neurons.current_leaky_step`:

.. math::
    C_t = d_c C_{t-1} + I_t, \qquad V_t = d_v V_{t-1} (1 - S_{t-1}) + C_t, \qquad S_t = [V_t > \theta]

This file holds the parameter object :class:`CurrentLIFParameters`, the eager, graph
(``torch.compile``) and NumPy forms, the autograd Function and :class:`MultiStepCurrentLeaky`.

**Forward.** Two ``addcmul`` per step reproduce the reference's roundings exactly:
``addcmul(x, C, 1, value=d_c)`` is ``d_c * C + x`` and ``addcmul(C, V, keep, value=d_v)`` is
``(d_v * V) * (1 - S) + C`` (the product with ``1 - S`` in {0, 1} is exact). The ``keep = 1 - S``
buffers are kept for the backward; the spikes are one comparison over all steps at the end.

**Backward.** The two paths from :math:`V_t` to :math:`V_{t+1}` (leak and the non-detached reset)
fold into one factor :math:`c_t = d_v (1 - S_t - V_t σ'_t)`, so the reverse loop is one
``addcmul`` per step, :math:`\delta_t = g_t σ'_t + c_t \delta_{t+1}`; the current is a linear
leaky trace of the input, so the input gradient is the reverse discount of :math:`\delta` by
:math:`d_c`.
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
from snnrl_sb3.neurons import current_leaky_step
from snnrl_sb3.surrogate import Surrogate, make_surrogate, rectangular

__all__ = [
    "CurrentLIFParameters",
    "CurrentLeakyKernel",
    "MultiStepCurrentLeaky",
    "current_leaky_forward_eager",
    "current_leaky_backward_eager",
    "current_leaky_forward_graph",
    "current_leaky_backward_graph",
    "current_leaky_forward_numpy",
    "KINDS",
]


@dataclass(frozen=True)
class CurrentLIFParameters:
    """Pop-SAN's current-based LIF neuron (defaults: Pop-SAN's).

    :param current_decay: synaptic current decay :math:`d_c`, in [0, 1]
    :param volt_decay: voltage decay :math:`d_v`, in [0, 1]
    :param threshold: firing threshold :math:`\\theta > 0`, finite in float32
    """

    current_decay: float = 0.5
    volt_decay: float = 0.75
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "current_decay", check_float32("current_decay", self.current_decay,
                                                                low=0.0, high=1.0))
        object.__setattr__(self, "volt_decay", check_float32("volt_decay", self.volt_decay, low=0.0, high=1.0))
        object.__setattr__(self, "threshold", check_float32("threshold", self.threshold, low=0.0,
                                                            low_inclusive=False))


def current_leaky_forward_eager(x: Tensor, current_decay: float, volt_decay: float,
                                threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """Forward over ``x[T, B, ...]`` in place: ``(spikes, volt, keep)`` with ``keep = 1 - spikes``.

    ``volt`` is bit-identical to :func:`~snnrl_sb3.neurons.current_leaky_step`'s voltages.
    """
    volt = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    keep = torch.empty_like(volt)  # 1 - S_t
    volts, keeps, xs = volt.unbind(0), keep.unbind(0), x.unbind(0)
    one = torch.tensor(1.0, dtype=x.dtype, device=x.device)
    thr = torch.tensor(threshold, dtype=x.dtype, device=x.device)
    current = xs[0].clone(memory_format=torch.contiguous_format)
    for t in range(len(xs)):
        cur = volts[t]
        if t == 0:
            cur.copy_(current)
        else:
            torch.addcmul(xs[t], current, one, value=current_decay, out=current)  # d_c C + x
            torch.addcmul(current, volts[t - 1], keeps[t - 1], value=volt_decay, out=cur)  # (d_v V)(1 - S) + C
        torch.le(cur, thr, out=keeps[t])  # 1 - S_t (a NaN voltage stays NaN either way)
    spikes = torch.gt(volt, thr).to(x.dtype)
    return spikes, volt, keep


def current_leaky_backward_eager(volt: Tensor, keep: Tensor, grad_spikes: Tensor, current_decay: float,
                                 volt_decay: float, threshold: float, surrogate: Surrogate) -> Tensor:
    """Backward of :func:`current_leaky_forward_eager`, mostly in place: the input gradient."""
    local = surrogate.grad_times(volt, None, shift=threshold)  # σ'_t, fresh
    adjoint = torch.mul(grad_spikes, local)
    # c_t = d_v (1 - S_t - V_t σ'_t), into `local`: two passes
    torch.addcmul(keep, volt, local, value=-1.0, out=local).mul_(volt_decay)
    steps, factors = adjoint.unbind(0), local.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        steps[t].addcmul_(steps[t + 1], factors[t])
    # the current is a linear leaky trace of the input: reverse-discount the voltage adjoint
    return reverse_discount_(adjoint, current_decay)


def current_leaky_forward_graph(x: Tensor, current_decay: float, volt_decay: float,
                                threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`current_leaky_forward_eager` written out of place for ``torch.compile``."""
    current = x[0]
    volts: list[Tensor] = []
    keeps: list[Tensor] = []
    for t in range(x.shape[0]):
        if t == 0:
            cur = current
        else:
            current = current * current_decay + x[t]
            cur = volts[-1] * volt_decay * keeps[-1] + current
        volts.append(cur)
        keeps.append((cur <= threshold).to(x.dtype))
    volt = torch.stack(volts)
    return (volt > threshold).to(x.dtype), volt, torch.stack(keeps)


def current_leaky_backward_graph(volt: Tensor, keep: Tensor, grad_spikes: Tensor, current_decay: float,
                                 volt_decay: float, threshold: float, surrogate: Surrogate) -> Tensor:
    """:func:`current_leaky_backward_eager` written out of place for ``torch.compile``."""
    slope = surrogate.grad(volt - threshold)
    factors = (keep - volt * slope) * volt_decay
    steps, factor = list((grad_spikes * slope).unbind(0)), factors.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + factor[t] * steps[t + 1]
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + current_decay * steps[t + 1]
    return torch.stack(steps)


_FORWARD_COMPILED = CompiledKernel(current_leaky_forward_graph)
_BACKWARD_COMPILED = CompiledKernel(current_leaky_backward_graph)


def current_leaky_forward_numpy(x: Tensor, current_decay: float, volt_decay: float,
                                threshold: float) -> tuple[Tensor, Tensor]:
    """:func:`current_leaky_forward_eager` in NumPy float32, with the same roundings: ``(spikes, volt)``."""
    xs = x.detach().numpy()
    cd32, vd32, th32 = np.float32(current_decay), np.float32(volt_decay), np.float32(threshold)
    volt = np.empty(xs.shape, np.float32)
    spikes = np.empty(xs.shape, np.float32)
    current = np.array(xs[0], dtype=np.float32)
    keep = np.empty_like(current)
    for t in range(xs.shape[0]):
        cur = volt[t]
        if t == 0:
            cur[...] = current
        else:
            np.multiply(current, cd32, out=current)
            np.add(current, xs[t], out=current)
            np.multiply(volt[t - 1], vd32, out=cur)
            np.multiply(cur, keep, out=cur)
            np.add(cur, current, out=cur)
        np.greater(cur, th32, out=spikes[t])
        np.less_equal(cur, th32, out=keep)
    return torch.from_numpy(spikes), torch.from_numpy(volt)


class CurrentLeakyKernel(torch.autograd.Function):
    """Pop-SAN's current-based LIF over ``T`` steps: the eager or compiled kernels above."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, current_decay: float, volt_decay: float, threshold: float,
                surrogate: Surrogate, backend: str = "eager") -> Tensor:
        args = (x.detach(), current_decay, volt_decay, threshold)
        spikes, volt, keep = _FORWARD_COMPILED.run(backend, current_leaky_forward_eager, *args)
        ctx.save_for_backward(volt, keep)
        ctx.params = (current_decay, volt_decay, threshold, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        volt, keep = ctx.saved_tensors
        current_decay, volt_decay, threshold, surrogate, backend = ctx.params
        args = (volt, keep, grad_spikes, current_decay, volt_decay, threshold, surrogate)
        return _BACKWARD_COMPILED.run(backend, current_leaky_backward_eager, *args), None, None, None, None, None


class MultiStepCurrentLeaky(MultiStepNeuron):
    """Pop-SAN's current-based LIF over time (current decay, voltage decay, threshold, hard reset).

    :param current_decay: synaptic current decay in [0, 1]
    :param volt_decay: voltage decay in [0, 1]
    :param threshold: firing threshold > 0
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`;
        ``None`` is Pop-SAN's rectangular window of half-width 0.5
    :param backend: ``"eager"`` or ``"compile"`` (see :class:`~snnrl_sb3.kernels.MultiStepLeaky`)
    """

    parameter_class = CurrentLIFParameters

    def __init__(self, current_decay: float = 0.5, volt_decay: float = 0.75, threshold: float = 0.5,
                 surrogate: str | dict | Surrogate | None = None, surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.params = params = CurrentLIFParameters(current_decay, volt_decay, threshold)
        self.current_decay, self.volt_decay, self.threshold = params.current_decay, params.volt_decay, params.threshold
        if surrogate is None and surrogate_kwargs:
            raise ValueError("surrogate_kwargs needs surrogate: name the surrogate they belong to")
        self.surrogate = rectangular(0.5) if surrogate is None else make_surrogate(surrogate, surrogate_kwargs)

    @classmethod
    def from_parameters(cls, params: CurrentLIFParameters, *, surrogate: Surrogate | str | dict | None = None,
                        backend: str = "eager") -> MultiStepCurrentLeaky:
        """The module of a validated :class:`CurrentLIFParameters`."""
        if not isinstance(params, CurrentLIFParameters):
            raise TypeError(f"params must be CurrentLIFParameters, got {type(params).__name__}")
        return cls(**dataclasses.asdict(params), surrogate=surrogate, backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        check_time_major(x)
        if use_numpy(x):
            return current_leaky_forward_numpy(x, self.current_decay, self.volt_decay, self.threshold)[0]
        return CurrentLeakyKernel.apply(x, self.current_decay, self.volt_decay, self.threshold, self.surrogate,
                                        self.backend)

    def reference(self, x: Tensor) -> Tensor:
        check_time_major(x)
        current = volt = spike = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spike, current, volt = current_leaky_step(x[t], current, volt, spike, self.current_decay,
                                                      self.volt_decay, self.threshold, self.surrogate)
            spikes.append(spike)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (f"current_decay={self.current_decay}, volt_decay={self.volt_decay}, threshold={self.threshold}, "
                f"backend={self.backend!r}")


#: The kinds of this file, collected by :data:`snnrl_sb3.kernels.NEURONS`.
KINDS = (
    NeuronKind("current_lif", CurrentLIFParameters, MultiStepCurrentLeaky, {"name": "rectangular", "width": 0.5},
               "Pop-SAN's current-based LIF (hard reset)"),
)
