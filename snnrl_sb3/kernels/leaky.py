r"""Leaky neurons with subtractive, detached reset: binary LIF, asymmetric and symmetric ternary.

The ground truth is :func:`snnrl_sb3.neurons.ternary_leaky_step` (``neg_threshold=None``: the
binary LIF neuron, equal to ``snn.Leaky``). This file holds every other form of it:

* the parameter value objects :class:`LIFParameters`, :class:`TernaryParameters`,
  :class:`SymmetricTernaryParameters` (validated on construction, no module needed);
* :func:`leaky_forward_eager` / :func:`leaky_backward_eager`: the default kernels, in place on
  preallocated buffers;
* :func:`leaky_forward_graph` / :func:`leaky_backward_graph`: the same written out of place, for
  ``torch.compile`` (``backend="compile"``);
* :func:`leaky_forward_numpy`: the no-grad forward in NumPy float32 (batch-1 acting);
* :class:`LeakyKernel`, the autograd Function, and :class:`MultiStepLeaky`, the module.

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
:math:`\sum_t g_t \sigma'(-\theta^- - U_t) + \sum_t \delta_{t+1} [U_t < -\theta^-]`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from snnrl_sb3._validation import check_bool, check_choice, check_float32
from snnrl_sb3.kernels._time import reverse_discount_
from snnrl_sb3.kernels.base import BACKENDS, CompiledKernel, MultiStepNeuron, NeuronKind, check_time_major, use_numpy
from snnrl_sb3.neurons import THRESHOLD_FLOOR, PositiveParameter, ternary_leaky_step
from snnrl_sb3.surrogate import Surrogate, make_surrogate

__all__ = [
    "LIFParameters",
    "TernaryParameters",
    "SymmetricTernaryParameters",
    "LeakyKernel",
    "MultiStepLeaky",
    "leaky_forward_eager",
    "leaky_backward_eager",
    "leaky_forward_graph",
    "leaky_backward_graph",
    "leaky_forward_numpy",
    "KINDS",
]


def _beta(value: Any) -> float:
    return check_float32("beta", value, low=0.0, high=1.0)


def _threshold(value: Any) -> float:
    return check_float32("threshold", value, low=0.0, low_inclusive=False)


@dataclass(frozen=True)
class LIFParameters:
    """Binary leaky integrate-and-fire neuron (``snn.Leaky``, subtractive reset).

    :param beta: membrane decay, in [0, 1] (1: integrate-and-fire)
    :param threshold: firing threshold :math:`\\theta > 0`, finite in float32
    """

    beta: float = 0.9
    threshold: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))


@dataclass(frozen=True)
class TernaryParameters:
    """Asymmetric ternary leaky neuron (seed 000): +1 above :math:`\\theta^+`, -1 below :math:`-\\theta^-`.

    :param beta: membrane decay, in [0, 1]
    :param threshold: positive threshold :math:`\\theta^+ > 0` (fixed), finite in float32
    :param neg_threshold: initial negative threshold :math:`\\theta^- >` ``THRESHOLD_FLOOR``
        (kept above it by a softplus parametrisation), finite in float32
    :param learn_neg_threshold: train :math:`\\theta^-`
    """

    beta: float = 0.9
    threshold: float = 1.0
    neg_threshold: float = 2.0
    learn_neg_threshold: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))
        object.__setattr__(self, "neg_threshold", check_float32("neg_threshold", self.neg_threshold,
                                                                low=THRESHOLD_FLOOR, low_inclusive=False))
        check_bool("learn_neg_threshold", self.learn_neg_threshold)


@dataclass(frozen=True)
class SymmetricTernaryParameters:
    """Symmetric ternary leaky neuron: :math:`\\theta^- = \\theta^+` (fixed), the ablation of seed 000.

    :param beta: membrane decay, in [0, 1]
    :param threshold: :math:`\\theta^+ = \\theta^- > 0`, finite in float32
    """

    beta: float = 0.9
    threshold: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _beta(self.beta))
        object.__setattr__(self, "threshold", _threshold(self.threshold))


LeakyParameters = LIFParameters | TernaryParameters | SymmetricTernaryParameters

# ---- eager kernels (the default) -------------------------------------------------------------


def _scalar(value: float, like: Tensor) -> Tensor:
    """A 0-dim tensor of ``like``'s dtype and device: cheaper per op than a Python float."""
    return like.new_full((), value)


def leaky_forward_eager(x: Tensor, beta: float, threshold: float,
                        neg_threshold: float | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Forward over ``x[T, B, ...]`` in place on preallocated buffers: ``(spikes, mem, below)``.

    ``mem`` is bit-identical to :func:`~snnrl_sb3.neurons.ternary_leaky_step`'s membranes;
    ``below`` is the ``-1`` indicator ``[U_t < -θ⁻]`` (``None`` for the binary neuron).
    """
    mem = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    spikes = torch.empty_like(mem)  # ternary: the +1 indicator until the end
    below = None if neg_threshold is None else torch.empty_like(mem)
    one, pos = _scalar(1.0, mem), _scalar(threshold, mem)
    neg = None if neg_threshold is None else _scalar(-neg_threshold, mem)
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
            if downs is not None and neg_threshold is not None:
                cur.add_(downs[t - 1], alpha=neg_threshold)
        torch.gt(cur, pos, out=ups[t])
        if downs is not None and neg is not None:
            torch.lt(cur, neg, out=downs[t])
    if below is not None:
        spikes.sub_(below)
    return spikes, mem, below


def leaky_backward_eager(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, beta: float, threshold: float,
                         neg_threshold: float | None, surrogate: Surrogate,
                         need_neg: bool) -> tuple[Tensor, Tensor | None]:
    """Backward of :func:`leaky_forward_eager`, mostly in place: ``(grad_input, grad_neg_threshold)``.

    Whole-tensor passes (the surrogate's :meth:`~snnrl_sb3.surrogate.Surrogate.grad_times`), then
    the in-place reverse discount: fewer op dispatches than a per-step loop, which measured slower.
    """
    adjoint = surrogate.grad_times(mem, grad_spikes, shift=threshold)
    grad_neg = None
    if neg_threshold is not None:
        # d spike_t / d θ⁻ = +σ'(-θ⁻ - U_t) = d spike_t / d U_t's second term; d U_t / d θ⁻ = [U_{t-1} < -θ⁻]
        local = surrogate.grad_times(mem, grad_spikes, shift=-neg_threshold, flip=True)
        adjoint.add_(local)
        if need_neg:
            grad_neg = local.sum()
        del local
    reverse_discount_(adjoint, beta)
    if grad_neg is not None and below is not None and mem.shape[0] > 1:
        grad_neg = grad_neg + torch.dot(adjoint[1:].reshape(-1), below[:-1].reshape(-1))
    return adjoint, grad_neg


# ---- graph kernels (backend="compile") -------------------------------------------------------


def leaky_forward_graph(x: Tensor, beta: float, threshold: float,
                        neg_threshold: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`leaky_forward_eager` written out of place for ``torch.compile`` (same roundings).

    ``neg_threshold`` is a 0-dim tensor here, so that a trained :math:`\\theta^-` does not recompile.
    """
    mems: list[Tensor] = []
    ups: list[Tensor] = []
    downs: list[Tensor] = []
    for t in range(x.shape[0]):
        cur = x[0] if t == 0 else mems[-1] * beta + x[t] - ups[-1] * threshold
        if t > 0 and neg_threshold is not None:
            cur = cur + downs[-1] * neg_threshold
        mems.append(cur)
        ups.append((cur > threshold).to(x.dtype))
        if neg_threshold is not None:
            downs.append((cur < -neg_threshold).to(x.dtype))
    up = torch.stack(ups)
    if neg_threshold is None:
        return up, torch.stack(mems), None
    below = torch.stack(downs)
    return up - below, torch.stack(mems), below


def leaky_backward_graph(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, beta: float, threshold: float,
                         neg_threshold: Tensor | None, surrogate: Surrogate,
                         need_neg: bool) -> tuple[Tensor, Tensor | None]:
    """:func:`leaky_backward_eager` written out of place for ``torch.compile``."""
    local = grad_spikes * surrogate.grad(mem - threshold)
    grad_neg_local = None
    if neg_threshold is not None:
        grad_neg_local = grad_spikes * surrogate.grad(-neg_threshold - mem)
        local = local + grad_neg_local
    steps = list(local.unbind(0))
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + beta * steps[t + 1]
    adjoint = torch.stack(steps)
    if not need_neg or grad_neg_local is None or below is None:
        return adjoint, None
    return adjoint, grad_neg_local.sum() + (adjoint[1:] * below[:-1]).sum()


_FORWARD_COMPILED = CompiledKernel(leaky_forward_graph)
_BACKWARD_COMPILED = CompiledKernel(leaky_backward_graph)

# ---- NumPy forward (no grad, small CPU tensors) ----------------------------------------------


def leaky_forward_numpy(x: Tensor, beta: float, threshold: float,
                        neg_threshold: float | None) -> tuple[Tensor, Tensor]:
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
    for t in range(xs.shape[0]):
        cur = mem[t]
        if t == 0:
            cur[...] = xs[0]
        else:
            np.multiply(mem[t - 1], beta32, out=cur)
            np.add(cur, xs[t], out=cur)
            np.subtract(cur, pos32, out=cur, where=up[t - 1])
            if down is not None:
                np.add(cur, neg32, out=cur, where=down[t - 1])
        np.greater(cur, pos32, out=up[t])
        if down is not None:
            np.less(cur, -neg32, out=down[t])
    spikes = up.astype(np.float32)
    if down is not None:
        spikes -= down
    return torch.from_numpy(spikes), torch.from_numpy(mem)


# ---- autograd Function and module ------------------------------------------------------------


class LeakyKernel(torch.autograd.Function):
    """Binary/ternary leaky neuron over ``T`` steps: the eager or compiled kernels above.

    ``apply(x, neg_param, neg_threshold, beta, threshold, surrogate, backend)``: ``neg_param`` is the
    trainable :math:`\\theta^-` tensor that receives a gradient (``None`` when fixed or binary),
    ``neg_threshold`` its value as a float (``None`` for the binary neuron).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, neg_param: Tensor | None, neg_threshold: float | None, beta: float,
                threshold: float, surrogate: Surrogate, backend: str = "eager") -> Tensor:
        x = x.detach()
        out = None
        if backend == "compile":
            neg_t = None if neg_threshold is None else _scalar(neg_threshold, x)
            out = _FORWARD_COMPILED(x, beta, threshold, neg_t)
        spikes, mem, below = leaky_forward_eager(x, beta, threshold, neg_threshold) if out is None else out
        ctx.save_for_backward(mem, below)
        ctx.params = (neg_param is not None, neg_threshold, beta, threshold, surrogate, backend)
        if neg_param is not None:
            ctx.neg_shape = neg_param.shape
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:
        mem, below = ctx.saved_tensors
        has_param, neg_threshold, beta, threshold, surrogate, backend = ctx.params
        need_neg = has_param and ctx.needs_input_grad[1]
        out = None
        if backend == "compile":
            neg_t = None if neg_threshold is None else _scalar(neg_threshold, mem)
            out = _BACKWARD_COMPILED(mem, below, grad_spikes, beta, threshold, neg_t, surrogate, need_neg)
        if out is None:
            out = leaky_backward_eager(mem, below, grad_spikes, beta, threshold, neg_threshold, surrogate, need_neg)
        grad_input, grad_neg = out
        if grad_neg is not None:
            grad_neg = grad_neg.reshape(ctx.neg_shape)
        return grad_input, grad_neg, None, None, None, None, None


class MultiStepLeaky(MultiStepNeuron):
    r"""Leaky neuron over time, binary or ternary (snnTorch ``Leaky`` conventions).

    * ``neg_threshold=None``: binary LIF, spike for spike equal to ``snn.Leaky``;
    * ``neg_threshold=θ⁻``: asymmetric ternary, :math:`\theta^-` trainable if ``learn_neg_threshold``;
    * ``symmetric=True``: ternary with :math:`\theta^- = \theta^+` (fixed; ``neg_threshold`` must
      then be ``None``).

    :param beta: membrane decay in [0, 1]
    :param threshold: positive threshold :math:`\theta^+ > 0` (fixed)
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`
    :param backend: ``"eager"`` (hand-written kernels) or ``"compile"`` (``torch.compile``d
        kernels: several seconds of compiling per input shape, needs a C++ compiler, falls back
        to ``"eager"`` with a warning without one)
    """

    parameter_class = (LIFParameters, TernaryParameters, SymmetricTernaryParameters)

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, neg_threshold: float | None = None,
                 learn_neg_threshold: bool = True, symmetric: bool = False,
                 surrogate: str | dict | Surrogate = "atan", surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.symmetric = check_bool("symmetric", symmetric)
        check_bool("learn_neg_threshold", learn_neg_threshold)
        params: LeakyParameters
        if self.symmetric:
            if neg_threshold is not None:
                raise ValueError("neg_threshold does not apply to symmetric=True (θ⁻ = θ⁺ = threshold); "
                                 f"got neg_threshold={neg_threshold!r}")
            params = SymmetricTernaryParameters(beta, threshold)
        elif neg_threshold is None:
            params = LIFParameters(beta, threshold)
        else:
            params = TernaryParameters(beta, threshold, neg_threshold, learn_neg_threshold)
        self.params = params
        self.beta, self.threshold = params.beta, params.threshold
        self.surrogate = make_surrogate(surrogate, surrogate_kwargs)
        self.neg: PositiveParameter | None = None
        if isinstance(params, TernaryParameters):
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
        """The negative threshold as a tensor (``None`` for the binary neuron)."""
        if self.symmetric:
            return torch.tensor(self.threshold)
        return None if self.neg is None else self.neg.value

    def forward(self, x: Tensor) -> Tensor:
        check_time_major(x)
        if self.symmetric:
            neg_param, neg_threshold = None, self.threshold
        elif self.neg is not None:
            neg_param = self.neg.value
            neg_threshold = float(neg_param.detach())
        else:
            neg_param = neg_threshold = None
        if use_numpy(x, neg_param):
            return leaky_forward_numpy(x, self.beta, self.threshold, neg_threshold)[0]
        return LeakyKernel.apply(x, neg_param, neg_threshold, self.beta, self.threshold, self.surrogate, self.backend)

    def reference(self, x: Tensor) -> Tensor:
        check_time_major(x)
        neg = self.neg_threshold
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = ternary_leaky_step(x[t], mem, self.beta, self.threshold, neg, self.surrogate)
            spikes.append(spk)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        kind = "symmetric ternary" if self.symmetric else ("ternary" if self.neg is not None else "binary")
        return f"{kind}, beta={self.beta}, threshold={self.threshold}, backend={self.backend!r}"


_ATAN = {"name": "atan", "alpha": 2.0}

#: The kinds of this file, collected by :data:`snnrl_sb3.kernels.NEURONS`.
KINDS = (
    NeuronKind("lif", LIFParameters, MultiStepLeaky, _ATAN, "binary LIF (snn.Leaky, subtractive reset)"),
    NeuronKind("ternary", TernaryParameters, MultiStepLeaky, _ATAN,
               "asymmetric ternary LIF, trainable negative threshold (seed 000)"),
    NeuronKind("symmetric_ternary", SymmetricTernaryParameters, MultiStepLeaky, _ATAN,
               "ternary LIF with θ⁻ = θ⁺"),
)
