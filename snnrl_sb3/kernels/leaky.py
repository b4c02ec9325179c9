r"""Leaky neurons with a detached reset (snnTorch's ``Leaky``): binary LIF, asymmetric and symmetric ternary.

The ground truth is :func:`snnrl_sb3.neurons.ternary_leaky_step` (``neg_threshold=None``: the
binary LIF neuron, equal to ``snn.Leaky``), with its options: the binary neuron's ``reset``
(``"subtract"`` or ``"zero"``) and ``fire`` (``"gt"``: ``>``, or ``"ge"``: ``>=``), the ternary neurons'
``surrogate_branches`` (``"both"`` or ``"sign"``) and a raw θ⁻ clamped where it fires
(``neg_threshold_param="clamped"``, whose reset adds the raw value). This file holds every other
form of it:

* the parameter value objects :class:`LIFParameters`, :class:`TernaryParameters`,
  :class:`SymmetricTernaryParameters` (validated on construction, no module needed);
* :func:`leaky_forward_eager` / :func:`leaky_backward_eager`: the default kernels, in place on
  preallocated buffers;
* :func:`leaky_forward_graph` / :func:`leaky_backward_graph`: the same written out of place, for
  ``torch.compile`` (``backend="compile"``);
* :func:`leaky_forward_numpy`: the no-grad forward in NumPy float32 (batch-1 acting);
* :func:`leaky_zero_forward_eager` / ``_backward_eager`` / ``_graph`` / ``_numpy``: the same
  for the binary neuron with the hard reset (``reset="zero"``);
* :class:`LeakyKernel` and :class:`LeakyZeroKernel`, the autograd Functions, and
  :class:`MultiStepLeaky`, the module, which sends ``backend="cpp"`` to the fused C++ Function of
  :func:`snnrl_sb3.kernels._cpp.leaky` where it applies (CPU float32, ATan or trapezoid-family
  surrogate; the same spikes, bit for bit) and to :class:`LeakyKernel` / :class:`LeakyZeroKernel`
  otherwise.

**Forward.** Per step, ``U = beta * U + x - reset`` with the reference's roundings, so the
membranes are bit-identical: ``addcmul(x, U, 1, value=beta)`` rounds ``beta * U`` and the sum
separately (unlike ``add(alpha=)``, a fused multiply-add), and ``θ⁺ [U > θ⁺]`` is exact, so
subtracting the reset is one more rounding, as in the reference. Spikes are comparisons written
straight into float buffers, against 0-dim tensors (a Python float is wrapped on every call).
The ternary neuron keeps its ``+1`` and ``-1`` indicators in two buffers, so the reset needs no
clamp, and takes their difference once at the end.

**Backward.** With the detached reset, the membrane adjoint is the linear recurrence
:math:`\delta_t = a_t + \beta\,\delta_{t+1}` with :math:`a_t = g_t (\sigma'(U_t - \theta^+) +
\sigma'(-\theta^- - U_t))`: the surrogate's :meth:`~snnrl_sb3.surrogate.Surrogate.grad_times`
(a few in-place passes, no knowledge of the surrogate's type here) and the in-place
:func:`~snnrl_sb3.kernels._time.reverse_discount_`. The trainable :math:`\theta^-` gets
:math:`\sum_t g_t \sigma'(-\theta^- - U_t) + \sum_t \delta_{t+1} [U_t < -\theta^-]` (the firing
condition's term and the reset's, returned apart for a clamped θ⁻, whose reset is the raw value).
``surrogate_branches="sign"`` keeps each surrogate on its side only (the first term where
:math:`U_t \ge 0`, the second where :math:`U_t < 0`): two masks, same recurrence. With the hard
reset (``reset="zero"``, binary), :math:`U_t = \beta (1 - S_{t-1}) U_{t-1} + I_t` and the adjoint is
:math:`\delta_t = a_t + \beta (1 - S_t) \delta_{t+1}` (one ``addcmul`` per step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from snnrl_sb3._validation import check_bool, check_choice, check_float32
from snnrl_sb3.kernels import _cpp
from snnrl_sb3.kernels._time import gated_reverse_discount_, reverse_discount_
from snnrl_sb3.kernels.base import BACKENDS, CompiledKernel, MultiStepNeuron, NeuronKind, check_time_major, use_numpy
from snnrl_sb3.neurons import (
    FIRES,
    NEG_THRESHOLD_PARAMS,
    RESETS,
    SURROGATE_BRANCHES,
    THRESHOLD_FLOOR,
    ClampedParameter,
    PositiveParameter,
    ternary_leaky_step,
)
from snnrl_sb3.surrogate import Surrogate, make_surrogate

__all__ = [
    "LIFParameters",
    "TernaryParameters",
    "SymmetricTernaryParameters",
    "LeakyKernel",
    "LeakyZeroKernel",
    "MultiStepLeaky",
    "leaky_forward_eager",
    "leaky_backward_eager",
    "leaky_forward_graph",
    "leaky_backward_graph",
    "leaky_forward_numpy",
    "leaky_zero_forward_eager",
    "leaky_zero_backward_eager",
    "leaky_zero_forward_graph",
    "leaky_zero_backward_graph",
    "leaky_zero_forward_numpy",
    "DEFAULT_NEG_THRESHOLD_MAX",
    "KINDS",
]

#: Upper bound of a clamped θ⁻ when ``neg_threshold_max`` is not given: DATSQN's ``vthn.clamp(0, 10)``.
DEFAULT_NEG_THRESHOLD_MAX = 10.0


def _beta(value: Any) -> float:
    return check_float32("beta", value, low=0.0, high=1.0)


def _threshold(value: Any) -> float:
    return check_float32("threshold", value, low=0.0, low_inclusive=False)


@dataclass(frozen=True)
class LIFParameters:
    """Binary leaky integrate-and-fire neuron (``snn.Leaky``).

    :param beta: membrane decay, in [0, 1] (1: integrate-and-fire)
    :param threshold: firing threshold :math:`\\theta > 0`, finite in float32
    :param reset: ``"subtract"`` (:math:`U_t = \\beta U_{t-1} + I_t - \\theta S_{t-1}`, the default) or
        ``"zero"`` (hard reset, :math:`U_t = \\beta (1 - S_{t-1}) U_{t-1} + I_t`): snnTorch's
        ``reset_mechanism``
    :param fire: ``"gt"`` (:math:`S_t = [U_t > \\theta]`, snnTorch, the default) or ``"ge"``
        (:math:`[U_t \\ge \\theta]`)
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    fire: str = "gt"

    #: the allowed values of the string parameters
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"reset": RESETS, "fire": FIRES}

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))
        check_choice("reset", self.reset, RESETS)
        check_choice("fire", self.fire, FIRES)


@dataclass(frozen=True)
class TernaryParameters:
    """Asymmetric ternary leaky neuron (seed 000): +1 above :math:`\\theta^+`, -1 below :math:`-\\theta^-`.

    :param beta: membrane decay, in [0, 1]
    :param threshold: positive threshold :math:`\\theta^+ > 0` (fixed), finite in float32
    :param neg_threshold: initial negative threshold, finite in float32: :math:`\\theta^- >`
        ``THRESHOLD_FLOOR`` for the softplus parametrisation, in ``[0, neg_threshold_max]`` for the
        clamped one
    :param learn_neg_threshold: train :math:`\\theta^-`
    :param surrogate_branches: ``"both"`` (the default: :math:`\\partial S/\\partial U = \\sigma'(U - \\theta^+)
        + \\sigma'(-\\theta^- - U)`) or ``"sign"`` (only the surrogate on the membrane's side: the
        first for :math:`U \\ge 0`, the second for :math:`U < 0`, as DATSQN computes it); the
        spikes are the same
    :param neg_threshold_param: ``"softplus"`` (the default: :math:`\\theta^- = \\mathrm{softplus}(\\rho)
        + \\epsilon`, kept above the floor by construction) or ``"clamped"`` (DATSQN: a raw parameter
        :math:`\\theta^-_{raw}` that fires at ``clamp(raw, 0, neg_threshold_max)`` and resets by the raw
        value, unclamped; its gradient comes through both)
    :param neg_threshold_max: upper bound of the clamped θ⁻, > 0 (default
        :data:`DEFAULT_NEG_THRESHOLD_MAX`, 10); only with ``neg_threshold_param="clamped"``
    """

    beta: float = 0.9
    threshold: float = 1.0
    neg_threshold: float = 2.0
    learn_neg_threshold: bool = True
    surrogate_branches: str = "both"
    neg_threshold_param: str = "softplus"
    neg_threshold_max: float | None = None

    #: the allowed values of the string parameters
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"surrogate_branches": SURROGATE_BRANCHES,
                                                     "neg_threshold_param": NEG_THRESHOLD_PARAMS}

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))
        check_bool("learn_neg_threshold", self.learn_neg_threshold)
        check_choice("surrogate_branches", self.surrogate_branches, SURROGATE_BRANCHES)
        check_choice("neg_threshold_param", self.neg_threshold_param, NEG_THRESHOLD_PARAMS)
        if self.neg_threshold_param == "softplus":
            if self.neg_threshold_max is not None:
                raise ValueError("neg_threshold_max applies to neg_threshold_param='clamped' only (the softplus "
                                 f"θ⁻ has no upper bound); got neg_threshold_max={self.neg_threshold_max!r}")
            object.__setattr__(self, "neg_threshold", check_float32("neg_threshold", self.neg_threshold,
                                                                    low=THRESHOLD_FLOOR, low_inclusive=False))
            return
        high = DEFAULT_NEG_THRESHOLD_MAX if self.neg_threshold_max is None else self.neg_threshold_max
        high = check_float32("neg_threshold_max", high, low=0.0, low_inclusive=False)
        try:
            neg = check_float32("neg_threshold", self.neg_threshold, low=0.0, high=high)
        except ValueError as err:
            raise ValueError(f"{err} (the clamped θ⁻ starts inside [0, neg_threshold_max={high}])") from None
        object.__setattr__(self, "neg_threshold_max", high)
        object.__setattr__(self, "neg_threshold", neg)


@dataclass(frozen=True)
class SymmetricTernaryParameters:
    """Symmetric ternary leaky neuron: :math:`\\theta^- = \\theta^+` (fixed), the ablation of seed 000.

    :param beta: membrane decay, in [0, 1]
    :param threshold: :math:`\\theta^+ = \\theta^- > 0`, finite in float32
    :param surrogate_branches: ``"both"`` or ``"sign"`` (DTSQN), see :class:`TernaryParameters`
    """

    beta: float = 0.9
    threshold: float = 1.0
    surrogate_branches: str = "both"

    #: the allowed values of the string parameters
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"surrogate_branches": SURROGATE_BRANCHES}

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))
        check_choice("surrogate_branches", self.surrogate_branches, SURROGATE_BRANCHES)


LeakyParameters = LIFParameters | TernaryParameters | SymmetricTernaryParameters

# ---- eager kernels (the default) -------------------------------------------------------------


def _scalar(value: float, like: Tensor) -> Tensor:
    """A 0-dim tensor of ``like``'s dtype and device: cheaper per op than a Python float."""
    return like.new_full((), value)


def leaky_forward_eager(x: Tensor, beta: float, threshold: float, neg_threshold: float | None,
                        neg_reset: float | None = None,
                        inclusive: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """Forward over ``x[T, B, ...]`` in place on preallocated buffers: ``(spikes, mem, below)``.

    ``mem`` is bit-identical to :func:`~snnrl_sb3.neurons.ternary_leaky_step`'s membranes;
    ``below`` is the ``-1`` indicator ``[U_t < -θ⁻]`` (``None`` for the binary neuron).
    ``neg_reset``: the θ⁻ a ``-1`` spike adds back (``None``: ``neg_threshold``; a clamped θ⁻'s
    raw value); ``inclusive``: the ``+1`` condition is ``U >= θ⁺`` (the binary ``fire="ge"``).
    """
    mem = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    spikes = torch.empty_like(mem)  # ternary: the +1 indicator until the end
    below = None if neg_threshold is None else torch.empty_like(mem)
    one, pos = _scalar(1.0, mem), _scalar(threshold, mem)
    neg = None if neg_threshold is None else _scalar(-neg_threshold, mem)
    add_back = neg_threshold if neg_reset is None else neg_reset
    fire = torch.ge if inclusive else torch.gt
    # per-step views made once (unbind) rather than indexed every step
    mems, ups, xs = mem.unbind(0), spikes.unbind(0), x.unbind(0)
    downs = None if below is None else below.unbind(0)
    for t in range(len(xs)):
        cur = mems[t]
        if t == 0:
            cur.copy_(xs[0])
        else:
            torch.addcmul(xs[t], mems[t - 1], one, value=beta, out=cur)  # beta*U + x, two roundings
            cur.sub_(ups[t - 1], alpha=threshold)  # θ⁺·[0|1] is exact: one rounding
            if downs is not None and add_back is not None:
                cur.add_(downs[t - 1], alpha=add_back)
        fire(cur, pos, out=ups[t])
        if downs is not None and neg is not None:
            torch.lt(cur, neg, out=downs[t])
    if below is not None:
        spikes.sub_(below)
    return spikes, mem, below


def leaky_backward_eager(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, beta: float, threshold: float,
                         neg_threshold: float | None, surrogate: Surrogate, need_neg: bool,
                         sign_branches: bool = False) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Backward of :func:`leaky_forward_eager`, mostly in place: ``(grad_input, grad_fire, grad_reset)``.

    ``grad_fire`` and ``grad_reset`` are θ⁻'s gradient through the firing condition and through the
    reset (``None`` unless ``need_neg``; ``grad_reset`` also for ``T = 1``, which has no reset); their
    sum is the gradient of a θ⁻ used in both. Whole-tensor passes (the surrogate's
    :meth:`~snnrl_sb3.surrogate.Surrogate.grad_times`), then the in-place reverse discount: fewer
    op dispatches than a per-step loop, which measured slower. ``sign_branches``: each surrogate
    only on its side of 0 (``surrogate_branches="sign"``).
    """
    adjoint = surrogate.grad_times(mem, grad_spikes, shift=threshold)
    grad_fire = grad_reset = None
    if neg_threshold is not None:
        # d spike_t / d θ⁻ = +σ'(-θ⁻ - U_t) = d spike_t / d U_t's second term; d U_t / d θ⁻ = [U_{t-1} < -θ⁻]
        local = surrogate.grad_times(mem, grad_spikes, shift=-neg_threshold, flip=True)
        if sign_branches:  # U >= 0: the θ⁺ surrogate only; U < 0 (and NaN, as torch.where): the θ⁻ one only
            positive = torch.ge(mem, 0.0)
            local.masked_fill_(positive, 0.0)
            adjoint.masked_fill_(positive.logical_not_(), 0.0)
            del positive
        adjoint.add_(local)
        if need_neg:
            grad_fire = local.sum()
        del local
    reverse_discount_(adjoint, beta)
    if grad_fire is not None and below is not None and mem.shape[0] > 1:
        grad_reset = torch.dot(adjoint[1:].reshape(-1), below[:-1].reshape(-1))
    return adjoint, grad_fire, grad_reset


# ---- graph kernels (backend="compile") -------------------------------------------------------


def leaky_forward_graph(x: Tensor, beta: float, threshold: float, neg_threshold: Tensor | None,
                        neg_reset: Tensor | None = None,
                        inclusive: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`leaky_forward_eager` written out of place for ``torch.compile`` (same roundings).

    ``neg_threshold`` (and ``neg_reset``) are 0-dim tensors here, so that a trained
    :math:`\\theta^-` does not recompile.
    """
    add_back = neg_threshold if neg_reset is None else neg_reset
    mems: list[Tensor] = []
    ups: list[Tensor] = []
    downs: list[Tensor] = []
    for t in range(x.shape[0]):
        cur = x[0] if t == 0 else mems[-1] * beta + x[t] - ups[-1] * threshold
        if t > 0 and add_back is not None:
            cur = cur + downs[-1] * add_back
        mems.append(cur)
        ups.append((cur >= threshold if inclusive else cur > threshold).to(x.dtype))
        if neg_threshold is not None:
            downs.append((cur < -neg_threshold).to(x.dtype))
    up = torch.stack(ups)
    if neg_threshold is None:
        return up, torch.stack(mems), None
    below = torch.stack(downs)
    return up - below, torch.stack(mems), below


def leaky_backward_graph(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, beta: float, threshold: float,
                         neg_threshold: Tensor | None, surrogate: Surrogate, need_neg: bool,
                         sign_branches: bool = False) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """:func:`leaky_backward_eager` written out of place for ``torch.compile``."""
    local = grad_spikes * surrogate.grad(mem - threshold)
    grad_neg_local = None
    if neg_threshold is not None:
        grad_neg_local = grad_spikes * surrogate.grad(-neg_threshold - mem)
        if sign_branches:
            positive = mem >= 0
            local = torch.where(positive, local, 0.0)
            grad_neg_local = torch.where(positive, 0.0, grad_neg_local)
        local = local + grad_neg_local
    steps = list(local.unbind(0))
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + beta * steps[t + 1]
    adjoint = torch.stack(steps)
    if not need_neg or grad_neg_local is None or below is None:
        return adjoint, None, None
    return adjoint, grad_neg_local.sum(), (adjoint[1:] * below[:-1]).sum()


_FORWARD_COMPILED = CompiledKernel(leaky_forward_graph)
_BACKWARD_COMPILED = CompiledKernel(leaky_backward_graph)

# ---- NumPy forward (no grad, small CPU tensors) ----------------------------------------------


def leaky_forward_numpy(x: Tensor, beta: float, threshold: float, neg_threshold: float | None,
                        neg_reset: float | None = None, inclusive: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`leaky_forward_eager` in NumPy float32, with the same roundings: ``(spikes, mem)``.

    For CPU float32 tensors only (``use_numpy`` decides): NumPy's per-call overhead is a quarter
    of PyTorch's, which is what a batch-1 forward costs.
    """
    xs = x.detach().numpy()
    beta32, pos32 = np.float32(beta), np.float32(threshold)
    mem = np.empty(xs.shape, np.float32)
    up = np.empty(xs.shape, np.bool_)
    down = None if neg_threshold is None else np.empty(xs.shape, np.bool_)
    neg32 = np.float32(0.0 if neg_threshold is None else neg_threshold)
    add32 = neg32 if neg_reset is None else np.float32(neg_reset)
    fire = np.greater_equal if inclusive else np.greater
    for t in range(xs.shape[0]):
        cur = mem[t]
        if t == 0:
            cur[...] = xs[0]
        else:
            np.multiply(mem[t - 1], beta32, out=cur)
            np.add(cur, xs[t], out=cur)
            np.subtract(cur, pos32, out=cur, where=up[t - 1])
            if down is not None:
                np.add(cur, add32, out=cur, where=down[t - 1])
        fire(cur, pos32, out=up[t])
        if down is not None:
            np.less(cur, -neg32, out=down[t])
    spikes = up.astype(np.float32)
    if down is not None:
        spikes -= down
    return torch.from_numpy(spikes), torch.from_numpy(mem)


# ---- hard reset (binary, reset="zero"): eager, graph and NumPy forms ------------------------------


def leaky_zero_forward_eager(x: Tensor, beta: float, threshold: float,
                             inclusive: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Forward of the hard-reset binary neuron, in place: ``(spikes, mem, keep)`` with ``keep = 1 - spikes``.

    One ``addcmul`` per step, ``x + (β U) (1 - S)``: the product with ``1 - S`` in {0, 1} is exact,
    so it rounds as the step function's ``β ((1 - S) U) + x`` (bit-identical membranes).
    ``inclusive``: spikes for ``U >= θ`` (``fire="ge"``).
    """
    mem = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    keep = torch.empty_like(mem)  # 1 - S_t
    thr = _scalar(threshold, mem)
    not_fired = torch.lt if inclusive else torch.le
    mems, keeps, xs = mem.unbind(0), keep.unbind(0), x.unbind(0)
    for t in range(len(xs)):
        cur = mems[t]
        if t == 0:
            cur.copy_(xs[0])
        else:
            torch.addcmul(xs[t], mems[t - 1], keeps[t - 1], value=beta, out=cur)  # (β U)(1 - S) + x
        not_fired(cur, thr, out=keeps[t])
    spikes = (torch.ge if inclusive else torch.gt)(mem, thr).to(x.dtype)  # not 1 - keep: a NaN never spikes
    return spikes, mem, keep


def leaky_zero_backward_eager(mem: Tensor, keep: Tensor, grad_spikes: Tensor, beta: float, threshold: float,
                              surrogate: Surrogate) -> Tensor:
    """Backward of :func:`leaky_zero_forward_eager`: the input gradient, :math:`\\delta_t = g_t \\sigma'_t
    + \\beta (1 - S_t) \\delta_{t+1}` in place."""
    adjoint = surrogate.grad_times(mem, grad_spikes, shift=threshold)
    return gated_reverse_discount_(adjoint, beta, keep)


def leaky_zero_forward_graph(x: Tensor, beta: float, threshold: float,
                             inclusive: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`leaky_zero_forward_eager` written out of place for ``torch.compile`` (same roundings)."""
    mems: list[Tensor] = []
    keeps: list[Tensor] = []
    for t in range(x.shape[0]):
        cur = x[0] if t == 0 else mems[-1] * beta * keeps[-1] + x[t]
        mems.append(cur)
        keeps.append((cur < threshold if inclusive else cur <= threshold).to(x.dtype))
    mem = torch.stack(mems)
    spikes = (mem >= threshold if inclusive else mem > threshold).to(x.dtype)
    return spikes, mem, torch.stack(keeps)


def leaky_zero_backward_graph(mem: Tensor, keep: Tensor, grad_spikes: Tensor, beta: float, threshold: float,
                              surrogate: Surrogate) -> Tensor:
    """:func:`leaky_zero_backward_eager` written out of place for ``torch.compile``."""
    steps = list((grad_spikes * surrogate.grad(mem - threshold)).unbind(0))
    gates = keep.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + beta * gates[t] * steps[t + 1]
    return torch.stack(steps)


_ZERO_FORWARD_COMPILED = CompiledKernel(leaky_zero_forward_graph)
_ZERO_BACKWARD_COMPILED = CompiledKernel(leaky_zero_backward_graph)


def leaky_zero_forward_numpy(x: Tensor, beta: float, threshold: float,
                             inclusive: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`leaky_zero_forward_eager` in NumPy float32, with the same roundings: ``(spikes, mem)``."""
    xs = x.detach().numpy()
    beta32, th32 = np.float32(beta), np.float32(threshold)
    mem = np.empty(xs.shape, np.float32)
    keep = np.empty(xs.shape[1:], np.float32)
    not_fired = np.less if inclusive else np.less_equal
    for t in range(xs.shape[0]):
        cur = mem[t]
        if t == 0:
            cur[...] = xs[0]
        else:
            np.multiply(mem[t - 1], beta32, out=cur)
            np.multiply(cur, keep, out=cur)
            np.add(cur, xs[t], out=cur)
        not_fired(cur, th32, out=keep)
    spikes = (np.greater_equal if inclusive else np.greater)(mem, th32).astype(np.float32)
    return torch.from_numpy(spikes), torch.from_numpy(mem)


# ---- autograd Function and module ------------------------------------------------------------


class LeakyKernel(torch.autograd.Function):
    """Binary/ternary leaky neuron over ``T`` steps: the eager or compiled kernels above.

    ``apply(x, neg_param, neg_threshold, beta, threshold, surrogate, backend, reset_param, neg_reset,
    sign_branches, inclusive)``: ``neg_param`` is the trainable :math:`\\theta^-` tensor of the firing
    condition that receives a gradient (``None`` when fixed or binary), ``neg_threshold`` its value as
    a float (``None`` for the binary neuron). ``reset_param`` / ``neg_reset``: the θ⁻ the reset adds,
    when it is another tensor (a clamped θ⁻'s raw parameter; ``None``: ``neg_param`` takes both
    gradients); ``sign_branches`` and ``inclusive`` as in the kernels.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, neg_param: Tensor | None, neg_threshold: float | None, beta: float,
                threshold: float, surrogate: Surrogate, backend: str = "eager", reset_param: Tensor | None = None,
                neg_reset: float | None = None, sign_branches: bool = False, inclusive: bool = False) -> Tensor:
        x = x.detach()
        out = None
        if backend == "compile":
            neg_t = None if neg_threshold is None else _scalar(neg_threshold, x)
            reset_t = None if neg_reset is None else _scalar(neg_reset, x)
            out = _FORWARD_COMPILED(x, beta, threshold, neg_t, reset_t, inclusive)
        if out is None:
            out = leaky_forward_eager(x, beta, threshold, neg_threshold, neg_reset, inclusive)
        spikes, mem, below = out
        ctx.save_for_backward(mem, below)
        ctx.params = (neg_param is not None, reset_param is not None, neg_threshold, beta, threshold, surrogate,
                      backend, sign_branches)
        if neg_param is not None:
            ctx.neg_shape = neg_param.shape
        if reset_param is not None:
            ctx.reset_shape = reset_param.shape
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        mem, below = ctx.saved_tensors
        has_param, split, neg_threshold, beta, threshold, surrogate, backend, sign_branches = ctx.params
        need_neg = (has_param and ctx.needs_input_grad[1]) or (split and ctx.needs_input_grad[7])
        out = None
        if backend == "compile":
            neg_t = None if neg_threshold is None else _scalar(neg_threshold, mem)
            out = _BACKWARD_COMPILED(mem, below, grad_spikes, beta, threshold, neg_t, surrogate, need_neg,
                                     sign_branches)
        if out is None:
            out = leaky_backward_eager(mem, below, grad_spikes, beta, threshold, neg_threshold, surrogate, need_neg,
                                       sign_branches)
        grad_input, grad_fire, grad_reset = out
        grad_neg = grad_fire
        if not split and grad_fire is not None and grad_reset is not None:
            grad_neg = grad_fire + grad_reset  # one θ⁻ in the firing condition and in the reset
        if grad_neg is not None and has_param:
            grad_neg = grad_neg.reshape(ctx.neg_shape)
        grad_reset_param = None
        if split and grad_reset is not None:  # T = 1: no reset, no gradient through it
            grad_reset_param = grad_reset.reshape(ctx.reset_shape)
        return grad_input, grad_neg, None, None, None, None, None, grad_reset_param, None, None, None


class LeakyZeroKernel(torch.autograd.Function):
    """The hard-reset binary leaky neuron over ``T`` steps: the eager or compiled kernels above.

    ``apply(x, beta, threshold, inclusive, surrogate, backend)``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, beta: float, threshold: float, inclusive: bool, surrogate: Surrogate,
                backend: str = "eager") -> Tensor:
        args = (x.detach(), beta, threshold, inclusive)
        spikes, mem, keep = _ZERO_FORWARD_COMPILED.run(backend, leaky_zero_forward_eager, *args)
        ctx.save_for_backward(mem, keep)
        ctx.params = (beta, threshold, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        mem, keep = ctx.saved_tensors
        beta, threshold, surrogate, backend = ctx.params
        args = (mem, keep, grad_spikes, beta, threshold, surrogate)
        return _ZERO_BACKWARD_COMPILED.run(backend, leaky_zero_backward_eager, *args), None, None, None, None, None


class MultiStepLeaky(MultiStepNeuron):
    r"""Leaky neuron over time, binary or ternary (snnTorch ``Leaky`` conventions).

    * ``neg_threshold=None``: binary LIF, spike for spike equal to ``snn.Leaky`` (with its
      ``reset_mechanism`` ``"subtract"`` or ``"zero"``: ``reset``), firing on ``>`` or ``>=``
      (``fire``);
    * ``neg_threshold=θ⁻``: asymmetric ternary, :math:`\theta^-` trainable if ``learn_neg_threshold``,
      softplus-parametrised or raw and clamped (``neg_threshold_param``, ``neg_threshold_max``);
    * ``symmetric=True``: ternary with :math:`\theta^- = \theta^+` (fixed; ``neg_threshold`` must
      then be ``None``).

    Each option belongs to one of the three: another one's option is a ``ValueError``.

    :param beta: membrane decay in [0, 1]
    :param threshold: positive threshold :math:`\theta^+ > 0` (fixed)
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`
    :param backend: ``"eager"`` (hand-written kernels), ``"compile"`` (``torch.compile``d
        kernels: several seconds of compiling per input shape, needs a C++ compiler, falls back
        to ``"eager"`` with a warning without one) or ``"cpp"`` (fused C++ loops,
        :mod:`~snnrl_sb3.kernels._cpp`: built once per machine, needs a C++ compiler and ninja, falls
        back to ``"eager"`` with a warning without them; CPU float32 with the ``atan`` or
        trapezoid-family surrogates only, anything else runs ``"eager"``)
    :param reset: ``"subtract"`` or ``"zero"`` (binary only), see :class:`LIFParameters`
    :param fire: ``"gt"`` or ``"ge"`` (binary only)
    :param surrogate_branches: ``"both"`` or ``"sign"`` (ternary only), see :class:`TernaryParameters`
    :param neg_threshold_param: ``"softplus"`` or ``"clamped"`` (asymmetric ternary only)
    :param neg_threshold_max: the clamped θ⁻'s upper bound (``neg_threshold_param="clamped"`` only)
    """

    parameter_class = (LIFParameters, TernaryParameters, SymmetricTernaryParameters)

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, neg_threshold: float | None = None,
                 learn_neg_threshold: bool = True, symmetric: bool = False,
                 surrogate: str | dict | Surrogate = "atan", surrogate_kwargs: dict | None = None,
                 backend: str = "eager", *, reset: str = "subtract", fire: str = "gt",
                 surrogate_branches: str = "both", neg_threshold_param: str = "softplus",
                 neg_threshold_max: float | None = None) -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.symmetric = check_bool("symmetric", symmetric)
        check_bool("learn_neg_threshold", learn_neg_threshold)
        check_choice("reset", reset, RESETS)
        check_choice("fire", fire, FIRES)
        check_choice("surrogate_branches", surrogate_branches, SURROGATE_BRANCHES)
        check_choice("neg_threshold_param", neg_threshold_param, NEG_THRESHOLD_PARAMS)
        binary = not self.symmetric and neg_threshold is None
        if not binary and (reset != "subtract" or fire != "gt"):
            raise ValueError(f"reset={reset!r} and fire={fire!r}: reset and fire apply to the binary neuron only "
                             "(neg_threshold=None, symmetric=False); the ternary ones have reset='subtract', "
                             "fire='gt'")
        if binary and surrogate_branches != "both":
            raise ValueError(f"surrogate_branches={surrogate_branches!r} applies to the ternary neurons only "
                             "(give neg_threshold, or symmetric=True)")
        if (binary or self.symmetric) and (neg_threshold_param != "softplus" or neg_threshold_max is not None):
            raise ValueError("neg_threshold_param and neg_threshold_max apply to the asymmetric ternary neuron only "
                             "(a trainable θ⁻: give neg_threshold)")
        params: LeakyParameters
        if self.symmetric:
            if neg_threshold is not None:
                raise ValueError("neg_threshold does not apply to symmetric=True (θ⁻ = θ⁺ = threshold); "
                                 f"got neg_threshold={neg_threshold!r}")
            params = SymmetricTernaryParameters(beta, threshold, surrogate_branches)
        elif neg_threshold is None:
            params = LIFParameters(beta, threshold, reset, fire)
        else:
            params = TernaryParameters(beta, threshold, neg_threshold, learn_neg_threshold, surrogate_branches,
                                       neg_threshold_param, neg_threshold_max)
        self.params = params
        self.beta, self.threshold = params.beta, params.threshold
        self.reset, self.fire, self.surrogate_branches = reset, fire, surrogate_branches
        self.surrogate = make_surrogate(surrogate, surrogate_kwargs)
        self.neg: PositiveParameter | ClampedParameter | None = None
        if isinstance(params, TernaryParameters):
            if params.neg_threshold_param == "clamped":
                assert params.neg_threshold_max is not None  # set by TernaryParameters
                self.neg = ClampedParameter(params.neg_threshold, 0.0, params.neg_threshold_max,
                                            requires_grad=params.learn_neg_threshold)
            else:
                self.neg = PositiveParameter(params.neg_threshold, requires_grad=params.learn_neg_threshold)

    @classmethod
    def from_parameters(cls, params: LeakyParameters, *, surrogate: Surrogate | str | dict = "atan",
                        backend: str = "eager") -> MultiStepLeaky:
        """The module of a validated :class:`LIFParameters`, :class:`TernaryParameters` or
        :class:`SymmetricTernaryParameters`."""
        if not isinstance(params, cls.parameter_class):
            raise TypeError(f"params must be one of {[c.__name__ for c in cls.parameter_class]}, "
                            f"got {type(params).__name__}")
        kwargs = dataclasses.asdict(params)
        if isinstance(params, SymmetricTernaryParameters):
            kwargs["symmetric"] = True
        return cls(**kwargs, surrogate=surrogate, backend=backend)

    @property
    def ternary(self) -> bool:
        return self.symmetric or self.neg is not None

    @property
    def neg_threshold(self) -> Tensor | None:
        """The negative threshold of the firing condition as a tensor (``None`` for the binary neuron;
        a clamped θ⁻'s clamped value)."""
        if self.symmetric:
            return torch.tensor(self.threshold)
        return None if self.neg is None else self.neg.value

    def forward(self, x: Tensor) -> Tensor:
        check_time_major(x)
        inclusive = self.fire == "ge"
        if self.reset == "zero":
            if use_numpy(x):
                return leaky_zero_forward_numpy(x, self.beta, self.threshold, inclusive)[0]
            if self.backend == "cpp":
                out = _cpp.leaky(x, None, None, self.beta, self.threshold, _cpp.MODE_ZERO, None, None, inclusive,
                                 self.surrogate, False)
                if out is not None:
                    return out
            return LeakyZeroKernel.apply(x, self.beta, self.threshold, inclusive, self.surrogate, self.backend)
        reset_param = neg_reset = None
        if self.symmetric:
            neg_param, neg_threshold = None, self.threshold
        elif self.neg is not None:
            neg_param = self.neg.value
            neg_threshold = float(neg_param.detach())
            if isinstance(self.neg, ClampedParameter):  # the reset adds the raw θ⁻
                reset_param = self.neg.raw
                neg_reset = float(reset_param.detach())
        else:
            neg_param = neg_threshold = None
        if use_numpy(x, neg_param, reset_param):
            return leaky_forward_numpy(x, self.beta, self.threshold, neg_threshold, neg_reset, inclusive)[0]
        if self.backend == "cpp":
            mode = _cpp.MODE_SUBTRACT if neg_threshold is None else _cpp.MODE_TERNARY
            out = _cpp.leaky(x, neg_param, reset_param, self.beta, self.threshold, mode, neg_threshold, neg_reset,
                             inclusive, self.surrogate, self.surrogate_branches == "sign")
            if out is not None:
                return out
        return LeakyKernel.apply(x, neg_param, neg_threshold, self.beta, self.threshold, self.surrogate, self.backend,
                                 reset_param, neg_reset, self.surrogate_branches == "sign", inclusive)

    def reference(self, x: Tensor) -> Tensor:
        check_time_major(x)
        neg = self.neg_threshold
        neg_reset = self.neg.raw if isinstance(self.neg, ClampedParameter) else None
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = ternary_leaky_step(x[t], mem, self.beta, self.threshold, neg, self.surrogate, reset=self.reset,
                                          fire=self.fire, surrogate_branches=self.surrogate_branches,
                                          neg_reset_threshold=neg_reset)
            spikes.append(spk)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        kind = "symmetric ternary" if self.symmetric else ("ternary" if self.neg is not None else "binary")
        options = [f"{name}={value!r}" for name, value, default in (
            ("reset", self.reset, "subtract"), ("fire", self.fire, "gt"),
            ("surrogate_branches", self.surrogate_branches, "both")) if value != default]
        if isinstance(self.neg, ClampedParameter):
            options.append(f"neg_threshold_param='clamped', neg_threshold_max={self.neg.high}")
        return ", ".join([f"{kind}, beta={self.beta}, threshold={self.threshold}", *options,
                          f"backend={self.backend!r}"])


_ATAN = {"name": "atan", "alpha": 2.0}

#: The kinds of this file, collected by :data:`snnrl_sb3.kernels.NEURONS`.
KINDS = (
    NeuronKind("lif", LIFParameters, MultiStepLeaky, _ATAN,
               "binary LIF (snn.Leaky: subtractive or zero reset, > or >= firing)"),
    NeuronKind("ternary", TernaryParameters, MultiStepLeaky, _ATAN,
               "asymmetric ternary LIF, trainable negative threshold (seed 000; DATSQN: sign-side surrogate, "
               "clamped raw θ⁻)"),
    NeuronKind("symmetric_ternary", SymmetricTernaryParameters, MultiStepLeaky, _ATAN,
               "ternary LIF with θ⁻ = θ⁺ (DTSQN: sign-side surrogate)"),
)
