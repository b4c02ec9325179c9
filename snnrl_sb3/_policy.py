"""What every spiking SB3 policy shares: its :class:`~snnrl_sb3.config.SpikingConfig`, persistence,
space checks and input checks (one place for each, whatever the algorithm)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from snnrl_sb3._validation import InvalidStateDictError
from snnrl_sb3.config import SpikingConfig

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
    _policy_kwargs_extra: dict[str, Any]

    def _setup_spiking(self, spiking: Mapping[str, Any], **extra: Any) -> SpikingConfig:
        """Validate the spiking kwargs; ``extra`` are the family's own JSON-plain kwargs to save."""
        self.spiking_config = SpikingConfig.from_kwargs(spiking, family=self.spiking_family)
        self._policy_kwargs_extra = dict(extra)
        return self.spiking_config

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.spiking_config.to_kwargs(), **self._policy_kwargs_extra)
        return data

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        for key, value in state_dict.items():
            if isinstance(value, th.Tensor) and value.is_floating_point() and not bool(th.isfinite(value).all()):
                raise InvalidStateDictError(f"refusing to load {key!r}: it holds NaN or inf values (a diverged or "
                                            "corrupted model); a spiking policy with non-finite parameters acts "
                                            "on garbage")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
