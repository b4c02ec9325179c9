"""Deprecated location: the multi-step neurons live in :mod:`snnrl_sb3.kernels` now.

This module only re-exports them so that old imports keep working:

* modules, registry and utilities: :mod:`snnrl_sb3.kernels` (``MultiStepNeuron``,
  ``MultiStepLeaky``, ``MultiStepCurrentLeaky``, ``NEURONS``, ``BACKENDS``, ``make_neuron``,
  ``neuron_parameters``, ``decay_matrix``);
* the kernels of each kind: :mod:`snnrl_sb3.kernels.leaky`, :mod:`snnrl_sb3.kernels.current_leaky`,
  :mod:`snnrl_sb3.kernels.dynamic`;
* the time recurrences: :mod:`snnrl_sb3.kernels._time`; the ``torch.compile`` wrapper and the
  NumPy switch: :mod:`snnrl_sb3.kernels.base`;
* the surrogates' fast gradients: :meth:`snnrl_sb3.surrogate.Surrogate.grad_times`.

Import from those places in new code.
"""

from snnrl_sb3.kernels import (
    BACKENDS,
    NEURONS,
    MultiStepCurrentLeaky,
    MultiStepLeaky,
    MultiStepNeuron,
    decay_matrix,
    make_neuron,
    neuron_parameters,
)

__all__ = [
    "MultiStepNeuron",
    "MultiStepLeaky",
    "MultiStepCurrentLeaky",
    "NEURONS",
    "BACKENDS",
    "make_neuron",
    "neuron_parameters",
    "decay_matrix",
]
