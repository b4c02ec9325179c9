"""What every spiking SB3 policy shares: its :class:`~snnrl_sb3.config.SpikingConfig`, persistence,
space checks and input checks (one place for each, whatever the algorithm)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from snnrl_sb3._validation import InvalidStateDictError
from snnrl_sb3.config import SpikingConfig
from snnrl_sb3.presets import apply_preset

__all__ = ["SpikingPolicyMixin", "check_spaces", "check_finite_input"]

_FLATTEN_HINT = "flatten Dict/Tuple observations with gymnasium.wrappers.FlattenObservation"


def check_spaces(owner: str, observation_space: spaces.Space, action_space: spaces.Space, *,
                 observations: tuple[type[spaces.Space], ...], actions: tuple[type[spaces.Space], ...],
                 flat_box: bool = False) -> None:
    """Refuse spaces a policy cannot handle, with a message naming the policy and what it takes.

    :param flat_box: Box observations must be 1-D (population coding needs one field per dimension)
    """
    if not isinstance(action_space, actions):
        names = " or ".join(c.__name__ for c in actions)
        raise TypeError(f"{owner} needs a {names} action space, got {action_space}")
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)) or not isinstance(observation_space, observations):
        names = ", ".join(c.__name__ for c in observations)
        raise TypeError(f"unsupported observation space {observation_space} for {owner}: it takes {names} "
                        f"observations ({_FLATTEN_HINT})")
    if flat_box and isinstance(observation_space, spaces.Box) and len(observation_space.shape) != 1:
        raise ValueError(f"{owner} needs a flat (1-D) Box observation space, got shape {observation_space.shape} "
                         f"({_FLATTEN_HINT})")


def check_finite_input(features: th.Tensor) -> None:
    """Spiking networks compare membranes with thresholds: NaN/inf inputs give plausible but meaningless
    outputs, so they are refused."""
    # one reduction on the fast path: NaN/inf propagate into the sum (the exact check runs only then)
    if (features.is_floating_point() and not bool(th.isfinite(features.sum()))
            and not bool(th.isfinite(features).all())):
        raise ValueError("observation contains NaN or inf; spiking policies need finite inputs "
                         "(check the environment, e.g. with stable_baselines3.common.vec_env.VecCheckNan)")


class SpikingPolicyMixin(BasePolicy):
    """Mixed into every spiking SB3 policy, before the SB3 policy class.

    ``_setup_spiking`` validates the spiking kwargs once into :attr:`spiking_config` (before
    ``super().__init__`` builds the networks, which all get that same object);
    ``_get_constructor_parameters`` returns them, so ``policy.save``/``load`` rebuild the same
    networks; ``load_state_dict`` refuses non-finite parameters instead of acting on them.

    It subclasses ``BasePolicy`` (which every SB3 policy class it is mixed with also does) so that
    its ``super()`` calls type-check; the method resolution order is the same as without it.
    """

    #: the :data:`~snnrl_sb3.config.FAMILIES` entry of the policy
    spiking_family: ClassVar[str] = "q"
    spiking_config: SpikingConfig
    #: the preset the policy was built from (``None``: none)
    spiking_preset: str | None
    _policy_kwargs_extra: dict[str, Any]

    def _setup_spiking(self, kwargs: Mapping[str, Any], extra_defaults: Mapping[str, Any],
                       family: str | None = None) -> dict[str, Any]:
        """Expand a ``preset``, validate the spiking kwargs once into :attr:`spiking_config`, and return the
        family's own kwargs (``extra_defaults`` names them; a given value, else the preset's, else the
        default), which are saved with the model too. ``family``: the vocabulary to validate with, for a
        policy whose family depends on its kwargs (default: the class's :attr:`spiking_family`)."""
        family = family or self.spiking_family
        expanded = apply_preset(kwargs, family)
        self.spiking_preset = expanded.pop("preset", None)
        extra = {name: expanded.pop(name, default) for name, default in extra_defaults.items()}
        try:
            self.spiking_config = SpikingConfig.from_kwargs(expanded, family=family)
        except (TypeError, ValueError) as err:
            if self.spiking_preset is None:
                raise
            raise type(err)(f"with preset={self.spiking_preset!r}: {err}") from None
        self._policy_kwargs_extra = extra
        return extra

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.spiking_config.to_kwargs(), **self._policy_kwargs_extra)
        if self.spiking_preset is not None:
            data["preset"] = self.spiking_preset
        return data

    # The full configuration the policy kwargs expanded to travels in the state dict (as the UTF-8 bytes of
    # its JSON, so that every entry stays a tensor): a model whose preset or defaults would now build another
    # network refuses to load instead of changing silently.
    def _built_configuration(self) -> dict[str, Any]:
        return {"spiking": self.spiking_config.to_kwargs(), "extra": dict(self._policy_kwargs_extra),
                "preset": self.spiking_preset}

    def get_extra_state(self) -> th.Tensor:
        text = json.dumps(self._built_configuration(), sort_keys=True)
        return th.tensor(list(text.encode("utf-8")), dtype=th.uint8)

    def set_extra_state(self, state: Any) -> None:
        built = self._built_configuration()
        try:
            saved_state = json.loads(bytes(state.tolist()).decode("utf-8"))
            if not isinstance(saved_state, dict) or set(saved_state) != set(built):
                raise ValueError
        except (AttributeError, TypeError, ValueError):
            raise InvalidStateDictError("the saved spiking configuration ('_extra_state') is not readable: the saved "
                                        "model is corrupted") from None
        if saved_state != json.loads(json.dumps(built)):
            saved = {**saved_state["spiking"], **saved_state["extra"]}
            now = {**built["spiking"], **built["extra"]}
            changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
            if saved_state["preset"] != built["preset"]:
                changed.insert(0, "preset")
                saved["preset"], now["preset"] = saved_state["preset"], built["preset"]
            differences = ", ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in changed)
            raise InvalidStateDictError(
                f"this model was saved with a spiking configuration its policy kwargs no longer build (a preset or "
                f"a default changed between versions): {differences}. Load it with "
                f"custom_objects={{'policy_kwargs': {saved!r}}} to rebuild the saved network")

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        for key, value in state_dict.items():
            if isinstance(value, th.Tensor) and value.is_floating_point() and not bool(th.isfinite(value).all()):
                raise InvalidStateDictError(f"refusing to load {key!r}: it holds NaN or inf values (a diverged or "
                                            "corrupted model); a spiking policy with non-finite parameters acts "
                                            "on garbage")
        if "_extra_state" not in state_dict:  # saved by version 0.1, before the configuration was kept
            state_dict = {**state_dict, "_extra_state": self.get_extra_state()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
