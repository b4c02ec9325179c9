r"""Surrogate gradients for the Heaviside spike function.

Three layers, as in spikingjelly:

1. a pure backward ``Surrogate.grad(x)``: :math:`\partial S/\partial x` as a tensor function;
2. :class:`SpikeFunction`, the autograd Function: Heaviside forward (strict, ``x > 0`` spikes,
   like snnTorch), ``grad_output * surrogate.grad(x)`` backward;
3. picklable :class:`Surrogate` modules, usable as ``spike_grad`` of any snnTorch neuron and
   of :class:`snnrl_sb3.AsymmetricTernaryLeaky`.

The multi-step kernels (:mod:`snnrl_sb3.kernels`) call :meth:`Surrogate.grad_times` on whole
``[T, B, ...]`` tensors: ``grad * σ'(x - shift)`` as a fresh tensor. The base class computes it
from :meth:`Surrogate.grad`; the ATan and trapezoid surrogates override it with formulas of a few
in-place passes and one allocation, equal to the base computation to 1 ulp, so the kernels need
no knowledge of the surrogate's type.

Widths are *half*-widths: the support of the gradient is ``|x| < w``. With that convention
``rectangular(w) == trapezoid(w, w)`` and ``triangular(w) == trapezoid(0, w)``, and every
window surrogate has unit area.

Ranges keep every surrogate's height and slope finite in float32: widths in
[:data:`MIN_WIDTH`, :data:`MAX_WIDTH`] (``w1`` of a trapezoid in ``[0, w2]``), ``alpha`` and
``slope`` in [:data:`MIN_SHARPNESS`, :data:`MAX_SHARPNESS`].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

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
    "MIN_WIDTH",
    "MAX_WIDTH",
    "MIN_SHARPNESS",
    "MAX_SHARPNESS",
]

#: Bounds of every (half-)width: the window's height ``1/(w1 + w2)`` and its slope stay finite in float32.
MIN_WIDTH, MAX_WIDTH = 1e-6, 1e6
#: Bounds of ``alpha`` (ATan) and ``slope`` (fast sigmoid, sigmoid): the peak stays finite in float32.
MIN_SHARPNESS, MAX_SHARPNESS = 1e-6, 1e6


def _width(name: str, value: Any) -> float:
    return check_real(name, value, low=MIN_WIDTH, high=MAX_WIDTH)


def _sharpness(name: str, value: Any) -> float:
    return check_real(name, value, low=MIN_SHARPNESS, high=MAX_SHARPNESS)


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward ``(x > 0)``; backward ``grad_output * surrogate.grad(x)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None


class Surrogate(nn.Module):
    """Base class: a spike function whose backward is :meth:`grad`.

    Calling the module on ``x = mem - threshold`` returns spikes in {0, 1}. Subclasses hold only
    plain floats, so they pickle, deepcopy and ``torch.save`` like any module. A subclass
    implements :meth:`grad` (and :meth:`spec`); it may override :meth:`grad_times` with a faster
    formula, which must equal ``grad * self.grad(z)`` to 1 ulp.
    """

    #: σ'(-x) = σ'(x) as a mathematical function (checked by the contract tests)
    even: ClassVar[bool] = False

    def grad(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Pure surrogate derivative :math:`\\sigma'(x)` (no autograd involved)."""
        raise NotImplementedError

    @property
    def area(self) -> float | None:
        """:math:`\\int \\sigma'(x)\\,dx` (``math.inf`` if unbounded; ``None``: not documented)."""
        return None

    def grad_times(self, x: Tensor, grad: Tensor | None = None, *, shift: float = 0.0, flip: bool = False,
                   out: Tensor | None = None) -> Tensor:
        r"""``grad * σ'(z)`` with ``z = x - shift`` (``flip=True``: ``z = shift - x``), in a fresh tensor or ``out``.

        ``grad=None`` gives :math:`\sigma'(z)` itself. ``z`` is computed exactly as written (one
        float32 rounding), so the result is the surrogate gradient of the step function's
        ``spike_fn(mem - threshold)`` (``flip``: ``spike_fn(-neg_threshold - mem)`` with
        ``shift = -neg_threshold``). This base version is ``grad * self.grad(z)``; subclasses may
        override it with fewer passes over the tensors, equal to it to 1 ulp.

        :param x: the membranes, e.g. ``[T, B, ...]`` (never modified)
        :param grad: incoming gradient of ``x``'s shape, or ``None`` (never modified)
        :param shift: subtracted from ``x`` (or ``x`` subtracted from it, with ``flip``)
        :param flip: differentiate at ``shift - x`` instead of ``x - shift``
        :param out: a tensor of ``x``'s shape and dtype to write the result into (not ``x`` or
            ``grad`` themselves); the kernels pass per-step views of their adjoint buffer
        """
        z = torch.rsub(x, shift) if flip else torch.sub(x, shift)
        local = self.grad(z)
        if out is None:
            return local if grad is None else torch.mul(grad, local)
        return out.copy_(local) if grad is None else torch.mul(grad, local, out=out)

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
    :param w2: half-width of the base, in [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`] (so that the
        height ``1/(w1 + w2)`` and the slope stay finite in float32)
    """

    even = True

    def __init__(self, w1: float = 0.25, w2: float = 0.75) -> None:
        super().__init__()
        self.w1 = check_real("w1", w1, low=0.0, high=MAX_WIDTH)
        self.w2 = _width("w2", w2)
        if self.w1 > self.w2:
            raise ValueError(f"trapezoid needs 0 <= w1 <= w2, got w1={self.w1}, w2={self.w2}")
        self.height = 1.0 / (self.w1 + self.w2)

    @property
    def area(self) -> float:
        return 1.0

    def grad(self, x: Tensor) -> Tensor:
        distance = x.abs()
        if self.w1 == self.w2:  # rectangle: no slope to divide by
            return (distance < self.w2).to(x.dtype) * self.height
        slope = self.height / (self.w2 - self.w1)
        return ((self.w2 - distance) * slope).clamp_(0.0, self.height)

    def grad_times(self, x: Tensor, grad: Tensor | None = None, *, shift: float = 0.0, flip: bool = False,
                   out: Tensor | None = None) -> Tensor:
        # |shift - x| == |x - shift| exactly (IEEE subtraction is sign-symmetric): flip changes nothing
        if grad is not None and grad.shape != x.shape:  # broadcasting grad: no in-place formula
            return super().grad_times(x, grad, shift=shift, flip=flip, out=out)
        out = torch.sub(x, shift, out=out) if out is not None else torch.sub(x, shift)
        out.abs_()
        if self.w1 == self.w2:  # rectangle: h [|z| < w]
            torch.lt(out, self.w2, out=out)
            if grad is None:
                return out.mul_(self.height)
            # (b h) g with b in {0, 1} is one rounding, whatever the order: one pass
            return torch.addcmul(out.new_zeros(()), out, grad, value=self.height, out=out)
        slope = self.height / (self.w2 - self.w1)
        out.sub_(self.w2).mul_(-slope).clamp_(0.0, self.height)  # (|z| - w2)(-s) == (w2 - |z|) s, bitwise
        return out if grad is None else out.mul_(grad)

    def spec(self) -> dict[str, Any]:
        return {"name": "trapezoid", "w1": self.w1, "w2": self.w2}

    def extra_repr(self) -> str:
        return f"w1={self.w1}, w2={self.w2}"


class ATan(Surrogate):
    r"""Arctangent surrogate, the function of ``snntorch.surrogate.atan``:
    :math:`\sigma'(x) = \frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}` (unit area).

    Computed as :math:`1 / (c + c k^2 x^2)` with :math:`c = 2/\alpha`, :math:`k = \pi\alpha/2`
    (one ``addcmul`` and one reciprocal; equal to snnTorch's expression to a few ulps).

    :param alpha: sharpness, in [:data:`MIN_SHARPNESS`, :data:`MAX_SHARPNESS`] (peak ``alpha/2``)
    """

    even = True

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        self.alpha = _sharpness("alpha", alpha)

    @property
    def area(self) -> float:
        return 1.0

    def _denominator_(self, z: Tensor) -> Tensor:
        """In place: ``z <- c + c k² z²``."""
        c = 2.0 / self.alpha
        ck2 = c * (math.pi / 2 * self.alpha) ** 2
        return torch.addcmul(z.new_full((), c), z, z, value=ck2, out=z)

    def grad(self, x: Tensor) -> Tensor:
        return self._denominator_(x.clone(memory_format=torch.contiguous_format)).reciprocal_()

    def grad_times(self, x: Tensor, grad: Tensor | None = None, *, shift: float = 0.0, flip: bool = False,
                   out: Tensor | None = None) -> Tensor:
        # (shift - x)² == (x - shift)² exactly: flip changes nothing. Three passes: sub, addcmul, div;
        # g / d is within 1 ulp of g * (1 / d), the base computation (one rounding against two).
        if grad is not None and grad.shape != x.shape:  # broadcasting grad: no in-place formula
            return super().grad_times(x, grad, shift=shift, flip=flip, out=out)
        out = self._denominator_(torch.sub(x, shift, out=out) if out is not None else torch.sub(x, shift))
        return out.reciprocal_() if grad is None else torch.div(grad, out, out=out)

    def spec(self) -> dict[str, Any]:
        return {"name": "atan", "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class FastSigmoid(Surrogate):
    r"""Fast sigmoid (SuperSpike), same formula as ``snntorch.surrogate.fast_sigmoid``:
    :math:`\sigma'(x) = 1 / (k|x| + 1)^2` (area ``2/k``).

    :param slope: ``k``, in [:data:`MIN_SHARPNESS`, :data:`MAX_SHARPNESS`]
    """

    even = True

    def __init__(self, slope: float = 25.0) -> None:
        super().__init__()
        self.slope = _sharpness("slope", slope)

    @property
    def area(self) -> float:
        return 2.0 / self.slope

    def grad(self, x: Tensor) -> Tensor:
        return (self.slope * x.abs() + 1.0).square().reciprocal()

    def spec(self) -> dict[str, Any]:
        return {"name": "fast_sigmoid", "slope": self.slope}

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Sigmoid(Surrogate):
    r"""Logistic surrogate, the function of ``snntorch.surrogate.sigmoid``:
    :math:`\sigma'(x) = k\,s(kx)(1 - s(kx))` (unit area), computed at :math:`-|x|` so that it is
    exactly even (snnTorch's expression loses the gradient for :math:`x > 0` where
    :math:`s(kx)` rounds to 1).

    :param slope: ``k``, in [:data:`MIN_SHARPNESS`, :data:`MAX_SHARPNESS`]
    """

    even = True

    def __init__(self, slope: float = 25.0) -> None:
        super().__init__()
        self.slope = _sharpness("slope", slope)

    @property
    def area(self) -> float:
        return 1.0

    def grad(self, x: Tensor) -> Tensor:
        # s(k|x|)(1 - s(k|x|)) from the small side s(-k|x|) <= 1/2: even by construction, and no
        # cancellation in 1 - s where s(kx) rounds to 1 (which zeroed the gradient for x > 0 only)
        s = torch.sigmoid(x.abs().mul_(-self.slope))
        return self.slope * s * (1 - s)

    def spec(self) -> dict[str, Any]:
        return {"name": "sigmoid", "slope": self.slope}

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class StraightThrough(Surrogate):
    """Straight-through estimator: gradient 1 everywhere (unbounded area; for ablations)."""

    even = True

    @property
    def area(self) -> float:
        return math.inf

    def grad(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)

    def spec(self) -> dict[str, Any]:
        return {"name": "straight_through"}


def trapezoid(w1: float = 0.25, w2: float = 0.75) -> Trapezoid:
    """Trapezoid surrogate (seed 001): flat top of half-width ``w1``, base of half-width ``w2``."""
    return Trapezoid(w1, w2)


def rectangular(width: float = 0.5) -> Trapezoid:
    """Rectangular window of half-width ``width`` and height ``1/(2*width)``.

    ``width=0.5`` is Pop-SAN's pseudo-gradient (gradient 1 for ``|v - θ| < 0.5``); ``width`` in
    [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`].
    """
    width = _width("width", width)
    return Trapezoid(width, width)


def triangular(width: float = 1.0) -> Trapezoid:
    """Triangle of half-width ``width`` and peak ``1/width`` (a real triangle, unlike
    ``snntorch.surrogate.triangular``, whose backward is sign-shaped); ``width`` in
    [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`]."""
    width = _width("width", width)
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
