r"""One spiking configuration for every policy family.

Every spiking policy (DQN / QR-DQN Q-networks, Pop-SAN actors for TD3 / DDPG / SAC) takes the
same JSON-plain keyword arguments, validated once per policy into a :class:`SpikingConfig`, the
typed value object that builds the neurons, encoder and read-out of the online and target
networks alike and that :meth:`~SpikingConfig.to_kwargs` gives back for ``model.save``:

======================  ==============================================================
``num_steps``           simulation steps ``T`` per forward (1 .. :data:`MAX_NUM_STEPS`)
``neuron``              neuron kind: ``"ternary"``, ``"lif"``, ``"symmetric_ternary"``,
                        ``"current_lif"`` (Pop-SAN), ``"dynamic"`` (MDC-SAN)
``neuron_kwargs``       the kind's parameters, e.g. ``{"beta": 0.9, "neg_threshold": 2.0}``
``surrogate``           surrogate gradient name or spec dict (``None``: the kind's default)
``surrogate_kwargs``    the surrogate's parameters, e.g. ``{"w1": 0.2, "w2": 0.6}``
``encoder``             ``"direct"`` or ``"bernoulli"`` (Q-networks), ``"population"``
                        (Pop-SAN actors)
``encoder_kwargs``      bernoulli: ``seed``, ``deterministic_noise`` (``"frozen"``/``"fresh"``);
                        population: ``pop_dim``, ``mean_range``,
                        ``std``, ``threshold``, ``spikes`` (``"regular"``/``"bernoulli"``/
                        ``"analog"``), ``seed``, ``deterministic_noise``
``readout``             ``"membrane_max"``, ``"membrane_mean"``, ``"membrane_last"``,
                        ``"spike_count"``, ``"current_sum"`` (Q-networks), ``"population"``
                        (Pop-SAN actors)
``readout_kwargs``      membrane read-outs: ``beta``, ``input_scale``; population: ``pop_dim``
``backend``             kernel implementation: ``"eager"``, ``"compile"`` or ``"cpp"``
======================  ==============================================================

Older spellings (flat ``beta`` / ``threshold`` / ``neg_threshold`` / ``learn_neg_threshold``,
``decoder`` / ``decoder_beta``, ``encoding`` / ``pop_dim`` / ``decoder_pop_dim`` /
``mean_range`` / ``std`` / ``encoder_threshold``, ``surrogate`` or ``backend`` inside
``neuron_kwargs``) are moved to their new place with a :class:`DeprecationWarning`, so models
saved with them keep loading; the same value given in two places is an error, never a silent
choice.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from snnrl_sb3._validation import MAX_SEED, check_choice, check_int, check_real, check_seed
from snnrl_sb3.body import MAX_NUM_STEPS, check_num_steps
from snnrl_sb3.coding import DETERMINISTIC_NOISE
from snnrl_sb3.kernels import BACKENDS, NEURONS, MultiStepNeuron, make_neuron, neuron_parameters
from snnrl_sb3.surrogate import make_surrogate

__all__ = [
    "SpikingConfig",
    "SpikingKwargs",
    "FAMILIES",
    "MAX_NUM_STEPS",
    "MAX_SEED",
    "SPIKING_KWARGS",
    "check_seed",
]

#: The spiking keyword arguments, in one vocabulary for every policy family.
SPIKING_KWARGS = ("num_steps", "neuron", "neuron_kwargs", "surrogate", "surrogate_kwargs", "encoder",
                  "encoder_kwargs", "readout", "readout_kwargs", "backend")


class SpikingKwargs(TypedDict, total=False):
    """The spiking policy keyword arguments (see the module docstring), for type checkers."""

    num_steps: int
    neuron: str
    neuron_kwargs: dict[str, Any] | None
    surrogate: str | dict[str, Any] | None
    surrogate_kwargs: dict[str, Any] | None
    encoder: str
    encoder_kwargs: dict[str, Any] | None
    readout: str
    readout_kwargs: dict[str, Any] | None
    backend: str
    preset: str


@dataclass(frozen=True)
class Family:
    """What one policy family allows and defaults to."""

    name: str
    defaults: Mapping[str, Any]
    encoders: tuple[str, ...]
    readouts: tuple[str, ...]


#: ``"q"``: spiking Q-/quantile networks (seed 000, DSQN); ``"population"``: Pop-SAN/MDC-SAN actors.
FAMILIES: dict[str, Family] = {
    "q": Family("q", {"num_steps": 8, "neuron": "ternary", "encoder": "direct", "readout": "membrane_max"},
                ("direct", "bernoulli"),
                ("membrane_max", "membrane_mean", "membrane_last", "spike_count", "current_sum")),
    "population": Family("population", {"num_steps": 5, "neuron": "current_lif", "encoder": "population",
                                        "readout": "population"}, ("population",), ("population",)),
}

#: Parameters each encoder / read-out takes, with their checks (``None``: no parameters).
_ENCODER_KWARGS = {"direct": (), "bernoulli": ("seed", "deterministic_noise"),
                   "population": ("pop_dim", "mean_range", "std", "threshold", "spikes", "seed",
                                  "deterministic_noise")}
_MEMBRANE_KWARGS = ("beta", "input_scale")
_READOUT_KWARGS = {"membrane_max": _MEMBRANE_KWARGS, "membrane_mean": _MEMBRANE_KWARGS,
                   "membrane_last": _MEMBRANE_KWARGS, "spike_count": (), "current_sum": (), "population": ("pop_dim",)}
POPULATION_SPIKES = ("regular", "bernoulli", "analog")

#: Old flat spelling -> (new keyword, key inside it; ``None``: the keyword itself).
_MOVED: dict[str, tuple[str, str | None]] = {
    "beta": ("neuron_kwargs", "beta"),
    "threshold": ("neuron_kwargs", "threshold"),
    "neg_threshold": ("neuron_kwargs", "neg_threshold"),
    "learn_neg_threshold": ("neuron_kwargs", "learn_neg_threshold"),
    "decoder": ("readout", None),
    "decoder_beta": ("readout_kwargs", "beta"),
    "encoding": ("encoder_kwargs", "spikes"),
    "pop_dim": ("encoder_kwargs", "pop_dim"),
    "decoder_pop_dim": ("readout_kwargs", "pop_dim"),
    "mean_range": ("encoder_kwargs", "mean_range"),
    "std": ("encoder_kwargs", "std"),
    "encoder_threshold": ("encoder_kwargs", "threshold"),
}
#: Old keys inside ``neuron_kwargs`` that are spiking keywords of their own now.
_MOVED_OUT_OF_NEURON_KWARGS = ("surrogate", "surrogate_kwargs", "backend")
#: Old spellings that older versions always saved, ignored by some read-outs: dropped there (as before).
_IGNORED_BEFORE = {("decoder_beta", "spike_count")}


def _check_json_plain(name: str, value: Any) -> None:
    """Policy kwargs must survive ``model.save``/``load`` as JSON: no objects, no classes."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be JSON-plain (strings, finite numbers, bools, lists and dicts of those) so that "
            f"save/load rebuilds it; got {value!r} ({type(value).__name__}). Pass names, e.g. surrogate='atan' "
            f"with surrogate_kwargs={{'alpha': 2.0}}"
        ) from None


def _dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings, got {key!r}")
    return copy.deepcopy(dict(value))


def _check_keys(name: str, given: Mapping[str, Any], allowed: tuple[str, ...], owner: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        takes = f"takes {sorted(allowed)}" if allowed else "takes no parameters"
        raise TypeError(f"{name} has unknown keys {unknown}: {owner} {takes}")


def _move_old_spellings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Rewrite old spellings into the new vocabulary (warning once), refusing conflicts."""
    kwargs = dict(kwargs)
    moved: list[str] = []

    def put(old: str, target: str, key: str | None, value: Any) -> None:
        if key is None:
            if kwargs.get(target) is not None and kwargs[target] != value:
                raise ValueError(f"{old}={value!r} conflicts with {target}={kwargs[target]!r}: give it once, "
                                 f"as {target}")
            kwargs[target] = value
            return
        inner = _dict(target, kwargs.get(target))
        if key in inner and inner[key] != value:
            raise ValueError(f"{old}={value!r} conflicts with {target}[{key!r}]={inner[key]!r}: give it once, "
                             f"in {target}")
        inner[key] = value
        kwargs[target] = inner

    neuron_kwargs = _dict("neuron_kwargs", kwargs.get("neuron_kwargs"))
    for name in _MOVED_OUT_OF_NEURON_KWARGS:
        if name in neuron_kwargs:
            value = neuron_kwargs.pop(name)
            kwargs["neuron_kwargs"] = neuron_kwargs
            moved.append(f"neuron_kwargs[{name!r}] -> {name}")
            put(f"neuron_kwargs[{name!r}]", name, None, value)
    readout = kwargs.get("readout", kwargs.get("decoder"))
    for old, (target, key) in _MOVED.items():
        if old not in kwargs:
            continue
        value = kwargs.pop(old)
        if value is None:  # older versions saved None for "not set": nothing to move
            continue
        if (old, readout) in _IGNORED_BEFORE:
            moved.append(f"{old} (ignored by readout={readout!r}, as before)")
            continue
        moved.append(f"{old} -> {target}" + ("" if key is None else f"[{key!r}]"))
        put(old, target, key, value)
        if old == "pop_dim" and "decoder_pop_dim" not in kwargs:  # the old pop_dim sized both populations
            inner = _dict("readout_kwargs", kwargs.get("readout_kwargs"))
            inner.setdefault("pop_dim", value)
            kwargs["readout_kwargs"] = inner
    if moved:
        warnings.warn("deprecated spiking policy kwargs, moved to their new place: " + "; ".join(moved)
                      + " (see snnrl_sb3.config)", DeprecationWarning, stacklevel=4)
    return kwargs


def _check_encoder_kwargs(encoder: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    _check_keys("encoder_kwargs", kwargs, _ENCODER_KWARGS[encoder], f"encoder {encoder!r}")
    out = dict(kwargs)
    if "seed" in out and out["seed"] is not None:
        out["seed"] = check_seed("encoder_kwargs['seed']", out["seed"])
    if "pop_dim" in out:
        out["pop_dim"] = check_int("encoder_kwargs['pop_dim']", out["pop_dim"], low=1)
    if "spikes" in out:
        check_choice("encoder_kwargs['spikes']", out["spikes"], POPULATION_SPIKES)
    if "deterministic_noise" in out:
        check_choice("encoder_kwargs['deterministic_noise']", out["deterministic_noise"], DETERMINISTIC_NOISE)
    for key in ("seed", "deterministic_noise"):
        if out.get(key) is not None and encoder == "population" and out.get("spikes", "regular") != "bernoulli":
            raise ValueError(f"encoder_kwargs[{key!r}] applies only to spikes='bernoulli' (regular and analog "
                             "population input is deterministic)")
    if out.get("mean_range") is not None:
        value = out["mean_range"]
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
            raise TypeError(f"encoder_kwargs['mean_range'] must be a pair [low, high], got {value!r}")
        low = check_real("encoder_kwargs['mean_range'][0]", value[0])
        high = check_real("encoder_kwargs['mean_range'][1]", value[1])
        if not high > low:
            raise ValueError(f"encoder_kwargs['mean_range'] must have low < high, got {[low, high]}")
        out["mean_range"] = [low, high]
    if out.get("std") is not None:
        out["std"] = check_real("encoder_kwargs['std']", out["std"], low=1e-6, high=1e6)
    if "threshold" in out:
        out["threshold"] = check_real("encoder_kwargs['threshold']", out["threshold"], low=0.0, high=1.0,
                                      low_inclusive=False)
    return out


def _check_readout_kwargs(readout: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    _check_keys("readout_kwargs", kwargs, _READOUT_KWARGS[readout], f"readout {readout!r}")
    out = dict(kwargs)
    if "beta" in out:
        out["beta"] = check_real("readout_kwargs['beta']", out["beta"], low=0.0, high=1.0)
    if "input_scale" in out:
        out["input_scale"] = check_real("readout_kwargs['input_scale']", out["input_scale"], low=0.0, high=1e6,
                                        low_inclusive=False)
    if "pop_dim" in out:
        out["pop_dim"] = check_int("readout_kwargs['pop_dim']", out["pop_dim"], low=1)
    return out


@dataclass(frozen=True)
class SpikingConfig:
    """The validated spiking configuration of one policy (see the module docstring).

    Build it with :meth:`from_kwargs` (which applies the family's defaults and checks everything
    once); the policy passes the same object to its online and target networks. The dict fields
    are private copies: treat them as read-only.
    """

    family: str = "q"
    num_steps: int = 8
    neuron: str = "ternary"
    neuron_kwargs: dict[str, Any] = field(default_factory=dict)
    surrogate: str | dict[str, Any] | None = None
    surrogate_kwargs: dict[str, Any] = field(default_factory=dict)
    encoder: str = "direct"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    readout: str = "membrane_max"
    readout_kwargs: dict[str, Any] = field(default_factory=dict)
    backend: str = "eager"

    def __post_init__(self) -> None:
        family = FAMILIES[check_choice("family", self.family, FAMILIES)]
        set_ = object.__setattr__  # frozen: normalised values are written once, here
        num_steps = check_num_steps(self.num_steps)
        set_(self, "num_steps", num_steps)
        check_choice("neuron", self.neuron, NEURONS)
        neuron_kwargs = _dict("neuron_kwargs", self.neuron_kwargs)
        neuron_parameters(self.neuron, neuron_kwargs)  # a frozen value object: the kind's checks, no module
        set_(self, "neuron_kwargs", neuron_kwargs)
        surrogate_kwargs = _dict("surrogate_kwargs", self.surrogate_kwargs)
        surrogate = self.surrogate
        if isinstance(surrogate, Mapping):
            surrogate = _dict("surrogate", surrogate)
        if surrogate is not None:
            _check_json_plain("surrogate", surrogate)
            make_surrogate(surrogate, surrogate_kwargs)  # names, parameters and ranges
        elif surrogate_kwargs:
            raise ValueError("surrogate_kwargs needs surrogate: name the surrogate they belong to")
        set_(self, "surrogate", surrogate)
        set_(self, "surrogate_kwargs", surrogate_kwargs)
        check_choice("encoder", self.encoder, family.encoders)
        set_(self, "encoder_kwargs", _check_encoder_kwargs(self.encoder, _dict("encoder_kwargs",
                                                                               self.encoder_kwargs)))
        check_choice("readout", self.readout, family.readouts)
        set_(self, "readout_kwargs", _check_readout_kwargs(self.readout, _dict("readout_kwargs",
                                                                               self.readout_kwargs)))
        check_choice("backend", self.backend, BACKENDS)
        for name in SPIKING_KWARGS:
            _check_json_plain(name, getattr(self, name))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], family: str = "q") -> SpikingConfig:
        """Validate policy keyword arguments (old spellings moved with a warning) into a config.

        Raises :class:`TypeError` for unknown keys or wrong types and :class:`ValueError` for
        values out of range or given twice, naming the argument and what is allowed.
        """
        fam = FAMILIES[check_choice("family", family, FAMILIES)]
        given = _move_old_spellings(dict(kwargs))
        unknown = sorted(set(given) - set(SPIKING_KWARGS))
        if unknown:
            raise TypeError(f"unknown spiking policy kwargs {unknown}; allowed: {sorted(SPIKING_KWARGS)}")
        values = {name: given[name] for name in SPIKING_KWARGS if given.get(name) is not None}
        return cls(family=fam.name, **{**fam.defaults, **values})

    def to_kwargs(self) -> dict[str, Any]:
        """The policy keyword arguments that rebuild this config (JSON-plain, deep copies)."""
        out: dict[str, Any] = {}
        for name in SPIKING_KWARGS:
            value = copy.deepcopy(getattr(self, name))
            out[name] = value if value != {} else None
        return out

    # ---- builders: every network of the policy is built from the same values ----

    def make_neuron(self) -> MultiStepNeuron:
        """One layer of the configured neurons."""
        return make_neuron(self.neuron, surrogate=self.surrogate, surrogate_kwargs=self.surrogate_kwargs or None,
                           backend=self.backend, **self.neuron_kwargs)

    @property
    def readout_beta(self) -> float:
        """Leak of the non-spiking output integrator of the membrane read-outs."""
        return float(self.readout_kwargs.get("beta", 0.9))

    @property
    def readout_input_scale(self) -> float:
        """Input scale of the non-spiking output integrator of the membrane read-outs."""
        return float(self.readout_kwargs.get("input_scale", 1.0))

