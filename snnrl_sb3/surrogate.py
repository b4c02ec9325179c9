r"""Surrogate gradients for the Heaviside spike function.

Three layers, as in spikingjelly:

1. a pure backward ``Surrogate.grad(x)``: :math:`\partial S/\partial x` as a tensor function;
2. :class:`SpikeFunction`, the autograd Function: Heaviside forward (strict, ``x > 0`` spikes,
   like snnTorch), ``grad_output * surrogate.grad(x)`` backward;
3. picklable :class:`Surrogate` modules, usable as ``spike_grad`` of any snnTorch neuron and
   of :class:`snnrl_sb3.AsymmetricTernaryLeaky`.

The multi-step kernels call layer 1 directly on whole ``[T, B, ...]`` tensors.

Widths are *half*-widths: the support of the gradient is ``|x| < w``. With that convention
``rectangular(w) == trapezoid(w, w)`` and ``triangular(w) == trapezoid(0, w)``, and every
window surrogate has unit area.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from snnrl_sb3._validation import check_real

__all__ = [
    "Surrogate",
    "SpikeFunction",
    "Trapezoid",
    "ATan",
    "FastSigmoid",
    "Sigmoid",
    "StraightThrough",
    "trapezoid",
    "rectangular",
    "triangular",
    "atan",
    "fast_sigmoid",
    "sigmoid",
    "straight_through",
    "make_surrogate",
    "SURROGATES",
]


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward ``(x > 0)``; backward ``grad_output * surrogate.grad(x)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, surrogate: "Surrogate") -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None


class Surrogate(nn.Module):
    """Base class: a spike function whose backward is :meth:`grad`.

    Calling the module on ``x = mem - threshold`` returns spikes in {0, 1}. Subclasses hold only
    plain floats, so they pickle, deepcopy and ``torch.save`` like any module.
    """

    def grad(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Pure surrogate derivative :math:`\\sigma'(x)` (no autograd involved)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return SpikeFunction.apply(x, self)

    def spec(self) -> dict[str, Any]:
        """JSON-plain description, accepted back by :func:`make_surrogate`."""
        raise NotImplementedError  # pragma: no cover


class Trapezoid(Surrogate):
    r"""Trapezoid window: height ``h`` for ``|x| < w1``, falling linearly to 0 at ``|x| = w2``.

    .. math::
        \sigma'(x) = h \cdot \operatorname{clip}\!\left(\frac{w_2 - |x|}{w_2 - w_1}, 0, 1\right),
        \qquad h = \frac{1}{w_1 + w_2},

    so the area is 1. ``w1 = 0`` is a triangle of half-width ``w2``; ``w1 = w2`` a rectangle.

    :param w1: half-width of the flat top, ``0 <= w1 <= w2``
    :param w2: half-width of the base, ``w2 > 0``
    """

    def __init__(self, w1: float = 0.25, w2: float = 0.75) -> None:
        super().__init__()
        self.w1 = check_real("w1", w1, low=0.0)
        self.w2 = check_real("w2", w2, low=0.0, low_inclusive=False)
        if self.w1 > self.w2:
            raise ValueError(f"trapezoid needs 0 <= w1 <= w2, got w1={self.w1}, w2={self.w2}")
        self.height = 1.0 / (self.w1 + self.w2)

    def grad(self, x: Tensor) -> Tensor:
        distance = x.abs()
        if self.w1 == self.w2:  # rectangle: no slope to divide by
            return (distance < self.w2).to(x.dtype) * self.height
        slope = self.height / (self.w2 - self.w1)
        return ((self.w2 - distance) * slope).clamp_(0.0, self.height)

    def spec(self) -> dict[str, Any]:
        return {"name": "trapezoid", "w1": self.w1, "w2": self.w2}

    def extra_repr(self) -> str:
        return f"w1={self.w1}, w2={self.w2}"


class ATan(Surrogate):
    r"""Arctangent surrogate, same formula as ``snntorch.surrogate.atan``:
    :math:`\sigma'(x) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}` (unit area)."""

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        self.alpha = check_real("alpha", alpha, low=0.0, low_inclusive=False)

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x).square())

    def spec(self) -> dict[str, Any]:
        return {"name": "atan", "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class FastSigmoid(Surrogate):
    r"""Fast sigmoid (SuperSpike), same formula as ``snntorch.surrogate.fast_sigmoid``:
    :math:`\sigma'(x) = 1 / (k|x| + 1)^2` (area ``2/k``)."""

    def __init__(self, slope: float = 25.0) -> None:
        super().__init__()
        self.slope = check_real("slope", slope, low=0.0, low_inclusive=False)

    def grad(self, x: Tensor) -> Tensor:
        return (self.slope * x.abs() + 1.0).square().reciprocal()

    def spec(self) -> dict[str, Any]:
        return {"name": "fast_sigmoid", "slope": self.slope}

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Sigmoid(Surrogate):
    r"""Logistic surrogate, same formula as ``snntorch.surrogate.sigmoid``:
    :math:`\sigma'(x) = k\,s(kx)(1 - s(kx))` (unit area)."""

    def __init__(self, slope: float = 25.0) -> None:
        super().__init__()
        self.slope = check_real("slope", slope, low=0.0, low_inclusive=False)

    def grad(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1 - s)

    def spec(self) -> dict[str, Any]:
        return {"name": "sigmoid", "slope": self.slope}

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class StraightThrough(Surrogate):
    """Straight-through estimator: gradient 1 everywhere (unbounded area; for ablations)."""

    def grad(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)

    def spec(self) -> dict[str, Any]:
        return {"name": "straight_through"}


def trapezoid(w1: float = 0.25, w2: float = 0.75) -> Trapezoid:
    """Trapezoid surrogate (seed 001): flat top of half-width ``w1``, base of half-width ``w2``."""
    return Trapezoid(w1, w2)


def rectangular(width: float = 0.5) -> Trapezoid:
    """Rectangular window of half-width ``width`` and height ``1/(2*width)``.

    ``width=0.5`` is Pop-SAN's pseudo-gradient (gradient 1 for ``|v - θ| < 0.5``).
    """
    width = check_real("width", width, low=0.0, low_inclusive=False)
    return Trapezoid(width, width)


def triangular(width: float = 1.0) -> Trapezoid:
    """Triangle of half-width ``width`` and peak ``1/width`` (a real triangle, unlike
    ``snntorch.surrogate.triangular``, whose backward is sign-shaped)."""
    width = check_real("width", width, low=0.0, low_inclusive=False)
    return Trapezoid(0.0, width)


def atan(alpha: float = 2.0) -> ATan:
    return ATan(alpha)


def fast_sigmoid(slope: float = 25.0) -> FastSigmoid:
    return FastSigmoid(slope)


def sigmoid(slope: float = 25.0) -> Sigmoid:
    return Sigmoid(slope)


def straight_through() -> StraightThrough:
    return StraightThrough()


#: Surrogates selectable by name (policy kwargs stay JSON-plain).
SURROGATES: dict[str, Callable[..., Surrogate]] = {
    "trapezoid": trapezoid,
    "rectangular": rectangular,
    "triangular": triangular,
    "atan": atan,
    "fast_sigmoid": fast_sigmoid,
    "sigmoid": sigmoid,
    "straight_through": straight_through,
}


def make_surrogate(surrogate: str | Surrogate | Mapping[str, Any] = "atan",
                   kwargs: Mapping[str, Any] | None = None) -> Surrogate:
    """Build a surrogate from a name (plus keyword parameters), a spec dict, or pass one through.

    >>> make_surrogate("trapezoid", {"w1": 0.2, "w2": 0.6})
    Trapezoid(w1=0.2, w2=0.6)
    >>> make_surrogate({"name": "atan", "alpha": 3.0})
    ATan(alpha=3.0)
    """
    if isinstance(surrogate, Surrogate):
        if kwargs:
            raise ValueError("surrogate_kwargs must be empty when surrogate is already a Surrogate")
        return surrogate
    if isinstance(surrogate, Mapping):
        params = dict(surrogate)
        name = params.pop("name", None)
        if kwargs:
            params.update(kwargs)
    else:
        name, params = surrogate, dict(kwargs or {})
    if not isinstance(name, str):
        raise TypeError(
            f"surrogate must be a name (one of {sorted(SURROGATES)}), a spec dict with 'name', "
            f"or a Surrogate, got {type(surrogate).__name__}"
        )
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; allowed: {sorted(SURROGATES)}")
    try:
        return SURROGATES[name](**params)
    except TypeError as err:  # unexpected keyword: name the surrogate and its parameters
        raise TypeError(f"bad parameters {sorted(params)} for surrogate {name!r}: {err}") from None
