r"""Multi-step spiking neurons over time-leading tensors ``[T, B, ...]``.

Synaptic layers run once over all ``T`` steps (see :mod:`snnrl_sb3.body`); only the
element-wise recurrence here loops over time. Each neuron has two implementations:

* ``forward``: a fused kernel. The forward loop runs without autograd (in-place ops on a
  preallocated membrane buffer) and a hand-written backward handles the whole sequence at
  once. With the detached reset of snnTorch, the membrane adjoint is a linear recurrence
  :math:`\delta_t = a_t + \beta\,\delta_{t+1}`, solved in place, one step at a time.
* ``reference``: a plain Python loop over the pure step functions of :mod:`snnrl_sb3.neurons`
  with autograd, the ground truth the kernels are tested against.

The kernel's loops come in two forms: ``_eager`` (in place, the default) and ``_graph`` (out of
place, for ``torch.compile``: ``backend="compile"``). Nothing needs a compiler or a GPU: without
a compiler, ``backend="compile"`` falls back to the eager loops.
"""

from __future__ import annotations

import functools
import math
import types
import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_choice, check_real
from snnrl_sb3.neurons import THRESHOLD_FLOOR, PositiveParameter, current_leaky_step, ternary_leaky_step
from snnrl_sb3.surrogate import ATan, Surrogate, Trapezoid, make_surrogate, rectangular

__all__ = [
    "MultiStepNeuron",
    "MultiStepLeaky",
    "MultiStepCurrentLeaky",
    "NEURONS",
    "BACKENDS",
    "make_neuron",
    "decay_matrix",
]


@functools.lru_cache(maxsize=256)
def decay_matrix(num_steps: int, decay: float, *, device: torch.device | None = None,
                 dtype: torch.dtype = torch.float32, transpose: bool = False) -> Tensor:
    r"""``M[t, s] = decay**(t - s)`` for ``s <= t`` else 0 (``transpose=True`` gives ``M.T``).

    ``M @ x`` (over the time axis) solves :math:`y_t = \mathrm{decay}\, y_{t-1} + x_t`;
    ``M.T @ a`` solves the reverse recurrence :math:`\delta_t = a_t + \mathrm{decay}\,\delta_{t+1}`.
    Cached: the result is shared, never modify it in place.
    """
    t = torch.arange(num_steps, device=device, dtype=dtype)
    lag = t[:, None] - t[None, :]
    m = torch.where(lag >= 0, torch.as_tensor(decay, dtype=dtype, device=device).pow(lag.clamp(min=0)),
                    torch.zeros((), dtype=dtype, device=device))
    return m.T.contiguous() if transpose else m


def _over_time(matrix: Tensor, x: Tensor) -> Tensor:
    """Apply a ``[T, T]`` matrix along the leading time axis of ``x``."""
    return (matrix @ x.reshape(x.shape[0], -1)).reshape(x.shape)


def _surrogate_grad_times(surrogate: Surrogate, mem: Tensor, shift: float, grad: Tensor, *,
                          mirror: bool = False) -> Tensor:
    r"""``grad * σ'(mem - shift)`` (``mirror=True``: ``grad * σ'(-shift - mem)``), a fresh tensor.

    The library's own ATan and trapezoid surrogates (both even: :math:`σ'(-z) = σ'(z)`) get
    in-place formulas of a few passes over the ``[T, B, ...]`` tensors and one allocation;
    any other surrogate goes through its :meth:`~snnrl_sb3.surrogate.Surrogate.grad`.
    """
    kind = type(surrogate)
    offset = -shift if mirror else shift  # the even surrogates only see mem - offset
    if kind is ATan:
        # g σ'(z) = g / (c + c k² z²) with c = 2 / α, k = π α / 2: three passes
        c = 2.0 / surrogate.alpha
        ck2 = c * (math.pi / 2 * surrogate.alpha) ** 2
        out = torch.sub(mem, offset)
        torch.addcmul(torch.tensor(c, dtype=out.dtype, device=out.device), out, out, value=ck2, out=out)
        return torch.div(grad, out, out=out)
    if kind is Trapezoid:
        out = torch.sub(mem, offset)
        out.abs_()
        if surrogate.w1 == surrogate.w2:  # rectangle: h [|z| < w]
            torch.lt(out, surrogate.w2, out=out)
            return out.mul_(grad).mul_(surrogate.height)
        slope = surrogate.height / (surrogate.w2 - surrogate.w1)
        out.mul_(-slope).add_(surrogate.w2 * slope).clamp_(0.0, surrogate.height)
        return out.mul_(grad)
    return grad * surrogate.grad((-shift - mem) if mirror else (mem - shift))


def _reverse_discount_(adjoint: Tensor, decay: float) -> Tensor:
    r"""In place, solve :math:`\delta_t = a_t + \mathrm{decay}\,\delta_{t+1}` backwards over time."""
    if decay != 0.0 and adjoint.shape[0] > 1:
        steps = adjoint.unbind(0)
        for t in range(len(steps) - 2, -1, -1):
            steps[t].add_(steps[t + 1], alpha=decay)
    return adjoint


def _leaky_forward_eager(x: Tensor, neg_threshold: Tensor | None, beta: float,
                         pos_threshold: float) -> tuple[Tensor, Tensor, Tensor | None]:
    """:class:`_LeakyKernel`'s forward in place on preallocated buffers: ``(spikes, mem, below)``."""
    neg = None if neg_threshold is None else float(neg_threshold)
    mem = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    spikes = torch.empty_like(mem)  # ternary: the +1 indicator until the end
    below = None if neg is None else torch.empty_like(mem)  # ternary: the -1 indicator
    # per-step views made once (unbind) rather than indexed every step
    mems, ups, xs = mem.unbind(0), spikes.unbind(0), x.unbind(0)
    downs = None if below is None else below.unbind(0)
    for t in range(len(xs)):
        cur = mems[t]
        if t == 0:
            cur.copy_(xs[0])
        else:
            torch.mul(mems[t - 1], beta, out=cur)
            cur.add_(xs[t])
            cur.sub_(ups[t - 1], alpha=pos_threshold)  # θ⁺·[0|1] is exact: one rounding
            if downs is not None:
                cur.add_(downs[t - 1], alpha=neg)
        torch.gt(cur, pos_threshold, out=ups[t])
        if downs is not None:
            torch.lt(cur, -neg, out=downs[t])
    if below is not None:
        spikes.sub_(below)
    return spikes, mem, below


def _leaky_backward_eager(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, neg_threshold: Tensor | None,
                          beta: float, pos_threshold: float, surrogate: Surrogate,
                          need_neg: bool) -> tuple[Tensor, Tensor | None]:
    """:class:`_LeakyKernel`'s backward, mostly in place: ``(grad_input, grad_neg_threshold)``."""
    adjoint = _surrogate_grad_times(surrogate, mem, pos_threshold, grad_spikes)
    grad_neg = None
    if neg_threshold is not None:
        # d spike_t / d theta- = +sigma'(-theta- - U_t); d U_t / d theta- = [U_{t-1} < -theta-]
        grad_neg_local = _surrogate_grad_times(surrogate, mem, float(neg_threshold), grad_spikes, mirror=True)
        adjoint.add_(grad_neg_local)
        if need_neg:
            grad_neg = grad_neg_local.sum()
        del grad_neg_local
    _reverse_discount_(adjoint, beta)
    if grad_neg is not None and mem.shape[0] > 1:
        grad_neg = grad_neg + torch.dot(adjoint[1:].reshape(-1), below[:-1].reshape(-1))
    return adjoint, grad_neg


def _leaky_forward_graph(x: Tensor, neg_threshold: Tensor | None, beta: float,
                         pos_threshold: float) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`_leaky_forward_eager` written out of place for ``torch.compile`` (same op order)."""
    mems, ups, downs = [], [], []
    for t in range(x.shape[0]):
        cur = x[0] if t == 0 else mems[-1] * beta + x[t] - ups[-1] * pos_threshold
        if t > 0 and neg_threshold is not None:
            cur = cur + downs[-1] * neg_threshold
        mems.append(cur)
        ups.append((cur > pos_threshold).to(x.dtype))
        if neg_threshold is not None:
            downs.append((cur < -neg_threshold).to(x.dtype))
    up = torch.stack(ups)
    if neg_threshold is None:
        return up, torch.stack(mems), None
    below = torch.stack(downs)
    return up - below, torch.stack(mems), below


def _leaky_backward_graph(mem: Tensor, below: Tensor | None, grad_spikes: Tensor, neg_threshold: Tensor | None,
                          beta: float, pos_threshold: float, surrogate: Surrogate,
                          need_neg: bool) -> tuple[Tensor, Tensor | None]:
    """:func:`_leaky_backward_eager` written out of place for ``torch.compile``."""
    local = grad_spikes * surrogate.grad(mem - pos_threshold)
    grad_neg_local = None
    if neg_threshold is not None:
        grad_neg_local = grad_spikes * surrogate.grad(-neg_threshold - mem)
        local = local + grad_neg_local
    steps = list(local.unbind(0))
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + beta * steps[t + 1]
    adjoint = torch.stack(steps)
    if not need_neg or grad_neg_local is None:
        return adjoint, None
    return adjoint, grad_neg_local.sum() + (adjoint[1:] * below[:-1]).sum()


class _LeakyKernel(torch.autograd.Function):
    """Binary/ternary leaky neuron over ``T`` steps (see :func:`ternary_leaky_step`).

    Forward (:func:`_leaky_forward_eager`), per step: ``U = beta * U + x - reset`` (the
    reference's op order, so the membranes are bit-identical), then the spike as a comparison
    written straight into a float buffer (``torch.gt(..., out=float)`` is a single pass;
    ``(U > θ).float()`` is three). Ternary neurons keep the ``+1`` and ``-1`` indicators in two
    buffers, so the reset needs no clamp, and take their difference once at the end. Backward: a
    few in-place passes per threshold (:func:`_surrogate_grad_times`) and an in-place reverse
    recurrence, so few fresh ``[T, B, ...]`` buffers (each one page-faults under glibc's default
    allocator settings). ``backend="compile"`` runs the ``_graph`` versions through
    ``torch.compile`` instead (see :class:`_CompiledKernel`).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, neg_threshold: Tensor | None, beta: float, pos_threshold: float,
                surrogate: Surrogate, backend: str = "eager") -> Tensor:  # type: ignore[override]
        args = (x.detach(), None if neg_threshold is None else neg_threshold.detach(), beta, pos_threshold)
        out = _LEAKY_FORWARD(*args) if backend == "compile" else None
        spikes, mem, below = _leaky_forward_eager(*args) if out is None else out
        ctx.save_for_backward(mem, below, neg_threshold)
        ctx.params = (beta, pos_threshold, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        mem, below, neg_threshold = ctx.saved_tensors
        beta, pos_threshold, surrogate, backend = ctx.params
        need_neg = neg_threshold is not None and ctx.needs_input_grad[1]
        args = (mem, below, grad_spikes, None if neg_threshold is None else neg_threshold.detach(), beta,
                pos_threshold, surrogate, need_neg)
        out = _LEAKY_BACKWARD(*args) if backend == "compile" else None
        grad_input, grad_neg = _leaky_backward_eager(*args) if out is None else out
        if grad_neg is not None:
            grad_neg = grad_neg.reshape(neg_threshold.shape)
        return grad_input, grad_neg, None, None, None, None


def _current_leaky_forward_eager(x: Tensor, current_decay: float, volt_decay: float,
                                 threshold: float) -> tuple[Tensor, Tensor]:
    """:class:`_CurrentLeakyKernel`'s forward in place: ``(spikes, volt)``."""
    volt = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    spikes = torch.empty_like(volt)
    volts, spks, xs = volt.unbind(0), spikes.unbind(0), x.unbind(0)
    current = xs[0].clone(memory_format=torch.contiguous_format)
    keep = torch.empty_like(current)  # 1 - S_{t-1}
    for t in range(len(xs)):
        cur = volts[t]
        if t == 0:
            cur.copy_(current)
        else:
            current.mul_(current_decay).add_(xs[t])
            torch.mul(volts[t - 1], volt_decay, out=cur)
            cur.mul_(keep).add_(current)
        torch.gt(cur, threshold, out=spks[t])
        torch.le(cur, threshold, out=keep)  # 1 - S_t (a NaN membrane stays NaN either way)
    return spikes, volt


def _current_leaky_backward_eager(volt: Tensor, spikes: Tensor, grad_spikes: Tensor, current_decay: float,
                                  volt_decay: float, threshold: float, surrogate: Surrogate) -> Tensor:
    """:class:`_CurrentLeakyKernel`'s backward, mostly in place: the input gradient."""
    # σ'_t and g_t σ'_t, both [T, B, ...]
    local = _surrogate_grad_times(surrogate, volt, threshold, torch.ones((), dtype=volt.dtype, device=volt.device))
    adjoint = torch.mul(grad_spikes, local)
    # c_t = dV_{t+1}/dV_t = d_v (1 - S_t - V_t σ'_t), into `local`
    local.mul_(volt).add_(spikes).sub_(1.0).mul_(-volt_decay)
    steps, factors = adjoint.unbind(0), local.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        steps[t].addcmul_(steps[t + 1], factors[t])
    # the current is a linear leaky trace of the input: reverse-discount the voltage adjoint
    return _reverse_discount_(adjoint, current_decay)


def _current_leaky_forward_graph(x: Tensor, current_decay: float, volt_decay: float,
                                 threshold: float) -> tuple[Tensor, Tensor]:
    """:func:`_current_leaky_forward_eager` written out of place for ``torch.compile``."""
    current = x[0]
    volts, spikes = [], []
    for t in range(x.shape[0]):
        if t == 0:
            cur = current
        else:
            current = current * current_decay + x[t]
            cur = volts[-1] * volt_decay * (volts[-1] <= threshold).to(x.dtype) + current
        volts.append(cur)
        spikes.append((cur > threshold).to(x.dtype))
    return torch.stack(spikes), torch.stack(volts)


def _current_leaky_backward_graph(volt: Tensor, spikes: Tensor, grad_spikes: Tensor, current_decay: float,
                                  volt_decay: float, threshold: float, surrogate: Surrogate) -> Tensor:
    """:func:`_current_leaky_backward_eager` written out of place for ``torch.compile``."""
    slope = surrogate.grad(volt - threshold)
    factors = (1.0 - spikes - volt * slope) * volt_decay
    steps, factor = list((grad_spikes * slope).unbind(0)), factors.unbind(0)
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + factor[t] * steps[t + 1]
    for t in range(len(steps) - 2, -1, -1):
        steps[t] = steps[t] + current_decay * steps[t + 1]
    return torch.stack(steps)


class _CurrentLeakyKernel(torch.autograd.Function):
    """Pop-SAN's current-based LIF over ``T`` steps (see :func:`current_leaky_step`).

    Backward folds the two paths from ``V_t`` to ``V_{t+1}`` (leak and the non-detached reset)
    into one factor :math:`c_t = d_v (1 - S_t - V_t σ'_t)`, so the reverse loop is a single
    ``addcmul`` per step: :math:`\\delta_t = g_t σ'_t + c_t \\delta_{t+1}`.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, current_decay: float, volt_decay: float, threshold: float,
                surrogate: Surrogate, backend: str = "eager") -> Tensor:  # type: ignore[override]
        args = (x.detach(), current_decay, volt_decay, threshold)
        out = _CURRENT_LEAKY_FORWARD(*args) if backend == "compile" else None
        spikes, volt = _current_leaky_forward_eager(*args) if out is None else out
        ctx.save_for_backward(volt, spikes)
        ctx.params = (current_decay, volt_decay, threshold, surrogate, backend)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        volt, spikes = ctx.saved_tensors
        current_decay, volt_decay, threshold, surrogate, backend = ctx.params
        args = (volt, spikes, grad_spikes, current_decay, volt_decay, threshold, surrogate)
        out = _CURRENT_LEAKY_BACKWARD(*args) if backend == "compile" else None
        return (_current_leaky_backward_eager(*args) if out is None else out), None, None, None, None, None


class _CompiledKernel:
    """A ``_graph`` function compiled lazily by ``torch.compile``; ``None`` when compiling fails.

    Compiling needs a C++ compiler (Inductor's CPU code) and costs several seconds per input
    shape (once per process). Each input shape gets its own copy of the function, so Dynamo's
    per-function recompile limit (8 variants) does not send a network with many layer shapes,
    batch sizes or ``T`` back to the uncompiled graph. When compiling fails, the first failure is
    reported as a ``RuntimeWarning`` and every kernel of the process goes back to the eager
    kernels, which compute the same function.
    """

    failed: str | None = None  # shared: one failure turns the backend off for the process

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.compiled: dict[tuple[int, ...], Callable[..., Any]] = {}

    def _compile(self) -> Callable[..., Any]:
        fn = self.fn
        copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__,
                                  fn.__closure__)  # a fresh code object: a fresh Dynamo cache
        return torch.compile(copy, dynamic=False)

    def __call__(self, *args: Any) -> Any:
        if _CompiledKernel.failed is not None:
            return None
        shape = tuple(args[0].shape)
        try:
            compiled = self.compiled.get(shape)
            if compiled is None:
                compiled = self.compiled[shape] = self._compile()
            return compiled(*args)
        except Exception as err:  # no compiler, unsupported platform ...: the eager kernels take over
            _CompiledKernel.failed = f"{type(err).__name__}: {err}"
            warnings.warn(f"backend='compile' is unavailable ({_CompiledKernel.failed.splitlines()[0]}); "
                          "using the eager kernels", RuntimeWarning, stacklevel=2)
            return None


_LEAKY_FORWARD = _CompiledKernel(_leaky_forward_graph)
_LEAKY_BACKWARD = _CompiledKernel(_leaky_backward_graph)
_CURRENT_LEAKY_FORWARD = _CompiledKernel(_current_leaky_forward_graph)
_CURRENT_LEAKY_BACKWARD = _CompiledKernel(_current_leaky_backward_graph)

#: Kernel implementations, chosen per neuron with ``backend=``: ``eager`` (hand-written
#: backward, the default) or ``compile`` (``torch.compile``, with an eager fallback).
BACKENDS = ("eager", "compile")


#: Largest per-step tensor (elements) that no-grad calls run through the NumPy kernels: below
#: it, PyTorch's per-op dispatch (~4 µs) dominates and NumPy's (~1 µs) wins; above it, PyTorch.
NUMPY_MAX_STEP_NUMEL = 2048


def _use_numpy(x: Tensor, *params: Tensor | None) -> bool:
    """Inference on small CPU float32 tensors: acting with batch 1 is dispatch-bound."""
    return (not torch.is_grad_enabled() or not (x.requires_grad or any(p is not None and p.requires_grad
                                                                         for p in params))) \
        and x.device.type == "cpu" and x.dtype == torch.float32 and x[0].numel() <= NUMPY_MAX_STEP_NUMEL


def _leaky_numpy(x: Tensor, beta: float, pos_threshold: float, neg: float | None) -> Tensor:
    """:class:`_LeakyKernel`'s forward in NumPy float32, with the same op order (bit-identical)."""
    xs = x.detach().numpy()
    beta32, pos32 = np.float32(beta), np.float32(pos_threshold)
    mem = np.empty(xs.shape, np.float32)
    up = np.empty(xs.shape, np.bool_)
    down = None if neg is None else np.empty(xs.shape, np.bool_)
    neg32 = None if neg is None else np.float32(neg)
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
    return torch.from_numpy(spikes)


def _current_leaky_numpy(x: Tensor, current_decay: float, volt_decay: float, threshold: float) -> Tensor:
    """:class:`_CurrentLeakyKernel`'s forward in NumPy float32, with the same op order."""
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
    return torch.from_numpy(spikes)


class MultiStepNeuron(nn.Module):
    """Base class: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` from zero state, every call."""

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Step-by-step loop over the pure step function (autograd), for tests and baselines."""
        raise NotImplementedError


def _check_time_major(x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"input must be time-major [T, B, ...] with T >= 1, got shape {tuple(x.shape)}")


class MultiStepLeaky(MultiStepNeuron):
    r"""Leaky neuron over time, binary or ternary (snnTorch ``Leaky`` conventions).

    * ``neg_threshold=None``: binary LIF, spike for spike equal to ``snn.Leaky``;
    * ``neg_threshold=θ⁻``: asymmetric ternary, :math:`\theta^-` trainable if ``learn_neg_threshold``;
    * ``symmetric=True``: ternary with :math:`\theta^- = \theta^+` (fixed).

    :param beta: membrane decay in [0, 1]
    :param threshold: positive threshold :math:`\theta^+ > 0` (fixed)
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`
    :param backend: ``"eager"`` (hand-written kernels) or ``"compile"`` (``torch.compile``d
        kernels: faster per call, several seconds of compiling per input shape, needs a C++
        compiler, falls back to ``"eager"`` with a warning without one)
    """

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, neg_threshold: float | None = None,
                 learn_neg_threshold: bool = True, symmetric: bool = False,
                 surrogate: str | dict | Surrogate = "atan", surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.beta = check_real("beta", beta, low=0.0, high=1.0)
        self.threshold = check_real("threshold", threshold, low=0.0, low_inclusive=False)
        self.symmetric = check_bool("symmetric", symmetric)
        check_bool("learn_neg_threshold", learn_neg_threshold)
        self.surrogate = make_surrogate(surrogate, surrogate_kwargs)
        self.neg: PositiveParameter | None = None
        if neg_threshold is not None and not self.symmetric:
            neg_threshold = check_real("neg_threshold", neg_threshold, low=THRESHOLD_FLOOR, low_inclusive=False)
            self.neg = PositiveParameter(neg_threshold, requires_grad=learn_neg_threshold)

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
        _check_time_major(x)
        neg_threshold = self.neg_threshold
        if _use_numpy(x, neg_threshold):
            return _leaky_numpy(x, self.beta, self.threshold,
                                None if neg_threshold is None else float(neg_threshold.detach()))
        return _LeakyKernel.apply(x, neg_threshold, self.beta, self.threshold, self.surrogate, self.backend)

    def reference(self, x: Tensor) -> Tensor:
        _check_time_major(x)
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


class MultiStepCurrentLeaky(MultiStepNeuron):
    """Pop-SAN's current-based LIF over time (current decay, voltage decay, threshold, hard reset)."""

    def __init__(self, current_decay: float = 0.5, volt_decay: float = 0.75, threshold: float = 0.5,
                 surrogate: str | dict | Surrogate | None = None, surrogate_kwargs: dict | None = None,
                 backend: str = "eager") -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.current_decay = check_real("current_decay", current_decay, low=0.0, high=1.0)
        self.volt_decay = check_real("volt_decay", volt_decay, low=0.0, high=1.0)
        self.threshold = check_real("threshold", threshold, low=0.0, low_inclusive=False)
        self.surrogate = rectangular(0.5) if surrogate is None else make_surrogate(surrogate, surrogate_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        _check_time_major(x)
        if _use_numpy(x):
            return _current_leaky_numpy(x, self.current_decay, self.volt_decay, self.threshold)
        return _CurrentLeakyKernel.apply(x, self.current_decay, self.volt_decay, self.threshold, self.surrogate,
                                         self.backend)

    def reference(self, x: Tensor) -> Tensor:
        _check_time_major(x)
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


def _lif(beta: float = 0.9, threshold: float = 1.0, **kw: Any) -> MultiStepLeaky:
    return MultiStepLeaky(beta=beta, threshold=threshold, **kw)


def _ternary(beta: float = 0.9, threshold: float = 1.0, neg_threshold: float = 2.0,
             learn_neg_threshold: bool = True, **kw: Any) -> MultiStepLeaky:
    return MultiStepLeaky(beta=beta, threshold=threshold, neg_threshold=neg_threshold,
                          learn_neg_threshold=learn_neg_threshold, **kw)


def _symmetric_ternary(beta: float = 0.9, threshold: float = 1.0, **kw: Any) -> MultiStepLeaky:
    return MultiStepLeaky(beta=beta, threshold=threshold, symmetric=True, **kw)


#: Spiking neuron kinds selectable by name.
NEURONS: dict[str, Callable[..., MultiStepNeuron]] = {
    "lif": _lif,
    "ternary": _ternary,
    "symmetric_ternary": _symmetric_ternary,
    "current_lif": MultiStepCurrentLeaky,
}


def make_neuron(kind: str, **params: Any) -> MultiStepNeuron:
    """Build a multi-step neuron by name: ``"lif"``, ``"ternary"``, ``"symmetric_ternary"``,
    ``"current_lif"``; ``params`` go to its constructor (e.g. ``beta``, ``threshold``,
    ``neg_threshold``, ``surrogate``)."""
    check_choice("neuron", kind, NEURONS)
    try:
        return NEURONS[kind](**params)
    except TypeError as err:
        raise TypeError(f"bad parameters {sorted(params)} for neuron {kind!r}: {err}") from None
