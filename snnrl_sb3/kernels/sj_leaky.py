r"""spikingjelly's LIF neuron (``LIFNode``): input-decay charging, reset at once, ``>=`` firing.

The ground truth is :func:`snnrl_sb3.neurons.sj_lif_step`, spikingjelly's ``LIFNode`` with
``decay_input=True`` and ``detach_reset=True`` (DSQN, Chen et al. 2022, uses it with
``tau=2``, ``v_threshold=1``, ``v_reset=0`` and the ATan surrogate):

.. math::
    H_t = V_{t-1} + (X_t - V_{t-1}) / \tau, \qquad S_t = [H_t \ge \theta], \qquad
    V_t = (1 - S_t) H_t \;\; (\texttt{reset="zero"}) \quad\text{or}\quad V_t = H_t - \theta S_t
    \;\; (\texttt{"subtract"})

from :math:`V_0 = 0`, with :math:`S_t` detached in the reset. Unlike the snnTorch-style kinds of
:mod:`~snnrl_sb3.kernels.leaky` the input is scaled by :math:`1/\tau` and the reset acts on the
membrane before the next charge (and so decays with it). This file holds the parameter object
:class:`SJLIFParameters`, the eager, graph (``torch.compile``) and NumPy forms, the autograd
Function and :class:`MultiStepSJLeaky`.

**Forward.** Per step three in-place ops in spikingjelly's order, ``X - V``, ``/ τ``, ``+ V``
(so its roundings: :math:`H_t` bit-identical), and the reset, exact: ``H k`` with
``k = 1 - S`` in {0, 1}, or ``H - θ S`` (one rounding, as the reference's).

**Backward.** :math:`\partial H_{t+1} / \partial H_t = (1 - 1/\tau) k_t` (``k_t = 1 - S_t``, or 1
for the subtractive reset), so the adjoint of :math:`H` is the gated reverse discount
:math:`\delta_t = g_t \sigma'(H_t - \theta) + (1 - 1/\tau) k_t \delta_{t+1}` and the input
gradient :math:`\delta_t / \tau`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from snnrl_sb3._validation import check_choice, check_float32
from snnrl_sb3.kernels._time import gated_reverse_discount_, reverse_discount_
from snnrl_sb3.kernels.base import BACKENDS, CompiledKernel, MultiStepNeuron, NeuronKind, check_time_major, use_numpy
from snnrl_sb3.neurons import FIRES, RESETS, sj_lif_step
from snnrl_sb3.surrogate import Surrogate, make_surrogate

__all__ = [
    "SJLIFParameters",
    "SJLeakyKernel",
    "MultiStepSJLeaky",
    "sj_leaky_forward_eager",
    "sj_leaky_backward_eager",
    "sj_leaky_forward_graph",
    "sj_leaky_backward_graph",
    "sj_leaky_forward_numpy",
    "KINDS",
]


@dataclass(frozen=True)
class SJLIFParameters:
    """spikingjelly's ``LIFNode`` (``decay_input=True``, ``detach_reset=True``; defaults: its own and DSQN's).

    :param tau: membrane time constant :math:`\\tau \\ge 1` (the charge is
        :math:`H = V + (X - V)/\\tau`), finite in float32
    :param threshold: firing threshold :math:`\\theta > 0` (``v_threshold``), finite in float32
    :param reset: ``"zero"`` (the default: hard reset to ``v_reset = 0``) or ``"subtract"``
        (``v_reset=None``: :math:`V = H - \\theta S`)
    :param fire: ``"ge"`` (the default: :math:`S = [H \\ge \\theta]`, spikingjelly's ``heaviside``) or
        ``"gt"`` (:math:`[H > \\theta]`)
    """

    tau: float = 2.0
    threshold: float = 1.0
    reset: str = "zero"
    fire: str = "ge"

    #: the allowed values of the string parameters
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"reset": RESETS, "fire": FIRES}

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_float32("tau", self.tau, low=1.0))
        object.__setattr__(self, "threshold", check_float32("threshold", self.threshold, low=0.0,
                                                            low_inclusive=False))
        check_choice("reset", self.reset, RESETS)
        check_choice("fire", self.fire, FIRES)


def _scalar(value: float, like: Tensor) -> Tensor:
    return like.new_full((), value)


# ---- eager kernels (the default) -------------------------------------------------------------


def sj_leaky_forward_eager(x: Tensor, tau: float, threshold: float, zero_reset: bool = True,
                           inclusive: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """Forward over ``x[T, B, ...]`` in place: ``(spikes, charged, keep)``.

    ``charged`` is :math:`H` (bit-identical to :func:`~snnrl_sb3.neurons.sj_lif_step`'s), ``keep``
    ``1 - S`` for the hard reset (``None`` for the subtractive one, whose backward needs no spikes).
    """
    charged = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    fired = torch.empty_like(charged)  # hard reset: 1 - S_t; subtractive: S_t
    volt = torch.zeros_like(charged[0])  # V_{t-1}, from V_0 = 0
    thr = _scalar(threshold, charged)
    compare = (torch.lt if inclusive else torch.le) if zero_reset else (torch.ge if inclusive else torch.gt)
    hs, fs, xs = charged.unbind(0), fired.unbind(0), x.unbind(0)
    for t in range(len(xs)):
        if t > 0:
            if zero_reset:
                torch.mul(hs[t - 1], fs[t - 1], out=volt)  # (1 - S) H: exact
            else:
                torch.sub(hs[t - 1], fs[t - 1], alpha=threshold, out=volt)  # H - θ S: θ S exact, one rounding
        cur = hs[t]
        torch.sub(xs[t], volt, out=cur).div_(tau).add_(volt)  # V + (X - V) / τ, spikingjelly's order
        compare(cur, thr, out=fs[t])
    if not zero_reset:
        return fired, charged, None
    spikes = (torch.ge if inclusive else torch.gt)(charged, thr).to(x.dtype)  # not 1 - keep: NaN never spikes
    return spikes, charged, fired


def sj_leaky_backward_eager(charged: Tensor, keep: Tensor | None, grad_spikes: Tensor, tau: float, threshold: float,
                            surrogate: Surrogate) -> Tensor:
    """Backward of :func:`sj_leaky_forward_eager`, in place: the input gradient."""
    adjoint = surrogate.grad_times(charged, grad_spikes, shift=threshold)
    decay = 1.0 - 1.0 / tau
    if keep is None:
        reverse_discount_(adjoint, decay)
    else:
        gated_reverse_discount_(adjoint, decay, keep)
    return adjoint.div_(tau)


# ---- graph kernels (backend="compile") -------------------------------------------------------


def sj_leaky_forward_graph(x: Tensor, tau: float, threshold: float, zero_reset: bool = True,
                           inclusive: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`sj_leaky_forward_eager` written out of place for ``torch.compile`` (same roundings)."""
    volt = torch.zeros_like(x[0])
    hs: list[Tensor] = []
    spikes: list[Tensor] = []
    for t in range(x.shape[0]):
        if t > 0:
            volt = hs[-1] * (1.0 - spikes[-1]) if zero_reset else hs[-1] - spikes[-1] * threshold
        cur = volt + (x[t] - volt) / tau
        hs.append(cur)
        spikes.append((cur >= threshold if inclusive else cur > threshold).to(x.dtype))
    spike = torch.stack(spikes)
    return spike, torch.stack(hs), (1.0 - spike) if zero_reset else None


def sj_leaky_backward_graph(charged: Tensor, keep: Tensor | None, grad_spikes: Tensor, tau: float, threshold: float,
                            surrogate: Surrogate) -> Tensor:
    """:func:`sj_leaky_backward_eager` written out of place for ``torch.compile``."""
    decay = 1.0 - 1.0 / tau
    steps = list((grad_spikes * surrogate.grad(charged - threshold)).unbind(0))
    gates = None if keep is None else keep.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        carry = decay * steps[t + 1] if gates is None else decay * gates[t] * steps[t + 1]
        steps[t] = steps[t] + carry
    return torch.stack(steps) / tau


_FORWARD_COMPILED = CompiledKernel(sj_leaky_forward_graph)
_BACKWARD_COMPILED = CompiledKernel(sj_leaky_backward_graph)

# ---- NumPy forward (no grad, small CPU tensors) ----------------------------------------------


def sj_leaky_forward_numpy(x: Tensor, tau: float, threshold: float, zero_reset: bool = True,
                           inclusive: bool = True) -> tuple[Tensor, Tensor]:
    """:func:`sj_leaky_forward_eager` in NumPy float32, with the same roundings: ``(spikes, charged)``."""
    xs = x.detach().numpy()
    tau32, th32 = np.float32(tau), np.float32(threshold)
    charged = np.empty(xs.shape, np.float32)
    spikes = np.empty(xs.shape, np.float32)
    volt = np.zeros(xs.shape[1:], np.float32)
    fire = np.greater_equal if inclusive else np.greater
    for t in range(xs.shape[0]):
        if t > 0:
            if zero_reset:
                np.multiply(charged[t - 1], np.float32(1.0) - spikes[t - 1], out=volt)
            else:
                np.multiply(spikes[t - 1], th32, out=volt)
                np.subtract(charged[t - 1], volt, out=volt)
        cur = charged[t]
        np.subtract(xs[t], volt, out=cur)
        np.divide(cur, tau32, out=cur)
        np.add(cur, volt, out=cur)
        fire(cur, th32, out=spikes[t])
    return torch.from_numpy(spikes), torch.from_numpy(charged)


# ---- autograd Function and module ------------------------------------------------------------


class SJLeakyKernel(torch.autograd.Function):
    """spikingjelly's LIF over ``T`` steps: the eager or compiled kernels above.

    ``apply(x, tau, threshold, zero_reset, inclusive, surrogate, backend)``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, tau: float, threshold: float, zero_reset: bool, inclusive: bool,
                surrogate: Surrogate, backend: str = "eager") -> Tensor:
        args = (x.detach(), tau, threshold, zero_reset, inclusive)
        spikes, charged, keep = _FORWARD_COMPILED.run(backend, sj_leaky_forward_eager, *args)
        ctx.save_for_backward(charged, keep)
        ctx.params = (tau, threshold, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        charged, keep = ctx.saved_tensors
        tau, threshold, surrogate, backend = ctx.params
        args = (charged, keep, grad_spikes, tau, threshold, surrogate)
        return _BACKWARD_COMPILED.run(backend, sj_leaky_backward_eager, *args), None, None, None, None, None, None


class MultiStepSJLeaky(MultiStepNeuron):
    """spikingjelly's LIF neuron over time (``LIFNode(decay_input=True, detach_reset=True)``).

    :param tau: membrane time constant >= 1
    :param threshold: firing threshold > 0
    :param reset: ``"zero"`` (hard reset to 0) or ``"subtract"``
    :param fire: ``"ge"`` (spikingjelly) or ``"gt"``
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`
        (default ATan, alpha 2: spikingjelly's ``surrogate.ATan()``, as DSQN uses it)
    :param backend: ``"eager"`` or ``"compile"`` (see :class:`~snnrl_sb3.kernels.MultiStepLeaky`)
    """

    parameter_class = SJLIFParameters

    def __init__(self, tau: float = 2.0, threshold: float = 1.0, reset: str = "zero", fire: str = "ge",
                 surrogate: str | dict | Surrogate = "atan", surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.params = params = SJLIFParameters(tau, threshold, reset, fire)
        self.tau, self.threshold, self.reset, self.fire = params.tau, params.threshold, params.reset, params.fire
        self.surrogate = make_surrogate(surrogate, surrogate_kwargs)

    @classmethod
    def from_parameters(cls, params: SJLIFParameters, *, surrogate: Surrogate | str | dict = "atan",
                        backend: str = "eager") -> MultiStepSJLeaky:
        """The module of a validated :class:`SJLIFParameters`."""
        if not isinstance(params, SJLIFParameters):
            raise TypeError(f"params must be SJLIFParameters, got {type(params).__name__}")
        return cls(**dataclasses.asdict(params), surrogate=surrogate, backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        check_time_major(x)
        zero_reset, inclusive = self.reset == "zero", self.fire == "ge"
        if use_numpy(x):
            return sj_leaky_forward_numpy(x, self.tau, self.threshold, zero_reset, inclusive)[0]
        return SJLeakyKernel.apply(x, self.tau, self.threshold, zero_reset, inclusive, self.surrogate, self.backend)

    def reference(self, x: Tensor) -> Tensor:
        check_time_major(x)
        volt = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spike, _, volt = sj_lif_step(x[t], volt, self.tau, self.threshold, self.surrogate, reset=self.reset,
                                         fire=self.fire)
            spikes.append(spike)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, threshold={self.threshold}, reset={self.reset!r}, fire={self.fire!r}, "
                f"backend={self.backend!r}")


#: The kinds of this file, collected by :data:`snnrl_sb3.kernels.NEURONS`.
KINDS = (
    NeuronKind("sj_lif", SJLIFParameters, MultiStepSJLeaky, {"name": "atan", "alpha": 2.0},
               "spikingjelly's LIFNode (DSQN): H = V + (X - V)/tau, >= firing, hard reset to 0"),
)
