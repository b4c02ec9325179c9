r"""Named presets: the seeds' systems as their authors built them.

``policy_kwargs=dict(preset="datsqn")`` builds the network of a published system exactly
(architecture, neuron dynamics, reset, threshold comparison, surrogate, read-out, biases, init,
encoding); any kwarg given with it overrides the preset's, so an ablation is one word away:
``dict(preset="datsqn", neuron_kwargs={"neg_threshold": 1.0})``. Dict-valued kwargs
(``neuron_kwargs``, ``surrogate_kwargs``, ``encoder_kwargs``, ``readout_kwargs``) are merged key by
key, except when the kwarg they belong to is overridden too (``neuron="lif"`` drops the preset's
``neuron_kwargs``: they were the parameters of another kind).

Presets are JSON-plain and saved with the model by name, with the full configuration they expanded
to kept in the policy's state dict: a model whose preset or defaults would now build a different
network refuses to load instead of changing silently.

Where the library's defaults differ from a paper's system, the defaults stay (until a measurement
says otherwise); the README's "The seeds as published" table names each difference.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snnrl_sb3._validation import check_choice

__all__ = ["Preset", "PRESETS", "apply_preset"]

#: Dict-valued kwargs and the kwarg whose choice they parametrise.
_OWNED_BY = {"neuron_kwargs": "neuron", "surrogate_kwargs": "surrogate", "encoder_kwargs": "encoder",
             "readout_kwargs": "readout"}


@dataclass(frozen=True)
class Preset:
    """A published system: its policy family, the policy kwargs that build it, and its source."""

    name: str
    family: str
    kwargs: Mapping[str, Any]
    reference: str
    description: str


def _atari_q(**kwargs: Any) -> dict[str, Any]:
    """The NatureCNN Q-network of seeds 000 and 003 (PyTorch's default init, biases kept)."""
    return {"body": "nature_cnn", "init": "torch", "bias": True, **kwargs}


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("datsqn", "q", _atari_q(
        num_steps=20, neuron="ternary",
        neuron_kwargs={"beta": 0.9, "threshold": 1.0, "neg_threshold": 2.0, "learn_neg_threshold": True,
                       "surrogate_branches": "sign", "neg_threshold_param": "clamped", "neg_threshold_max": 10.0},
        surrogate="atan", surrogate_kwargs={"alpha": 2.0},
        encoder="bernoulli", encoder_kwargs={"deterministic_noise": "fresh"}, readout="current_sum"),
        "github.com/Aref7792/DATSQN (DATSQN_DTSQN_DSQN/DATSQN_train.py)",
        "Ghoreishee et al. 2025: deep asymmetric ternary spiking Q-network"),
    Preset("dtsqn", "q", _atari_q(
        num_steps=20, neuron="symmetric_ternary",
        neuron_kwargs={"beta": 0.9, "threshold": 1.0, "surrogate_branches": "sign"},
        surrogate="atan", surrogate_kwargs={"alpha": 2.0},
        encoder="bernoulli", encoder_kwargs={"deterministic_noise": "fresh"}, readout="current_sum"),
        "github.com/Aref7792/DATSQN (DATSQN_DTSQN_DSQN/DTSQN_train.py)",
        "Ghoreishee et al. 2025: deep symmetric ternary spiking Q-network (the ablation)"),
    Preset("dsqn_binary", "q", _atari_q(
        num_steps=20, neuron="lif", neuron_kwargs={"beta": 0.9, "threshold": 1.0},
        surrogate="atan", surrogate_kwargs={"alpha": 2.0},
        encoder="bernoulli", encoder_kwargs={"deterministic_noise": "fresh"}, readout="current_sum"),
        "github.com/Aref7792/DATSQN (DATSQN_DTSQN_DSQN/DSQN_train.py)",
        "Ghoreishee et al. 2025: the binary deep spiking Q-network baseline"),
    Preset("dsqn", "q", _atari_q(
        num_steps=8, neuron="sj_lif", neuron_kwargs={"tau": 2.0, "threshold": 1.0, "reset": "zero", "fire": "ge"},
        surrogate="atan", surrogate_kwargs={"alpha": 2.0}, image_scale=1 / 256,
        encoder="direct", readout="membrane_max", readout_kwargs={"beta": 0.5, "input_scale": 0.5}),
        "github.com/fangwei123456/spikingjelly (spikingjelly/activation_based/examples/DSQN)",
        "Chen et al. 2022: deep spiking Q-network, Q from the membrane of non-spiking output neurons"),
    Preset("popsan", "population", dict(
        num_steps=5, neuron="current_lif",
        neuron_kwargs={"current_decay": 0.5, "volt_decay": 0.75, "threshold": 0.5},
        surrogate="rectangular", surrogate_kwargs={"width": 0.5}, encoder="population",
        encoder_kwargs={"pop_dim": 10, "spikes": "regular", "threshold": 0.999, "mean_range": [-3.0, 3.0],
                        "std": math.sqrt(0.15)},
        readout="population", readout_kwargs={"pop_dim": 10}, actor_lr_ratio=0.1),
        "github.com/combra-lab/pop-spiking-deep-rl (popsan_drl/popsan_td3)",
        "Tang et al. 2020: population-coded spiking actor network under TD3"),
    Preset("mdcsan", "population", dict(
        num_steps=5, neuron="dynamic",
        neuron_kwargs={"current_decay": 0.5, "threshold": 0.5, "theta_v": -0.172, "theta_u": 0.529,
                       "theta_r": 0.021, "theta_s": 0.132},
        surrogate="rectangular", surrogate_kwargs={"width": 0.5}, encoder="population",
        encoder_kwargs={"pop_dim": 10, "spikes": "analog", "mean_range": [-3.0, 3.0], "std": math.sqrt(0.15)},
        readout="population", readout_kwargs={"pop_dim": 10}, actor_lr_ratio=0.1),
        "github.com/lucifer2859/ILC-SAN (ilcsan-td3/mdcsan.py)",
        "Zhang et al. 2022: multi-scale dynamic coding spiking actor network under TD3 (analog population input)"),
]}


def apply_preset(kwargs: Mapping[str, Any], family: str) -> dict[str, Any]:
    """``kwargs`` with its ``preset`` (if any) expanded: the preset's kwargs, overridden by the given ones.

    Raises ``ValueError`` for an unknown preset or one of another policy family."""
    given = dict(kwargs)
    name = given.pop("preset", None)
    if name is None:
        return given
    allowed = sorted(n for n, p in PRESETS.items() if p.family == family)
    if isinstance(name, str) and name in PRESETS and PRESETS[name].family != family:
        raise ValueError(f"preset {name!r} is a {PRESETS[name].family!r}-family system (it does not fit this policy); "
                         f"this policy takes the presets {allowed}")
    preset = PRESETS[check_choice("preset", name, allowed)]
    out = copy.deepcopy(dict(preset.kwargs))
    for key, value in given.items():
        if value is None:
            continue
        owner = _OWNED_BY.get(key)
        if owner is not None and key in out and owner not in given and isinstance(value, Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}  # an ablation of the preset's own choice
        else:
            out[key] = copy.deepcopy(value)
    for key, owner in _OWNED_BY.items():  # a new choice drops the preset's parameters of the old one
        changed = owner in given and given[owner] is not None and out.get(owner) != preset.kwargs.get(owner)
        if changed and key not in given:
            out.pop(key, None)
    out["preset"] = name
    return out
