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

import copy
from typing import Any, Sequence

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

from snnrl_sb3._validation import check_choice, check_int, check_real
from snnrl_sb3.body import SpikingNetwork
import snnrl_sb3.dynamic  # noqa: F401  (registers the "dynamic" neuron kind)
from snnrl_sb3.multistep import NEURONS, MultiStepNeuron, make_neuron
from snnrl_sb3.population import ENCODINGS, PopulationDecoder, PopulationEncoder, PopulationInput, _check_range

__all__ = [
    "PopSpikingActor",
    "PopSpikingSACActor",
    "PopSpikingTD3Policy",
    "PopSpikingSACPolicy",
    "pop_spiking_network",
    "make_population_neuron",
    "lr_scaled",
    "make_scaled_optimizer",
    "neuron_kinds",
    "POPSAN_DEFAULTS",
]

#: Defaults of the spiking-actor keyword arguments (Pop-SAN's TD3 actor).
POPSAN_DEFAULTS: dict[str, Any] = dict(
    pop_dim=10,
    decoder_pop_dim=None,
    num_steps=5,
    neuron="current_lif",
    neuron_kwargs=None,
    surrogate="rectangular",
    surrogate_kwargs=None,
    encoding="regular",
    mean_range=None,
    std=None,
    encoder_threshold=0.999,
)

def neuron_kinds() -> list[str]:
    """Neuron kinds usable in the population actors (``NEURONS``, including MDC-SAN's ``"dynamic"``)."""
    return sorted(NEURONS)


def make_population_neuron(kind: str, neuron_kwargs: dict[str, Any] | None = None,
                           surrogate: Any = "rectangular", surrogate_kwargs: dict[str, Any] | None = None
                           ) -> MultiStepNeuron:
    """A hidden/output neuron layer of the population actor.

    ``kind``: ``"current_lif"`` (Pop-SAN), ``"dynamic"`` (MDC-SAN), ``"ternary"``, ``"lif"``,
    ``"symmetric_ternary"``; ``surrogate`` applies to every kind (give it here, not inside
    ``neuron_kwargs``).
    """
    check_choice("neuron", kind, neuron_kinds())
    if neuron_kwargs is not None and not isinstance(neuron_kwargs, dict):
        raise TypeError(f"neuron_kwargs must be a dict or None, got {type(neuron_kwargs).__name__}")
    params = dict(neuron_kwargs or {})
    for key in ("surrogate", "surrogate_kwargs"):
        if key in params:
            raise ValueError(f"give {key!r} as a policy keyword argument, not inside neuron_kwargs")
    if surrogate_kwargs is not None and not isinstance(surrogate_kwargs, dict):
        raise TypeError(f"surrogate_kwargs must be a dict or None, got {type(surrogate_kwargs).__name__}")
    params.update(surrogate=surrogate, surrogate_kwargs=surrogate_kwargs)
    return make_neuron(kind, **params)


def _check_spiking_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Validate (and copy to JSON-plain values) the spiking-actor keyword arguments."""
    unknown = set(kw) - set(POPSAN_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown spiking actor arguments {sorted(unknown)}; allowed: {sorted(POPSAN_DEFAULTS)}")
    out = dict(POPSAN_DEFAULTS)
    out.update(kw)
    out["pop_dim"] = check_int("pop_dim", out["pop_dim"], low=1)
    if out["decoder_pop_dim"] is not None:
        out["decoder_pop_dim"] = check_int("decoder_pop_dim", out["decoder_pop_dim"], low=1)
    out["num_steps"] = check_int("num_steps", out["num_steps"], low=1)
    check_choice("encoding", out["encoding"], ENCODINGS)
    if out["mean_range"] is not None:
        out["mean_range"] = list(_check_range("mean_range", out["mean_range"]))
    if out["std"] is not None:
        out["std"] = check_real("std", out["std"], low=0.0, low_inclusive=False)
    out["encoder_threshold"] = check_real("encoder_threshold", out["encoder_threshold"], low=0.0, high=1.0,
                                          low_inclusive=False)
    out["neuron_kwargs"] = copy.deepcopy(out["neuron_kwargs"])
    out["surrogate_kwargs"] = copy.deepcopy(out["surrogate_kwargs"])
    # build one neuron now: bad neuron/surrogate names or parameters fail here, clearly
    make_population_neuron(out["neuron"], out["neuron_kwargs"], out["surrogate"], out["surrogate_kwargs"])
    return out


def pop_spiking_network(obs_dim: int, out_dim: int, net_arch: Sequence[int], *, squash: bool = True,
                        low: Any = None, high: Any = None, pop_dim: int = 10, decoder_pop_dim: int | None = None,
                        num_steps: int = 5, neuron: str = "current_lif", neuron_kwargs: dict | None = None,
                        surrogate: Any = "rectangular", surrogate_kwargs: dict | None = None,
                        encoding: str = "regular", mean_range: Sequence[float] | None = None,
                        std: float | None = None, encoder_threshold: float = 0.999) -> SpikingNetwork:
    """Pop-SAN network ``[B, obs_dim] -> [B, out_dim]`` (see module docstring)."""
    dec_pop = pop_dim if decoder_pop_dim is None else decoder_pop_dim
    for i, hidden in enumerate(net_arch):
        check_int(f"net_arch[{i}]", hidden, low=1)
    widths = [*net_arch, out_dim * dec_pop]
    # the encoder carries the first synaptic layer (fused backward); then neuron, (Linear, neuron)*
    encoder = PopulationInput(PopulationEncoder(obs_dim, pop_dim, low, high, mean_range, std, encoding,
                                                encoder_threshold), widths[0])
    layers: list[nn.Module] = [make_population_neuron(neuron, neuron_kwargs, surrogate, surrogate_kwargs)]
    for width, nxt in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width, nxt), make_population_neuron(neuron, neuron_kwargs, surrogate, surrogate_kwargs)]
    return SpikingNetwork(layers, PopulationDecoder(out_dim, dec_pop, squash=squash), num_steps, encoder)


def _check_spaces(owner: str, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    if not isinstance(action_space, spaces.Box):
        raise TypeError(f"{owner} needs a continuous gymnasium.spaces.Box action space, "
                        f"got {type(action_space).__name__}")
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(f"{owner} needs a flat gymnasium.spaces.Box observation space, got "
                        f"{type(observation_space).__name__} (wrap the env in gymnasium.wrappers.FlattenObservation)")
    if len(observation_space.shape) != 1:
        raise ValueError(f"{owner} needs a flat (1-D) Box observation space, got shape {observation_space.shape} "
                         "(wrap the env in gymnasium.wrappers.FlattenObservation)")


def _bounds(observation_space: spaces.Space, features_extractor: nn.Module, features_dim: int) -> tuple[Any, Any]:
    """Observation bounds for the receptive fields, when the features are the raw observation."""
    if (isinstance(features_extractor, FlattenExtractor) and isinstance(observation_space, spaces.Box)
            and observation_space.shape == (features_dim,)):
        return observation_space.low, observation_space.high
    return None, None


class PopSpikingActor(BasePolicy):
    """Deterministic Pop-SAN actor for TD3/DDPG: actions in [-1, 1] (SB3 rescales them).

    ``forward(obs, deterministic=False)``; ``deterministic`` matters only for Bernoulli encoding.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, net_arch: list[int],
                 features_extractor: BaseFeaturesExtractor, features_dim: int, activation_fn: Any = None,
                 normalize_images: bool = True, **spiking: Any) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor,
                         normalize_images=normalize_images, squash_output=True)
        _check_spaces(type(self).__name__, observation_space, action_space)
        self.net_arch = list(net_arch)
        self.features_dim = features_dim
        self.spiking_kwargs = _check_spiking_kwargs(spiking)
        low, high = _bounds(observation_space, features_extractor, features_dim)
        self.snn = pop_spiking_network(features_dim, get_action_dim(action_space), self.net_arch, squash=True,
                                       low=low, high=high, **self.spiking_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, features_dim=self.features_dim, features_extractor=self.features_extractor,
                    **copy.deepcopy(self.spiking_kwargs))
        return data

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        return self.snn(features, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class PopSpikingSACActor(BasePolicy):
    """Stochastic Pop-SAN actor for SAC: ``2 * act_dim`` output populations decode the mean and
    the log-std of SAC's squashed Gaussian (log-std clamped to SB3's [-20, 2])."""

    action_space: spaces.Box

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, net_arch: list[int],
                 features_extractor: nn.Module, features_dim: int, activation_fn: Any = None,
                 use_sde: bool = False, log_std_init: float = -3, full_std: bool = True, use_expln: bool = False,
                 clip_mean: float = 2.0, normalize_images: bool = True, **spiking: Any) -> None:
        super().__init__(observation_space, action_space, features_extractor=features_extractor,
                         normalize_images=normalize_images, squash_output=True)
        _check_spaces(type(self).__name__, observation_space, action_space)
        if use_sde:
            raise ValueError("PopSpikingSACActor does not support use_sde=True (gSDE needs a latent feature layer)")
        self.use_sde = False
        self.net_arch = list(net_arch)
        self.features_dim = features_dim
        self.spiking_kwargs = _check_spiking_kwargs(spiking)
        action_dim = get_action_dim(action_space)
        low, high = _bounds(observation_space, features_extractor, features_dim)
        self.snn = pop_spiking_network(features_dim, 2 * action_dim, self.net_arch, squash=False, low=low, high=high,
                                       **self.spiking_kwargs)
        self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(net_arch=self.net_arch, features_dim=self.features_dim, features_extractor=self.features_extractor,
                    **copy.deepcopy(self.spiking_kwargs))
        return data

    def get_action_dist_params(self, obs: PyTorchObs, deterministic: bool = False
                               ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        features = self.extract_features(obs, self.features_extractor)
        mean_actions, log_std = self.snn(features, deterministic).chunk(2, dim=-1)
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

_LR_SCALED: dict[type, type] = {}


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
        cls = type(name, (optimizer_class,), {"_snnrl_lr_scaled": True, "__module__": __name__, "__qualname__": name})
        cls.step = _make_step(cls)  # type: ignore[method-assign]  # super() bound to this exact class
        _LR_SCALED[optimizer_class] = cls
        globals().setdefault(name, cls)  # picklable by reference
    return _LR_SCALED[optimizer_class]


def _make_step(cls: type) -> Any:
    def step(self: th.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        base = [group["lr"] for group in self.param_groups]
        for group in self.param_groups:
            group["lr"] = group["lr"] * group.get("lr_scale", 1.0)
        try:
            return super(cls, self).step(*args, **kwargs)
        finally:
            for group, lr in zip(self.param_groups, base):
                group["lr"] = lr

    step.__doc__ = "Step with each group's ``lr`` multiplied by its ``lr_scale``."
    return step


def make_scaled_optimizer(optimizer_class: type[th.optim.Optimizer], params: Any, lr: float, lr_scale: float,
                          optimizer_kwargs: dict[str, Any] | None = None) -> th.optim.Optimizer:
    """``lr_scaled(optimizer_class)(params, lr=lr, **optimizer_kwargs)`` with every group's
    ``lr_scale`` set to ``lr_scale``."""
    optimizer = lr_scaled(optimizer_class)(params, lr=lr, **(optimizer_kwargs or {}))
    optimizer.defaults["lr_scale"] = lr_scale
    for group in optimizer.param_groups:
        group["lr_scale"] = lr_scale
    return optimizer


# ----------------------------------------------------------------------------------------------
# Policies
# ----------------------------------------------------------------------------------------------

class _PopSpikingPolicyMixin:
    """Stores the spiking kwargs (before ``super().__init__`` builds the actor) and swaps in the
    learning-rate-scaled actor optimizer."""

    actor: BasePolicy
    optimizer_class: type[th.optim.Optimizer]
    optimizer_kwargs: dict[str, Any]

    def _init_spiking(self, observation_space: spaces.Space, action_space: spaces.Space, actor_lr_ratio: float,
                      spiking: dict[str, Any]) -> None:
        _check_spaces(type(self).__name__, observation_space, action_space)
        self.actor_lr_ratio = check_real("actor_lr_ratio", actor_lr_ratio, low=0.0, low_inclusive=False)
        self.spiking_kwargs = _check_spiking_kwargs(spiking)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        # the actor's optimizer scales its learning rate by actor_lr_ratio inside step()
        self.actor.optimizer = make_scaled_optimizer(self.optimizer_class, self.actor.parameters(), lr_schedule(1),
                                                     self.actor_lr_ratio, self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(actor_lr_ratio=self.actor_lr_ratio, **copy.deepcopy(self.spiking_kwargs))
        return data


class PopSpikingTD3Policy(_PopSpikingPolicyMixin, TD3Policy):
    """TD3/DDPG policy with a population-coded spiking actor (Pop-SAN) and SB3's deep critic.

    All ``TD3Policy`` arguments keep their meaning (``net_arch`` defaults to ``[256, 256]`` for
    both actor and critic, as in Pop-SAN). Spiking-actor arguments (JSON-plain):

    :param pop_dim: encoder neurons per observation dimension (10)
    :param decoder_pop_dim: output neurons per action dimension (``None``: ``pop_dim``)
    :param num_steps: simulation steps ``T`` per action (5)
    :param neuron: ``"current_lif"`` (Pop-SAN, default), ``"dynamic"`` (MDC-SAN), ``"ternary"``,
        ``"lif"``, ``"symmetric_ternary"``
    :param neuron_kwargs: constructor arguments of the neuron (e.g. ``{"threshold": 0.5}``)
    :param surrogate: surrogate name or spec dict: ``"rectangular"`` (Pop-SAN's, half-width 0.5,
        default), ``"triangular"`` (half-width 1), ``"trapezoid"`` (``w1=0.25, w2=0.75``), ...
    :param surrogate_kwargs: surrogate parameters, e.g. ``{"w1": 0.2, "w2": 0.6}``
    :param encoding: ``"regular"`` (deterministic, default) or ``"bernoulli"``
    :param mean_range: receptive-field mean range for every dimension (``None``: the
        observation bounds where finite, else ``(-3, 3)``)
    :param std: initial receptive-field std (``None``: ``sqrt(0.15) * range_width / 6``)
    :param encoder_threshold: regular-spike threshold ``1 - eps`` (0.999)
    :param actor_lr_ratio: actor learning rate / ``learning_rate`` (1.0; Pop-SAN: 0.1 with
        ``learning_rate=1e-3``)
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, n_critics: int = 2,
                 share_features_extractor: bool = False, actor_lr_ratio: float = 1.0, **spiking: Any) -> None:
        self._init_spiking(observation_space, action_space, actor_lr_ratio, spiking)
        super().__init__(observation_space, action_space, lr_schedule, [256, 256] if net_arch is None else net_arch,
                         activation_fn, features_extractor_class, features_extractor_kwargs, normalize_images,
                         optimizer_class, optimizer_kwargs, n_critics, share_features_extractor)

    def make_actor(  # type: ignore[override]
        self, features_extractor: BaseFeaturesExtractor | None = None
    ) -> PopSpikingActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return PopSpikingActor(**actor_kwargs, **self.spiking_kwargs).to(self.device)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)


class PopSpikingSACPolicy(_PopSpikingPolicyMixin, SACPolicy):
    """SAC policy with a population-coded spiking actor (mean and log-std decoded from output
    populations) and SB3's deep critics. Same spiking arguments as :class:`PopSpikingTD3Policy`;
    ``use_sde`` is not supported."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 use_sde: bool = False, log_std_init: float = -3, use_expln: bool = False, clip_mean: float = 2.0,
                 features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, n_critics: int = 2,
                 share_features_extractor: bool = False, actor_lr_ratio: float = 1.0, **spiking: Any) -> None:
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
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return PopSpikingSACActor(**actor_kwargs, **self.spiking_kwargs).to(self.device)
