r"""Population-coded spiking actors (Pop-SAN / MDC-SAN) for stock SB3 ``TD3``, ``DDPG`` and ``SAC``.

.. code-block:: python

    from stable_baselines3 import TD3
    from snnrl_sb3 import PopSpikingTD3Policy

    model = TD3(PopSpikingTD3Policy, "Pendulum-v1",
                policy_kwargs=dict(surrogate="trapezoid"))   # one-word surrogate switch
    model.learn(20_000)

The actor is ``PopulationEncoder -> (Linear -> spiking neuron) * len(net_arch) -> Linear ->
output-population neurons -> PopulationDecoder``, simulated for ``num_steps`` steps from zero
state at every call (a Markov policy); the critic stays SB3's deep MLP. Only ``make_actor`` (and
the actor's optimizer, for ``actor_lr_ratio``) differ from the stock policies: the RL code is
SB3's own.

**Two learning rates.** Stock TD3/SAC write ``learning_rate`` into every param group of every
optimizer at each update. The actor's optimizer here is an :func:`lr_scaled` subclass of the
chosen optimizer whose ``step`` multiplies each group's ``lr`` by the group's ``lr_scale``
(``actor_lr_ratio``) for the duration of the step, so the ratio survives SB3's schedule
updates: Pop-SAN's actor 1e-4 / critic 1e-3 is ``learning_rate=1e-3, actor_lr_ratio=0.1``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn
from typing_extensions import Unpack

from snnrl_sb3._policy import SpikingPolicyMixin, check_finite_input, check_spaces
from snnrl_sb3._validation import check_int, check_real
from snnrl_sb3.body import SpikingNetwork
from snnrl_sb3.config import SpikingConfig, SpikingKwargs
from snnrl_sb3.population import PopulationDecoder, PopulationEncoder, PopulationInput

__all__ = [
    "PopSpikingActor",
    "PopSpikingSACActor",
    "PopSpikingTD3Policy",
    "PopSpikingSACPolicy",
    "pop_spiking_network",
    "lr_scaled",
    "make_scaled_optimizer",
]

#: Pop-SAN's population sizes (encoder neurons per observation dimension, output neurons per action).
POPSAN_POP_DIM = 10


def pop_spiking_network(obs_dim: int, out_dim: int, net_arch: Sequence[int], config: SpikingConfig | None = None, *,
                        squash: bool = True, low: Any = None, high: Any = None) -> SpikingNetwork:
    """Pop-SAN network ``[B, obs_dim] -> [B, out_dim]`` (see module docstring) from a
    ``"population"``-family :class:`~snnrl_sb3.config.SpikingConfig` (default: Pop-SAN's)."""
    config = SpikingConfig.from_kwargs({}, family="population") if config is None else config
    if config.family != "population":
        raise ValueError(f"pop_spiking_network needs a 'population'-family SpikingConfig, got {config.family!r}")
    enc = config.encoder_kwargs
    dec_pop = config.readout_kwargs.get("pop_dim", POPSAN_POP_DIM)
    for i, hidden in enumerate(net_arch):
        check_int(f"net_arch[{i}]", hidden, low=1)
    widths = [*net_arch, out_dim * dec_pop]
    # the encoder carries the first synaptic layer (fused backward); then neuron, (Linear, neuron)*
    encoder = PopulationInput(PopulationEncoder(obs_dim, enc.get("pop_dim", POPSAN_POP_DIM), low, high,
                                                enc.get("mean_range"), enc.get("std"),
                                                spikes=enc.get("spikes", "regular"),
                                                threshold=enc.get("threshold", 0.999), seed=enc.get("seed"),
                                                deterministic_noise=enc.get("deterministic_noise", "frozen")),
                              widths[0])
    layers: list[nn.Module] = [config.make_neuron()]
    for width, nxt in itertools.pairwise(widths):
        layers += [nn.Linear(width, nxt), config.make_neuron()]
    return SpikingNetwork(layers, PopulationDecoder(out_dim, dec_pop, squash=squash), config.num_steps, encoder)


def _check_actor_spaces(owner: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    check_spaces(owner, observation_space, action_space, observations=(spaces.Box,), actions=(spaces.Box,),
                 flat_box=True)


def _bounds(observation_space: spaces.Space, features_extractor: nn.Module, features_dim: int) -> tuple[Any, Any]:
    """Observation bounds for the receptive fields, when the features are the raw observation."""
    if (isinstance(features_extractor, FlattenExtractor) and isinstance(observation_space, spaces.Box)
            and observation_space.shape == (features_dim,)):
        return observation_space.low, observation_space.high
    return None, None


def _population_config(spiking: SpikingConfig | Mapping[str, Any] | None) -> SpikingConfig:
    if isinstance(spiking, SpikingConfig):
        return spiking
    return SpikingConfig.from_kwargs(spiking or {}, family="population")


class _PopSpikingActorMixin(BasePolicy):
    """Construction shared by the TD3 and SAC actors: spaces, config and the spiking network (a
    ``BasePolicy`` for type checking only, like :class:`~snnrl_sb3._policy.SpikingPolicyMixin`)."""

    spiking_config: SpikingConfig
    snn: SpikingNetwork
    features_extractor: BaseFeaturesExtractor

    def _init_snn(self, observation_space: spaces.Space, action_space: spaces.Box, net_arch: list[int],
                  features_extractor: nn.Module, features_dim: int,
                  spiking: SpikingConfig | Mapping[str, Any] | None, out_dim: int, squash: bool) -> None:
        _check_actor_spaces(type(self).__name__, observation_space, action_space)
        self.net_arch = list(net_arch)
        self.features_dim = int(features_dim)
        self.spiking_config = _population_config(spiking)
        low, high = _bounds(observation_space, features_extractor, self.features_dim)
        self.snn = pop_spiking_network(self.features_dim, out_dim, self.net_arch, self.spiking_config, squash=squash,
                                       low=low, high=high)

    def _spiking_output(self, obs: PyTorchObs, deterministic: bool) -> th.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        check_finite_input(features)
        return self.snn(features, deterministic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, features_dim=self.features_dim, features_extractor=self.features_extractor,
                    spiking=self.spiking_config.to_kwargs())
        return data


class PopSpikingActor(_PopSpikingActorMixin, BasePolicy):
    """Deterministic Pop-SAN actor for TD3/DDPG: actions in [-1, 1] (SB3 rescales them).

    ``forward(obs, deterministic=False)``; ``deterministic`` matters only for Bernoulli encoding.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, net_arch: list[int],
                 features_extractor: BaseFeaturesExtractor, features_dim: int, activation_fn: Any = None,
                 normalize_images: bool = True, spiking: SpikingConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor,
                         normalize_images=normalize_images, squash_output=True)
        self._init_snn(observation_space, action_space, net_arch, features_extractor, features_dim, spiking,
                       get_action_dim(action_space), squash=True)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self._spiking_output(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class PopSpikingSACActor(_PopSpikingActorMixin, BasePolicy):
    """Stochastic Pop-SAN actor for SAC: ``2 * act_dim`` output populations decode the mean and
    the log-std of SAC's squashed Gaussian (log-std clamped to SB3's [-20, 2])."""

    action_space: spaces.Box

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, net_arch: list[int],
                 features_extractor: nn.Module, features_dim: int, activation_fn: Any = None,
                 use_sde: bool = False, log_std_init: float = -3, full_std: bool = True, use_expln: bool = False,
                 clip_mean: float = 2.0, normalize_images: bool = True,
                 spiking: SpikingConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor,
                         normalize_images=normalize_images, squash_output=True)
        if use_sde:
            raise ValueError("PopSpikingSACActor does not support use_sde=True (gSDE needs a latent feature layer)")
        self.use_sde = False
        action_dim = get_action_dim(action_space)
        self._init_snn(observation_space, action_space, net_arch, features_extractor, features_dim, spiking,
                       2 * action_dim, squash=False)
        self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def get_action_dist_params(self, obs: PyTorchObs, deterministic: bool = False
                               ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        mean_actions, log_std = self._spiking_output(obs, deterministic).chunk(2, dim=-1)
        return mean_actions, th.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX), {}

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        mean_actions, log_std, kwargs = self.get_action_dist_params(obs, deterministic)
        return self.action_dist.actions_from_params(mean_actions, log_std, deterministic=deterministic, **kwargs)

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        mean_actions, log_std, kwargs = self.get_action_dist_params(obs)
        return self.action_dist.log_prob_from_params(mean_actions, log_std, **kwargs)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


# ----------------------------------------------------------------------------------------------
# Optimizer with a per-group learning-rate scale that survives SB3's ``update_learning_rate``
# ----------------------------------------------------------------------------------------------

_LR_SCALED: dict[type[th.optim.Optimizer], type[th.optim.Optimizer]] = {}


def lr_scaled(optimizer_class: type[th.optim.Optimizer]) -> type[th.optim.Optimizer]:
    """Subclass of ``optimizer_class`` whose ``step`` uses ``lr * group["lr_scale"]``.

    ``group["lr"]`` keeps the unscaled value SB3 writes and logs; ``lr_scale`` (default 1, set
    through ``defaults["lr_scale"]`` or per group) travels with the optimizer's ``state_dict``.
    """
    if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, th.optim.Optimizer)):
        raise TypeError(f"optimizer_class must be a torch.optim.Optimizer subclass, got {optimizer_class!r}")
    if getattr(optimizer_class, "_snnrl_lr_scaled", False):
        return optimizer_class
    if optimizer_class not in _LR_SCALED:
        name = f"LRScaled{optimizer_class.__name__}"
        cls = type(name, (optimizer_class,), {"_snnrl_lr_scaled": True, "__module__": __name__, "__qualname__": name,
                                              "step": _make_step(optimizer_class)})
        _LR_SCALED[optimizer_class] = cls
        globals().setdefault(name, cls)  # picklable by reference
    return _LR_SCALED[optimizer_class]


def _make_step(parent: type[th.optim.Optimizer]) -> Any:
    """The ``step`` of ``lr_scaled(parent)``: ``parent.step`` (what ``super()`` gives in the
    generated class) with the scaled learning rates."""

    def step(self: th.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        base = [group["lr"] for group in self.param_groups]
        for group in self.param_groups:
            group["lr"] = group["lr"] * group.get("lr_scale", 1.0)
        try:
            return parent.step(self, *args, **kwargs)
        finally:
            for group, lr in zip(self.param_groups, base):
                group["lr"] = lr

    step.__doc__ = "Step with each group's ``lr`` multiplied by its ``lr_scale``."
    return step


def make_scaled_optimizer(optimizer_class: type[th.optim.Optimizer], params: Any, lr: float, lr_scale: float,
                          optimizer_kwargs: dict[str, Any] | None = None) -> th.optim.Optimizer:
    """``lr_scaled(optimizer_class)(params, lr=lr, **optimizer_kwargs)`` with every group's
    ``lr_scale`` set to ``lr_scale``."""
    # each optimizer class takes its own keywords (lr, betas, ...), which the base Optimizer signature lacks
    scaled: Callable[..., th.optim.Optimizer] = lr_scaled(optimizer_class)
    optimizer = scaled(params, lr=lr, **(optimizer_kwargs or {}))
    optimizer.defaults["lr_scale"] = lr_scale
    for group in optimizer.param_groups:
        group["lr_scale"] = lr_scale
    return optimizer


# ----------------------------------------------------------------------------------------------
# Policies
# ----------------------------------------------------------------------------------------------

class _PopSpikingPolicyMixin(SpikingPolicyMixin):
    """Validates the spiking kwargs (before ``super().__init__`` builds the actor) and swaps in the
    learning-rate-scaled actor optimizer."""

    spiking_family = "population"
    actor_kwargs: dict[str, Any]

    def _init_spiking(self, observation_space: spaces.Space, action_space: spaces.Space,
                      actor_lr_ratio: float | None, spiking: Mapping[str, Any]) -> None:
        _check_actor_spaces(type(self).__name__, observation_space, action_space)
        given = dict(spiking) if actor_lr_ratio is None else {**spiking, "actor_lr_ratio": actor_lr_ratio}
        extra = self._setup_spiking(given, {"actor_lr_ratio": 1.0})
        self.actor_lr_ratio = extra["actor_lr_ratio"] = check_real("actor_lr_ratio", extra["actor_lr_ratio"],
                                                                   low=1e-6, high=1e6)

    def _scale_actor_optimizer(self, actor: BasePolicy, lr_schedule: Schedule) -> None:
        """After ``_build``: the actor's optimizer scales its learning rate by actor_lr_ratio inside step()."""
        actor.optimizer = make_scaled_optimizer(self.optimizer_class, actor.parameters(), lr_schedule(1),
                                                self.actor_lr_ratio, self.optimizer_kwargs)

    def _actor_kwargs(self, features_extractor: BaseFeaturesExtractor | None) -> dict[str, Any]:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return {**kwargs, "spiking": self.spiking_config}


_POLICY_DOC = r"""
    Spiking-actor keyword arguments (JSON-plain, saved with the model; the vocabulary shared by
    every policy family, see :mod:`snnrl_sb3.config`):

    :param num_steps: simulation steps ``T`` per action (5)
    :param neuron: ``"current_lif"`` (Pop-SAN, default), ``"dynamic"`` (MDC-SAN), ``"ternary"``,
        ``"lif"``, ``"symmetric_ternary"``; ``neuron_kwargs`` its parameters (e.g. ``{"threshold": 0.5}``)
    :param surrogate: surrogate name or spec dict (``None``: the neuron's default, Pop-SAN's
        rectangular window of half-width 0.5 for ``current_lif``/``dynamic``), e.g.
        ``"triangular"`` (half-width 1), ``"trapezoid"`` (``w1=0.25, w2=0.75``); ``surrogate_kwargs``
        its parameters, e.g. ``{"w1": 0.2, "w2": 0.6}``
    :param encoder: ``"population"``; ``encoder_kwargs``: ``pop_dim`` (10 neurons per observation
        dimension), ``spikes`` (``"regular"``, deterministic, default; ``"bernoulli"``, with an
        optional ``seed`` kept in the state dict and ``deterministic_noise`` ``"frozen"``/``"fresh"``;
        or ``"analog"``, the Gaussian activations themselves as input currents, MDC-SAN's),
        ``mean_range`` (receptive-field mean range for
        every dimension; default: the observation bounds where finite, else ``(-3, 3)``), ``std``
        (initial receptive-field std; default ``sqrt(0.15) * range_width / 6``), ``threshold``
        (regular-spike threshold ``1 - eps``, 0.999)
    :param readout: ``"population"``; ``readout_kwargs={"pop_dim": 10}`` output neurons per action
    :param backend: ``"eager"`` or ``"compile"``
    :param actor_lr_ratio: actor learning rate / ``learning_rate`` (``None``: the preset's, else 1.0;
        Pop-SAN: 0.1 with ``learning_rate=1e-3``)
    :param preset: a published system by name (``"popsan"``, ``"mdcsan"``); every other kwarg given
        overrides the preset's
    """


class PopSpikingTD3Policy(_PopSpikingPolicyMixin, TD3Policy):
    __doc__ = r"""TD3/DDPG policy with a population-coded spiking actor (Pop-SAN) and SB3's deep critic.

    All ``TD3Policy`` arguments keep their meaning (``net_arch`` defaults to ``[256, 256]`` for
    both actor and critic, as in Pop-SAN).
    """ + _POLICY_DOC

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, n_critics: int = 2,
                 share_features_extractor: bool = False, actor_lr_ratio: float | None = None,
                 **spiking: Unpack[SpikingKwargs]) -> None:
        self._init_spiking(observation_space, action_space, actor_lr_ratio, spiking)
        super().__init__(observation_space, action_space, lr_schedule, [256, 256] if net_arch is None else net_arch,
                         activation_fn, features_extractor_class, features_extractor_kwargs, normalize_images,
                         optimizer_class, optimizer_kwargs, n_critics, share_features_extractor)

    def make_actor(  # type: ignore[override]
        self, features_extractor: BaseFeaturesExtractor | None = None
    ) -> PopSpikingActor:
        return PopSpikingActor(**self._actor_kwargs(features_extractor)).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._scale_actor_optimizer(self.actor, lr_schedule)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)


class PopSpikingSACPolicy(_PopSpikingPolicyMixin, SACPolicy):
    __doc__ = r"""SAC policy with a population-coded spiking actor (mean and log-std decoded from output
    populations) and SB3's deep critics; ``use_sde`` is not supported.
    """ + _POLICY_DOC

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 use_sde: bool = False, log_std_init: float = -3, use_expln: bool = False, clip_mean: float = 2.0,
                 features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, n_critics: int = 2,
                 share_features_extractor: bool = False, actor_lr_ratio: float | None = None,
                 **spiking: Unpack[SpikingKwargs]) -> None:
        if use_sde:
            raise ValueError("PopSpikingSACPolicy does not support use_sde=True")
        self._init_spiking(observation_space, action_space, actor_lr_ratio, spiking)
        super().__init__(observation_space, action_space, lr_schedule, [256, 256] if net_arch is None else net_arch,
                         activation_fn, use_sde, log_std_init, use_expln, clip_mean, features_extractor_class,
                         features_extractor_kwargs, normalize_images, optimizer_class, optimizer_kwargs, n_critics,
                         share_features_extractor)

    def make_actor(  # type: ignore[override]
        self, features_extractor: BaseFeaturesExtractor | None = None
    ) -> PopSpikingSACActor:
        return PopSpikingSACActor(**self._actor_kwargs(features_extractor)).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._scale_actor_optimizer(self.actor, lr_schedule)
