r"""What every neuron kind shares: the module base class, input checks, backends, the registry record.

* :class:`MultiStepNeuron`: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` from zero state and
  ``reference(x)``, the plain autograd loop over the kind's pure step function (the ground truth);
* :class:`NeuronKind`: one entry of :data:`snnrl_sb3.kernels.NEURONS` (name, parameter class,
  module class, default surrogate);
* :data:`BACKENDS` and :class:`CompiledKernel`, the ``torch.compile`` wrapper with its eager fallback;
* :func:`use_numpy`: when a no-grad call runs the NumPy form of a kernel.
"""

from __future__ import annotations

import dataclasses
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from snnrl_sb3.neurons import check_float_input
from snnrl_sb3.surrogate import Surrogate

__all__ = [
    "MultiStepNeuron",
    "NeuronKind",
    "BACKENDS",
    "CompiledKernel",
    "NUMPY_MAX_STEP_NUMEL",
    "check_time_major",
    "use_numpy",
]

#: Kernel implementations, chosen per neuron with ``backend=``: ``eager`` (hand-written loops and
#: backward, the default), ``compile`` (the same loops through ``torch.compile``, eager fallback) or
#: ``cpp`` (fused C++ loops built on first use, :mod:`snnrl_sb3.kernels._cpp`: the leaky kinds on CPU
#: float32 with the ATan or trapezoid-family surrogates; everything else, and a failed build, runs eager).
BACKENDS = ("eager", "compile", "cpp")

#: Largest per-step tensor (elements) that no-grad calls run through the NumPy kernels: below
#: it, PyTorch's per-op dispatch (~4 µs) dominates and NumPy's (~1 µs) wins; above it, PyTorch.
NUMPY_MAX_STEP_NUMEL = 2048


def check_time_major(x: Any) -> None:
    """The multi-step input: a floating-point tensor ``[T, B, ...]`` with ``T >= 1``."""
    check_float_input(x)
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"input must be time-major [T, B, ...] with T >= 1, got shape {tuple(x.shape)}")


def use_numpy(x: Tensor, *params: Tensor | None) -> bool:
    """Inference on small CPU float32 tensors (acting with batch 1 is dispatch-bound): NumPy forms."""
    if torch.is_grad_enabled() and (x.requires_grad or any(p is not None and p.requires_grad for p in params)):
        return False
    return x.device.type == "cpu" and x.dtype == torch.float32 and x[0].numel() <= NUMPY_MAX_STEP_NUMEL


class MultiStepNeuron(nn.Module):
    """Base class: ``forward(x[T, B, ...]) -> spikes[T, B, ...]`` from zero state, every call.

    Subclasses hold their validated parameters in :attr:`params` (a frozen dataclass of the
    kind, e.g. :class:`~snnrl_sb3.kernels.leaky.LIFParameters`; trainable parameters start at its
    values), dispatch ``forward`` to their kernels and implement ``reference``.
    """

    #: the validated parameter value object this module was built from
    params: Any
    #: the surrogate gradient used by the backward
    surrogate: Surrogate
    #: one of :data:`BACKENDS`
    backend: str

    parameter_class: ClassVar[type | tuple[type, ...]] = ()

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Step-by-step loop over the pure step function (autograd), for tests and baselines."""
        raise NotImplementedError

    @classmethod
    def from_parameters(cls, params: Any, *, surrogate: Surrogate, backend: str = "eager") -> MultiStepNeuron:
        """Build the module from a validated parameter object of its kind."""
        raise NotImplementedError  # pragma: no cover - abstract


@dataclass(frozen=True)
class NeuronKind:
    """One selectable neuron kind: what :func:`~snnrl_sb3.kernels.make_neuron` needs to build it.

    :param name: the name in :data:`~snnrl_sb3.kernels.NEURONS` (``neuron="..."`` of the policies)
    :param parameters: the frozen parameter dataclass; its fields are the kind's keyword arguments
    :param module: the :class:`MultiStepNeuron` subclass, built with ``module.from_parameters``
    :param default_surrogate: the surrogate spec used when none is given (for :func:`make_surrogate`)
    :param description: one line for docs and error messages
    """

    name: str
    parameters: type
    module: type[MultiStepNeuron]
    default_surrogate: Mapping[str, Any]
    description: str = ""

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.parameters):
            raise TypeError(f"parameters of neuron kind {self.name!r} must be a dataclass")
        object.__setattr__(self, "default_surrogate", types.MappingProxyType(dict(self.default_surrogate)))

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The keyword arguments this kind takes (its parameter class's fields)."""
        return tuple(f.name for f in dataclasses.fields(self.parameters))


class CompiledKernel:
    """A ``_graph`` function compiled lazily by ``torch.compile``; ``None`` when compiling fails.

    Compiling needs a C++ compiler (Inductor's CPU code) and costs several seconds per input
    shape (once per process). Each input shape (and device) gets its own copy of the function, so
    Dynamo's per-function recompile limit (8 variants) does not send a network with many layer
    shapes, batch sizes or ``T`` back to the uncompiled graph. When compiling fails, the first
    failure is reported as a ``RuntimeWarning`` and every kernel of the process goes back to the
    eager kernels, which compute the same function.
    """

    failed: ClassVar[str | None] = None  # shared: one failure turns the backend off for the process

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.compiled: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def _compile(self) -> Callable[..., Any]:
        fn = self.fn
        copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__,
                                  fn.__closure__)  # a fresh code object: a fresh Dynamo cache
        return torch.compile(copy, dynamic=False)

    @staticmethod
    def _key(args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Tensors by shape, dtype and device; constants by value; surrogates by type and spec (Dynamo
        specialises on all of them, so each combination gets its own copy instead of a recompile)."""
        key: list[Any] = []
        for arg in args:
            if isinstance(arg, Tensor):
                key.append((tuple(arg.shape), arg.dtype, arg.device))
            elif isinstance(arg, Surrogate):
                spec: tuple[Any, ...]
                try:
                    spec = tuple(sorted(arg.spec().items()))
                    hash(spec)
                except (NotImplementedError, TypeError, AttributeError):  # a custom surrogate without a plain spec
                    spec = ("id", id(arg))
                key.append((type(arg), spec))
            else:
                key.append(arg if isinstance(arg, (bool, int, float, str, type(None))) else ("id", id(arg)))
        return tuple(key)

    def run(self, backend: str, eager: Callable[..., Any], *args: Any) -> Any:
        """``eager(*args)``, or the compiled function when ``backend == "compile"`` and compiling works:
        the one dispatch every kernel's forward and backward use."""
        out = self(*args) if backend == "compile" else None
        return eager(*args) if out is None else out

    def __call__(self, *args: Any) -> Any:
        if CompiledKernel.failed is not None:
            return None
        try:
            key = self._key(args)
            compiled = self.compiled.get(key)
            if compiled is None:
                compiled = self.compiled[key] = self._compile()
            return compiled(*args)
        except Exception as err:  # no compiler, unsupported platform ...: the eager kernels take over
            CompiledKernel.failed = f"{type(err).__name__}: {err}"
            warnings.warn(f"backend='compile' is unavailable ({CompiledKernel.failed.splitlines()[0]}); "
                          "using the eager kernels", RuntimeWarning, stacklevel=2)
            return None
