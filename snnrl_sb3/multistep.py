r"""Multi-step spiking neurons over time-leading tensors ``[T, B, ...]``.

Synaptic layers run once over all ``T`` steps (see :mod:`snnrl_sb3.body`); only the
element-wise recurrence here loops over time. Each neuron has two implementations:

* ``forward``: a fused kernel. The forward loop runs without autograd (in-place ops on a
  preallocated membrane buffer) and a hand-written backward handles the whole sequence at
  once. With the detached reset of snnTorch, the membrane adjoint is a linear recurrence
  :math:`\delta_t = a_t + \beta\,\delta_{t+1}`, solved as one ``[T, T]`` matmul.
* ``reference``: a plain Python loop over the pure step functions of :mod:`snnrl_sb3.neurons`
  with autograd, the ground truth the kernels are tested against.

Nothing here needs a compiler or a GPU.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_bool, check_choice, check_real
from snnrl_sb3.neurons import THRESHOLD_FLOOR, PositiveParameter, current_leaky_step, ternary_leaky_step
from snnrl_sb3.surrogate import Surrogate, make_surrogate, rectangular

__all__ = [
    "MultiStepNeuron",
    "MultiStepLeaky",
    "MultiStepCurrentLeaky",
    "NEURONS",
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


class _LeakyKernel(torch.autograd.Function):
    """Binary/ternary leaky neuron over ``T`` steps (see :func:`ternary_leaky_step`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, neg_threshold: Tensor | None, beta: float, pos_threshold: float,
                surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        neg = None if neg_threshold is None else float(neg_threshold)
        low = None if neg is None else -neg
        mem = torch.empty_like(x, memory_format=torch.contiguous_format)
        spikes = torch.empty_like(mem)
        # sign(U - clamp(U, -θ⁻, θ⁺)) is exactly [U > θ⁺] - [U < -θ⁻], and cheaper than compare+cast
        for t in range(x.shape[0]):
            cur = mem[t]
            if t == 0:
                cur.copy_(x[0])
            else:
                torch.mul(mem[t - 1], beta, out=cur)
                cur.add_(x[t])
                prev_spk = spikes[t - 1]
                if neg is None:
                    cur.sub_(prev_spk, alpha=pos_threshold)
                else:
                    cur.sub_(prev_spk.clamp(min=0.0), alpha=pos_threshold)
                    cur.sub_(prev_spk.clamp(max=0.0), alpha=neg)
            torch.sign(cur - cur.clamp(low, pos_threshold), out=spikes[t])
        ctx.save_for_backward(mem, neg_threshold)
        ctx.params = (beta, pos_threshold, neg, surrogate)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor, Tensor | None, None, None, None]:  # type: ignore[override]
        mem, neg_threshold = ctx.saved_tensors
        beta, pos_threshold, neg, surrogate = ctx.params
        local = surrogate.grad(mem - pos_threshold)
        grad_neg_local = None
        if neg is not None:
            grad_neg_local = grad_spikes * surrogate.grad(-neg - mem)
            adjoint_in = grad_spikes * local + grad_neg_local
        else:
            adjoint_in = grad_spikes * local
        num_steps = mem.shape[0]
        if beta == 0.0 or num_steps == 1:
            adjoint = adjoint_in
        else:
            adjoint = _over_time(decay_matrix(num_steps, beta, device=mem.device, dtype=mem.dtype,
                                              transpose=True), adjoint_in)
        grad_neg = None
        if neg_threshold is not None and ctx.needs_input_grad[1]:
            # d spike_t / d theta- = +sigma'(-theta- - U_t); d U_t / d theta- = [U_{t-1} < -theta-]
            grad_neg = grad_neg_local.sum() + (adjoint[1:] * (mem[:-1] < -neg)).sum()
            grad_neg = grad_neg.reshape(neg_threshold.shape)
        return adjoint, grad_neg, None, None, None


class _CurrentLeakyKernel(torch.autograd.Function):
    """Pop-SAN's current-based LIF over ``T`` steps (see :func:`current_leaky_step`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, current_decay: float, volt_decay: float, threshold: float,
                surrogate: Surrogate) -> Tensor:  # type: ignore[override]
        volt = torch.empty_like(x)
        spikes = torch.empty_like(x)
        current = x[0].clone()
        volt[0] = current
        spikes[0] = volt[0] > threshold
        for t in range(1, x.shape[0]):
            current.mul_(current_decay).add_(x[t])
            torch.mul(volt[t - 1], volt_decay, out=volt[t])
            volt[t].mul_(1.0 - spikes[t - 1]).add_(current)
            spikes[t] = volt[t] > threshold
        ctx.save_for_backward(volt, spikes)
        ctx.params = (current_decay, volt_decay, threshold, surrogate)
        return spikes

    @staticmethod
    def backward(ctx: Any, grad_spikes: Tensor) -> tuple[Tensor, None, None, None, None]:  # type: ignore[override]
        volt, spikes = ctx.saved_tensors
        current_decay, volt_decay, threshold, surrogate = ctx.params
        local = surrogate.grad(volt - threshold)
        keep = (1.0 - spikes) * volt_decay  # dV_{t+1}/dV_t
        through_reset = volt * -volt_decay  # dV_{t+1}/dS_t
        grad_volt = torch.empty_like(volt)
        grad_volt[-1] = grad_spikes[-1] * local[-1]
        for t in range(volt.shape[0] - 2, -1, -1):
            nxt = grad_volt[t + 1]
            grad_volt[t] = (grad_spikes[t] + nxt * through_reset[t]) * local[t] + nxt * keep[t]
        # the current is a linear leaky trace of the input: reverse-discount the voltage adjoint
        grad_x = _over_time(decay_matrix(volt.shape[0], current_decay, device=volt.device, dtype=volt.dtype,
                                         transpose=True), grad_volt)
        return grad_x, None, None, None, None


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
    """

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, neg_threshold: float | None = None,
                 learn_neg_threshold: bool = True, symmetric: bool = False,
                 surrogate: str | dict | Surrogate = "atan", surrogate_kwargs: dict | None = None) -> None:
        super().__init__()
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
        return _LeakyKernel.apply(x, self.neg_threshold, self.beta, self.threshold, self.surrogate)

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
        return f"{kind}, beta={self.beta}, threshold={self.threshold}"


class MultiStepCurrentLeaky(MultiStepNeuron):
    """Pop-SAN's current-based LIF over time (current decay, voltage decay, threshold, hard reset)."""

    def __init__(self, current_decay: float = 0.5, volt_decay: float = 0.75, threshold: float = 0.5,
                 surrogate: str | dict | Surrogate | None = None, surrogate_kwargs: dict | None = None) -> None:
        super().__init__()
        self.current_decay = check_real("current_decay", current_decay, low=0.0, high=1.0)
        self.volt_decay = check_real("volt_decay", volt_decay, low=0.0, high=1.0)
        self.threshold = check_real("threshold", threshold, low=0.0, low_inclusive=False)
        self.surrogate = rectangular(0.5) if surrogate is None else make_surrogate(surrogate, surrogate_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        _check_time_major(x)
        return _CurrentLeakyKernel.apply(x, self.current_decay, self.volt_decay, self.threshold, self.surrogate)

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
        return f"current_decay={self.current_decay}, volt_decay={self.volt_decay}, threshold={self.threshold}"


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
