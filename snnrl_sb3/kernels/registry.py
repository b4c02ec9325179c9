"""The neuron registry: :data:`NEURONS`, :func:`neuron_parameters` and :func:`make_neuron`.

Every kind is declared in its own file (a ``KINDS`` tuple of
:class:`~snnrl_sb3.kernels.base.NeuronKind` records next to its parameter class, kernels and
module) and collected here once; nothing mutates the registry at import time. Adding a kind is
a new file plus its name in :data:`_KIND_MODULES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from snnrl_sb3._validation import check_choice
from snnrl_sb3.kernels import current_leaky, dynamic, leaky, sj_leaky
from snnrl_sb3.kernels.base import MultiStepNeuron, NeuronKind
from snnrl_sb3.surrogate import Surrogate, make_surrogate

__all__ = ["NEURONS", "neuron_parameters", "make_neuron"]

_KIND_MODULES = (leaky, current_leaky, dynamic, sj_leaky)

#: Spiking neuron kinds selectable by name: ``"lif"``, ``"ternary"``, ``"symmetric_ternary"``,
#: ``"current_lif"`` (Pop-SAN), ``"dynamic"`` (MDC-SAN), ``"sj_lif"`` (spikingjelly's LIFNode, DSQN).
NEURONS: dict[str, NeuronKind] = {kind.name: kind for module in _KIND_MODULES for kind in module.KINDS}

#: Keywords of :func:`make_neuron` that are not neuron parameters.
_NOT_PARAMETERS = ("surrogate", "surrogate_kwargs", "backend")


def neuron_parameters(kind: str, params: Mapping[str, Any] | None = None) -> Any:
    """Validate a kind's parameters into its frozen parameter object, without building a module.

    >>> neuron_parameters("ternary", {"neg_threshold": 1.5})  # doctest: +NORMALIZE_WHITESPACE
    TernaryParameters(beta=0.9, threshold=1.0, neg_threshold=1.5, learn_neg_threshold=True,
                      surrogate_branches='both', neg_threshold_param='softplus', neg_threshold_max=None)

    :param kind: a name in :data:`NEURONS`
    :param params: the kind's keyword arguments (missing ones take the kind's defaults)
    :raises ValueError: for an unknown kind or a value out of range (naming it and the range)
    :raises TypeError: for a key the kind does not take (listing the ones it takes, and the kinds
        that take it; e.g. ``neg_threshold`` for ``"lif"``: never a silent change of kind) or a
        wrong type
    """
    check_choice("neuron", kind, NEURONS)
    entry = NEURONS[kind]
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"parameters of neuron {kind!r} must be a mapping, got {type(params).__name__}")
    allowed = entry.parameter_names
    unknown = sorted(str(key) for key in params if key not in allowed)
    if unknown:
        hint = ""
        if set(unknown) & set(_NOT_PARAMETERS):
            hint = " (surrogate, surrogate_kwargs and backend are not neuron parameters: pass them to make_neuron)"
        else:
            owners = {key: sorted(name for name, other in NEURONS.items() if key in other.parameter_names)
                      for key in unknown}
            hint = "".join(f"; {key} is a parameter of {names}" for key, names in owners.items() if names)
        raise TypeError(f"bad parameters {unknown} for neuron {kind!r}: it takes {sorted(allowed)}{hint}")
    return entry.parameters(**params)


def make_neuron(kind: str, *, surrogate: str | Mapping[str, Any] | Surrogate | None = None,
                surrogate_kwargs: Mapping[str, Any] | None = None, backend: str = "eager",
                **params: Any) -> MultiStepNeuron:
    """Build a multi-step neuron layer by name.

    >>> make_neuron("ternary", beta=0.8, neg_threshold=1.5, surrogate="trapezoid")  # doctest: +ELLIPSIS
    MultiStepLeaky(...)

    :param kind: a name in :data:`NEURONS`
    :param surrogate: surrogate name, spec dict or :class:`~snnrl_sb3.surrogate.Surrogate`
        instance; ``None``: the kind's default (``atan`` for the leaky kinds, the rectangular
        window of half-width 0.5 for ``current_lif`` and ``dynamic``)
    :param surrogate_kwargs: the surrogate's parameters (needs ``surrogate``)
    :param backend: ``"eager"`` or ``"compile"``
    :param params: the kind's parameters (see :func:`neuron_parameters`)
    """
    values = neuron_parameters(kind, params)
    entry = NEURONS[kind]
    if surrogate is None:
        if surrogate_kwargs:
            raise ValueError("surrogate_kwargs needs surrogate: name the surrogate they belong to")
        surrogate = entry.default_surrogate
    spike_fn = make_surrogate(surrogate, surrogate_kwargs)
    return entry.module.from_parameters(values, surrogate=spike_fn, backend=backend)


def _check_registry() -> None:
    for name, entry in NEURONS.items():
        if not dataclasses.is_dataclass(entry.parameters) or not issubclass(entry.module, MultiStepNeuron):
            raise TypeError(f"neuron kind {name!r} is malformed")  # pragma: no cover - a programming error


_check_registry()
