r"""Spiking actor-critic policies for stock SB3 ``PPO`` and ``A2C`` and sb3-contrib ``MaskablePPO``.

.. code-block:: python

    from stable_baselines3 import PPO
    from snnrl_sb3 import SpikingActorCriticPolicy

    model = PPO(SpikingActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(neuron="lif"))
    model.learn(100_000)

Only the policy's feature-to-latent stage changes: ``_build_mlp_extractor`` builds a
:class:`SpikingActorCriticExtractor` (SB3's ``MlpExtractor`` interface) whose actor is a
:class:`~snnrl_sb3.body.SpikingNetwork`; SB3 then adds its own ``action_net`` (logits, or the
Gaussian mean with SB3's state-independent log-std, or gSDE's) and ``value_net`` on top, and the
algorithms, rollout buffers, advantages and losses are SB3's own. The actor is

    observation -> SB3 preprocessing -> encoder -> spiking body (T steps) -> read-out -> latent_pi
    -> SB3's action_net (a Linear) -> distribution parameters

and every call starts from zero state, so the policy is a Markov function of the observation.
The read-out is the spiking body's output layer; SB3's ``action_net`` is one host-side ``Linear``
on the read-out values (initialised with SB3's orthogonal gain 0.01 under ``ortho_init``, as for
the ANN policy), outside the :class:`~snnrl_sb3.body.SpikingNetwork`: the energy estimate and the
NIR export cover the spiking network, not this last ``Linear`` (``latent_dim_pi`` x actions MACs).

**The actor**, in the vocabulary of every policy family (:mod:`snnrl_sb3.config`):

* the Q-network vocabulary (default): ``encoder`` ``"direct"``/``"bernoulli"``, the spiking MLP
  (``net_arch["pi"]``, default ``[64, 64]``) or the convolutional bodies of
  :class:`~snnrl_sb3.SpikingQPolicy` (``body``), and a membrane / spike-count ``readout`` with
  ``net_arch["pi"][-1]`` outputs (``latent_dim_pi``);
* Pop-SAN's population coding for flat ``Box`` observations (``encoder="population"`` or
  ``preset="popsan"``/``"mdcsan"``): the population input, ``net_arch["pi"]`` hidden layers and one
  output population per distribution parameter (logits or means), decoded (without ``tanh``) into
  ``latent_dim_pi`` = that count.

**The critic** (``critic``): ``"mlp"`` (default, the hybrid Pop-SAN design) is SB3's deep MLP
(``net_arch["vf"]``, ``activation_fn``) for vector observations, and for the convolutional bodies
the same-shape ANN (ReLU convolutions and fully connected ``net_arch["vf"]``, SB3's ``CnnPolicy``
critic for ``body="nature_cnn"``); ``"spiking"`` is a second spiking network of the actor's kind on
``net_arch["vf"]``. ``share_features_extractor`` keeps SB3's meaning.

``use_sde=True`` (gSDE) is supported: the read-out values are the latent features of the
exploration noise, as the last hidden layer's are in SB3's ANN policy.

All new keyword arguments are JSON-plain and saved with the model, so ``PPO.load`` rebuilds the
same network in a fresh process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from typing_extensions import Unpack

from snnrl_sb3._policy import SpikingPolicyMixin, check_finite_input, check_spaces
from snnrl_sb3._validation import check_bool, check_choice, check_int, check_real
from snnrl_sb3.body import (
    MINATAR_CNN_ARCH,
    NATURE_CNN_ARCH,
    SpikingNetwork,
    ann_conv_net,
    spiking_conv_net,
    spiking_mlp,
)
from snnrl_sb3.coding import Readout, make_encoder
from snnrl_sb3.config import SpikingKwargs
from snnrl_sb3.dqn import INITS, ImageInput, _kaiming_init, resolve_body
from snnrl_sb3.presets import PRESETS
from snnrl_sb3.td3 import _bounds, make_scaled_optimizer, pop_spiking_network

__all__ = [
    "SpikingActorCriticPolicy",
    "SpikingCnnActorCriticPolicy",
    "SpikingMaskableActorCriticPolicy",
    "SpikingActorCriticExtractor",
    "CRITICS",
]

#: ``critic``: SB3's deep (ANN) critic, or a spiking one.
CRITICS = ("mlp", "spiking")
_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
_ACTION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
#: The policy's own keyword arguments (besides the spiking vocabulary and SB3's), with their defaults.
_EXTRA_DEFAULTS: dict[str, Any] = {"critic": "mlp", "body": "auto", "init": "auto", "bias": True,
                                   "image_scale": None, "actor_lr_ratio": 1.0}


class SpikingActorCriticExtractor(nn.Module):
    """SB3's ``MlpExtractor`` interface with a spiking actor: ``forward_actor`` runs
    :attr:`policy_net` (a :class:`~snnrl_sb3.body.SpikingNetwork`, body + read-out) and
    ``forward_critic`` runs :attr:`value_net` (an ANN or a second spiking network).

    :param latent_dim_pi: width of the actor's read-out (what SB3's ``action_net`` takes)
    :param latent_dim_vf: width of the critic's output (what SB3's ``value_net`` takes)
    """

    def __init__(self, policy_net: SpikingNetwork, value_net: nn.Module, latent_dim_pi: int,
                 latent_dim_vf: int) -> None:
        super().__init__()
        self.policy_net = policy_net
        self.value_net = value_net
        self.latent_dim_pi = int(latent_dim_pi)
        self.latent_dim_vf = int(latent_dim_vf)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor, deterministic: bool = False) -> th.Tensor:
        """Read-out values ``[B, latent_dim_pi]``; ``deterministic`` only matters for stochastic encoders."""
        check_finite_input(features)
        return self.policy_net(features, deterministic)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        check_finite_input(features)
        return self.value_net(features)


def _widths(name: str, value: Any, allow_empty: bool) -> list[int]:
    if not isinstance(value, (list, tuple)) or (not value and not allow_empty):
        need = "a list of layer widths" if allow_empty else "a non-empty list of layer widths (a spiking network)"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return [check_int(f"{name}[{i}]", w, low=1) for i, w in enumerate(value)]


def _default_widths(body: str) -> list[int]:
    return {"mlp": [64, 64], "nature_cnn": [512], "small_cnn": [128]}[body]


def _split_net_arch(net_arch: Any, body: str, critic: str) -> dict[str, list[int]]:
    """SB3's ``net_arch`` (a list for both networks, or ``dict(pi=..., vf=...)``) as a checked dict."""
    if net_arch is None:
        return {"pi": _default_widths(body), "vf": _default_widths(body)}
    if isinstance(net_arch, Mapping):
        unknown = sorted(set(net_arch) - {"pi", "vf"})
        if unknown:
            raise ValueError(f"net_arch has unknown keys {unknown}: it takes 'pi' (the spiking actor's widths) and "
                             "'vf' (the critic's)")
        pi, vf = net_arch.get("pi", []), net_arch.get("vf", [])
    else:
        pi = vf = net_arch
    return {"pi": _widths("net_arch['pi']" if isinstance(net_arch, Mapping) else "net_arch", pi, False),
            "vf": _widths("net_arch['vf']" if isinstance(net_arch, Mapping) else "net_arch", vf, critic == "mlp")}


def _action_params(action_space: spaces.Space) -> int:
    """How many values SB3's action distribution is parametrised by (logits, or means)."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return int(np.prod(action_space.shape or ()))


class _SpikingActorCriticMixin(SpikingPolicyMixin):
    """Resolves the spiking kwargs, the body and the critic before the SB3 constructor builds the networks,
    and builds the :class:`SpikingActorCriticExtractor` when SB3 asks for its ``mlp_extractor``."""

    #: the body when neither the kwargs nor a preset name one
    default_body: ClassVar[str] = "auto"
    _body: str
    _net_arch: dict[str, list[int]]

    # set by the SB3 constructor
    features_dim: int
    pi_features_extractor: BaseFeaturesExtractor
    vf_features_extractor: BaseFeaturesExtractor
    activation_fn: type[nn.Module]
    ortho_init: bool
    optimizer_class: type[th.optim.Optimizer]
    optimizer_kwargs: dict[str, Any]

    def _setup_actor_critic(self, observation_space: spaces.Space, action_space: spaces.Space, net_arch: Any,
                            features_extractor_class: Any, features_extractor_kwargs: dict[str, Any] | None,
                            normalize_images: bool, spiking: Mapping[str, Any], **options: Any
                            ) -> tuple[dict[str, list[int]], type[BaseFeaturesExtractor], dict[str, Any] | None,
                                       bool]:
        given = {**spiking, **{k: v for k, v in options.items() if v is not None}}
        # the family follows the input coding: Pop-SAN's population coding, or the Q-networks' vocabulary
        preset = given.get("preset")
        family = (PRESETS[preset].family if isinstance(preset, str) and preset in PRESETS
                  else "population" if given.get("encoder") == "population" else "q")
        extra = self._setup_spiking(given, {**_EXTRA_DEFAULTS, "body": self.default_body}, family=family)
        where = "" if self.spiking_preset is None else f"with preset={self.spiking_preset!r}: "
        try:
            check_choice("critic", extra["critic"], CRITICS)
            check_bool("bias", extra["bias"])
            check_choice("init", extra["init"], INITS)
            extra["actor_lr_ratio"] = check_real("actor_lr_ratio", extra["actor_lr_ratio"], low=1e-6, high=1e6)
            if family == "population":
                check_spaces(type(self).__name__, observation_space, action_space, observations=(spaces.Box,),
                             actions=_ACTION_SPACES, flat_box=True)
                if extra["body"] not in ("auto", "mlp"):
                    raise ValueError(f"body={extra['body']!r} does not take population coding, which encodes each "
                                     "dimension of a flat Box observation: use body='mlp' (or 'auto')")
                if not extra["bias"]:
                    raise ValueError("bias=False is not available with population coding (Pop-SAN's layers have "
                                     "biases)")
                self._body = "mlp"
            else:
                check_spaces(type(self).__name__, observation_space, action_space, observations=_OBSERVATION_SPACES,
                             actions=_ACTION_SPACES)
                self._body = resolve_body(observation_space, extra["body"])
            self._net_arch = _split_net_arch(net_arch, self._body, extra["critic"])
            if features_extractor_class is None:
                features_extractor_class = FlattenExtractor if self._body == "mlp" else ImageInput
            elif self._body != "mlp" and not (isinstance(features_extractor_class, type)
                                              and issubclass(features_extractor_class, ImageInput)):
                raise ValueError(f"body={self._body!r} has its own convolutions: leave features_extractor_class "
                                 "unset (or use body='mlp' on top of your own features extractor)")
            if extra["image_scale"] is not None:  # the body scales the raw pixels itself (DSQN: frame / 256)
                if self._body == "mlp":
                    raise ValueError("image_scale applies to the convolutional bodies (body='nature_cnn' or "
                                     "'small_cnn')")
                check_real("image_scale", extra["image_scale"], low=1e-6, high=1.0)
                features_extractor_kwargs = {**(features_extractor_kwargs or {}), "scale": extra["image_scale"]}
                normalize_images = False
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}{err}") from None
        return self._net_arch, features_extractor_class, features_extractor_kwargs, normalize_images

    # ---- the networks (SB3's _build calls _build_mlp_extractor, then adds action_net and value_net) ----

    def _spiking_net(self, widths: list[int], population_outputs: int) -> tuple[SpikingNetwork, int]:
        """A spiking network on the features and its output width."""
        cfg = self.spiking_config
        bias = bool(self._policy_kwargs_extra["bias"])
        if cfg.family == "population":
            low, high = _bounds(self.observation_space, self.pi_features_extractor, self.features_dim)
            net = pop_spiking_network(self.features_dim, population_outputs, widths, cfg, squash=False, low=low,
                                      high=high)
            return net, population_outputs
        encoder = make_encoder(cfg.encoder, **cfg.encoder_kwargs)
        if self._body == "mlp":
            net = spiking_mlp(self.features_dim, widths, None, num_steps=cfg.num_steps, neuron=cfg.make_neuron,
                              encoder=encoder, bias=bias)
        else:
            channels, height, width = self._image_shape()
            conv_arch = NATURE_CNN_ARCH if self._body == "nature_cnn" else MINATAR_CNN_ARCH
            net = spiking_conv_net(channels, (height, width), conv_arch, widths, None, num_steps=cfg.num_steps,
                                   neuron=cfg.make_neuron, encoder=encoder, bias=bias)
        net.readout = Readout(widths[-1], widths[-1], cfg.readout, cfg.readout_beta, bias=bias,
                              input_scale=cfg.readout_input_scale)
        return net, widths[-1]

    def _image_shape(self) -> tuple[int, int, int]:
        extractor = self.pi_features_extractor
        if not isinstance(extractor, ImageInput):
            raise TypeError(f"body={self._body!r} needs the ImageInput features extractor, "
                            f"got {type(extractor).__name__}")
        return extractor.image_shape

    def _ann_critic(self, widths: list[int]) -> tuple[nn.Module, int]:
        if self._body == "mlp":  # SB3's MlpExtractor value network
            layers: list[nn.Module] = []
            size = self.features_dim
            for hidden in widths:
                layers += [nn.Linear(size, hidden), self.activation_fn()]
                size = hidden
            return nn.Sequential(*layers), size
        conv_arch = NATURE_CNN_ARCH if self._body == "nature_cnn" else MINATAR_CNN_ARCH
        return ann_conv_net(self._image_shape(), conv_arch, widths)

    def _build_mlp_extractor(self) -> None:
        extra = self._policy_kwargs_extra
        policy_net, latent_pi = self._spiking_net(self._net_arch["pi"], _action_params(self.action_space))
        value_net: nn.Module
        if extra["critic"] == "spiking":
            value_net, latent_vf = self._spiking_net(self._net_arch["vf"], 1)
        else:
            value_net, latent_vf = self._ann_critic(self._net_arch["vf"])
        # registered by name: SB3's classes type their mlp_extractor as MlpExtractor, whose interface this has
        self.add_module("mlp_extractor",
                        SpikingActorCriticExtractor(policy_net, value_net, latent_pi, latent_vf).to(self.device))

    @property
    def _extractor(self) -> SpikingActorCriticExtractor:
        extractor = self._modules["mlp_extractor"]
        assert isinstance(extractor, SpikingActorCriticExtractor)
        return extractor

    def _finish_build(self, lr_schedule: Schedule) -> None:
        """After SB3's ``_build``: the body's ``init``, and the actor's learning-rate ratio."""
        extra = self._policy_kwargs_extra
        init = extra["init"]
        spiking = [m for m in self._extractor.modules() if isinstance(m, SpikingNetwork)]
        for net in spiking:
            if init == "kaiming" or (init == "auto" and not self.ortho_init and self._body != "mlp"):
                _kaiming_init(net)  # the convolutional bodies are silent past their first layer otherwise
            elif init == "torch":
                for layer in net.layers:
                    if isinstance(layer, (nn.Linear, nn.Conv2d)):
                        layer.reset_parameters()
        ratio = extra["actor_lr_ratio"]
        if ratio != 1.0:  # Pop-SAN: a slower actor; lr_scaled keeps the ratio through SB3's schedule updates
            actor = [*self._extractor.policy_net.parameters(), *self.action_net.parameters(),
                     *(p for name, p in self.named_parameters(recurse=False) if name == "log_std")]
            ids = {id(p) for p in actor}
            rest = [p for p in self.parameters() if id(p) not in ids]
            self.optimizer = make_scaled_optimizer(self.optimizer_class, [{"params": rest}], lr_schedule(1), 1.0,
                                                   self.optimizer_kwargs)
            self.optimizer.add_param_group({"params": actor, "lr_scale": ratio})

    # ---- acting: deterministic actions use the encoders' frozen noise (as the Q-policies do) ----

    def _actor_latent(self, observation: PyTorchObs, deterministic: bool) -> th.Tensor:
        """``latent_pi`` (the read-out values) of ``observation``, as ``get_distribution`` computes it."""
        features = BasePolicy.extract_features(self, observation, self.pi_features_extractor)
        return self._extractor.forward_actor(features, deterministic)

    # declared for type checking (an annotation only): the SB3 policy class it is mixed into defines it
    action_net: nn.Module


_POLICY_DOC = r"""
    The SB3 arguments keep their meaning, except ``net_arch`` (``[64, 64]``, a list for both networks or
    ``dict(pi=..., vf=...)``: ``pi`` the spiking actor's layer widths, ``vf`` the critic's) and
    ``activation_fn`` (the ANN critic's only: the neurons are the actor's non-linearity). ``ortho_init``
    initialises the spiking synapses too (orthogonal, gain sqrt(2): Kaiming-like firing), and SB3's
    ``action_net`` with gain 0.01.

    Spiking keyword arguments (JSON-plain, saved with the model; the vocabulary shared by every policy
    family, see :mod:`snnrl_sb3.config`):

    :param num_steps: simulation steps ``T`` per forward (8; 5 with population coding)
    :param neuron: ``"ternary"`` (asymmetric ternary, default), ``"lif"``, ``"symmetric_ternary"``,
        ``"current_lif"`` (default with population coding), ``"dynamic"``, ``"sj_lif"``; ``neuron_kwargs``
        its parameters
    :param surrogate: surrogate gradient name or spec dict (``None``: the neuron's default), with
        ``surrogate_kwargs``
    :param encoder: ``"direct"`` (default), ``"bernoulli"`` (inputs in [0, 1]; frozen noise when acting
        deterministically) or ``"population"`` (Pop-SAN, flat Box observations); ``encoder_kwargs`` as
        for :class:`~snnrl_sb3.SpikingQPolicy` / :class:`~snnrl_sb3.PopSpikingTD3Policy`
    :param readout: ``"membrane_max"`` (default), ``"membrane_mean"``, ``"membrane_last"``,
        ``"spike_count"``, ``"current_sum"``; ``"population"`` with population coding
        (``readout_kwargs={"pop_dim": 10}`` output neurons per distribution parameter)
    :param backend: ``"eager"`` or ``"compile"``
    :param critic: ``"mlp"`` (SB3's deep critic, default) or ``"spiking"``
    :param body: ``"auto"``, ``"mlp"``, ``"nature_cnn"`` or ``"small_cnn"`` (as
        :class:`~snnrl_sb3.SpikingQPolicy`; ``"mlp"`` with population coding)
    :param init: the spiking synapses' init: ``"auto"`` (SB3's ``ortho_init``; Kaiming for the
        convolutional bodies without it), ``"torch"`` (PyTorch's default) or ``"kaiming"``
    :param bias: whether the spiking synapses have biases (True)
    :param image_scale: convolutional bodies: scale raw pixels by this instead of SB3's division by 255
    :param actor_lr_ratio: the actor's learning rate / ``learning_rate`` (1.0; Pop-SAN's presets 0.1):
        the spiking actor and ``action_net`` (and ``log_std``) learn at the scaled rate
    :param preset: a published system by name (:data:`snnrl_sb3.presets.PRESETS`: the Q-network presets
        build the actor's body, neuron, coding and read-out, ``"popsan"``/``"mdcsan"`` a Pop-SAN actor);
        every other kwarg given overrides the preset's
    """


class SpikingActorCriticPolicy(_SpikingActorCriticMixin, ActorCriticPolicy):
    __doc__ = r"""``ActorCriticPolicy`` (PPO, A2C) with a spiking actor and SB3's deep critic (or a spiking one).

    ``PPO(SpikingActorCriticPolicy, env)``; ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` and ``Box``
    action spaces; ``use_sde`` supported. See :mod:`snnrl_sb3.actor_critic`.
    """ + _POLICY_DOC

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.Tanh,
                 ortho_init: bool = True, use_sde: bool = False, log_std_init: float = 0.0, full_std: bool = True,
                 use_expln: bool = False, squash_output: bool = False,
                 features_extractor_class: type[BaseFeaturesExtractor] | None = None,
                 features_extractor_kwargs: dict[str, Any] | None = None, share_features_extractor: bool = True,
                 normalize_images: bool = True, optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, *, critic: str | None = None,
                 body: str | None = None, init: str | None = None, bias: bool | None = None,
                 image_scale: float | None = None, actor_lr_ratio: float | None = None,
                 **spiking: Unpack[SpikingKwargs]) -> None:
        arch, features_extractor_class, features_extractor_kwargs, normalize_images = self._setup_actor_critic(
            observation_space, action_space, net_arch, features_extractor_class, features_extractor_kwargs,
            normalize_images, spiking, critic=critic, body=body, init=init, bias=bias, image_scale=image_scale,
            actor_lr_ratio=actor_lr_ratio)
        super().__init__(observation_space, action_space, lr_schedule, dict(arch), activation_fn, ortho_init,
                         use_sde, log_std_init, full_std, use_expln, squash_output, features_extractor_class,
                         features_extractor_kwargs, share_features_extractor, normalize_images, optimizer_class,
                         optimizer_kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._finish_build(lr_schedule)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        distribution = self._get_action_dist_from_latent(self._actor_latent(observation, deterministic))
        return distribution.get_actions(deterministic=deterministic)


class SpikingCnnActorCriticPolicy(SpikingActorCriticPolicy):
    """:class:`SpikingActorCriticPolicy` with the spiking NatureCNN body (``body="nature_cnn"``) by default."""

    default_body = "nature_cnn"


class SpikingMaskableActorCriticPolicy(_SpikingActorCriticMixin, MaskableActorCriticPolicy):
    __doc__ = r"""sb3-contrib ``MaskablePPO``'s policy with a spiking actor:
    ``MaskablePPO(SpikingMaskableActorCriticPolicy, env)``. Same keyword arguments as
    :class:`SpikingActorCriticPolicy` (no gSDE, which MaskablePPO lacks).
    """ + _POLICY_DOC

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.Tanh,
                 ortho_init: bool = True, features_extractor_class: type[BaseFeaturesExtractor] | None = None,
                 features_extractor_kwargs: dict[str, Any] | None = None, share_features_extractor: bool = True,
                 normalize_images: bool = True, optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, *, critic: str | None = None,
                 body: str | None = None, init: str | None = None, bias: bool | None = None,
                 image_scale: float | None = None, actor_lr_ratio: float | None = None,
                 **spiking: Unpack[SpikingKwargs]) -> None:
        arch, features_extractor_class, features_extractor_kwargs, normalize_images = self._setup_actor_critic(
            observation_space, action_space, net_arch, features_extractor_class, features_extractor_kwargs,
            normalize_images, spiking, critic=critic, body=body, init=init, bias=bias, image_scale=image_scale,
            actor_lr_ratio=actor_lr_ratio)
        if isinstance(action_space, spaces.Box):
            raise TypeError("SpikingMaskableActorCriticPolicy needs a Discrete, MultiDiscrete or MultiBinary action "
                            f"space (action masks select among discrete actions), got {action_space}")
        super().__init__(observation_space, action_space, lr_schedule, dict(arch), activation_fn, ortho_init,
                         features_extractor_class, features_extractor_kwargs, share_features_extractor,
                         normalize_images, optimizer_class, optimizer_kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self._finish_build(lr_schedule)

    def _predict(
        self, observation: PyTorchObs, deterministic: bool = False, action_masks: np.ndarray | None = None
    ) -> th.Tensor:
        distribution = self._get_action_dist_from_latent(self._actor_latent(observation, deterministic))
        if action_masks is not None:
            distribution.apply_masking(action_masks)
        return distribution.get_actions(deterministic=deterministic)
