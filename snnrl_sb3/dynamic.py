"""Deprecated location: MDC-SAN's dynamic neuron lives in :mod:`snnrl_sb3.kernels.dynamic` now.

``MultiStepDynamic`` is registered in :data:`snnrl_sb3.kernels.NEURONS` as ``"dynamic"`` like
every other kind (importing this module is no longer needed for that); its pure step function
``dynamic_step`` is in :mod:`snnrl_sb3.neurons`. This module only re-exports them.
"""

from snnrl_sb3.kernels.dynamic import DynamicParameters, MultiStepDynamic
from snnrl_sb3.neurons import dynamic_step

__all__ = ["MultiStepDynamic", "DynamicParameters", "dynamic_step", "DYNAMIC_KIND"]

#: The name of :class:`MultiStepDynamic` in :data:`snnrl_sb3.kernels.NEURONS`.
DYNAMIC_KIND = "dynamic"
