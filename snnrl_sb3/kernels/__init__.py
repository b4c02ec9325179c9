"""Multi-step spiking neuron kernels over time-major tensors ``[T, B, ...]``, one file per kind.

* :mod:`~snnrl_sb3.kernels.leaky`: binary LIF, asymmetric and symmetric ternary
  (:class:`MultiStepLeaky`);
* :mod:`~snnrl_sb3.kernels.current_leaky`: Pop-SAN's current-based LIF (:class:`MultiStepCurrentLeaky`);
* :mod:`~snnrl_sb3.kernels.dynamic`: MDC-SAN's dynamic neuron (:class:`MultiStepDynamic`);
* :mod:`~snnrl_sb3.kernels.sj_leaky`: spikingjelly's LIF neuron, DSQN's (:class:`MultiStepSJLeaky`);
* :mod:`~snnrl_sb3.kernels._time`: the shared time recurrences (reverse discount, :func:`decay_matrix`);
* :mod:`~snnrl_sb3.kernels.base`: the module base class, backends, the ``torch.compile`` wrapper;
* :mod:`~snnrl_sb3.kernels._cpp`: ``backend="cpp"``, the fused C++ kernels of the leaky neurons (built on
  first use, eager fallback);
* :mod:`~snnrl_sb3.kernels.registry`: :data:`NEURONS`, :func:`neuron_parameters`, :func:`make_neuron`.

Each kind file holds the kind's parameter value object, its eager kernels (in place, the
default), its graph kernels (out of place, for ``backend="compile"``), its NumPy no-grad forward,
its autograd Function and its module, all checked against the pure step function of
:mod:`snnrl_sb3.neurons` (spikes and membranes bit-identical, gradients to 1e-5).
"""

from snnrl_sb3.kernels._time import decay_matrix
from snnrl_sb3.kernels.base import BACKENDS, MultiStepNeuron, NeuronKind
from snnrl_sb3.kernels.current_leaky import CurrentLIFParameters, MultiStepCurrentLeaky
from snnrl_sb3.kernels.dynamic import DynamicParameters, MultiStepDynamic
from snnrl_sb3.kernels.leaky import LIFParameters, MultiStepLeaky, SymmetricTernaryParameters, TernaryParameters
from snnrl_sb3.kernels.registry import NEURONS, make_neuron, neuron_parameters
from snnrl_sb3.kernels.sj_leaky import MultiStepSJLeaky, SJLIFParameters

__all__ = [
    "MultiStepNeuron",
    "MultiStepLeaky",
    "MultiStepCurrentLeaky",
    "MultiStepDynamic",
    "MultiStepSJLeaky",
    "NEURONS",
    "BACKENDS",
    "NeuronKind",
    "make_neuron",
    "neuron_parameters",
    "decay_matrix",
    "LIFParameters",
    "TernaryParameters",
    "SymmetricTernaryParameters",
    "CurrentLIFParameters",
    "DynamicParameters",
    "SJLIFParameters",
]
