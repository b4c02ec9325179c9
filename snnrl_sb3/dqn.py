r"""Spiking Q-network policies for stock SB3 ``DQN`` and sb3-contrib ``QRDQN``.

.. code-block:: python

    from stable_baselines3 import DQN
    from snnrl_sb3 import SpikingQPolicy

    model = DQN(SpikingQPolicy, "CartPole-v1", policy_kwargs=dict(net_arch=[256, 256]))
    model.learn(50_000)

Only the Q-network changes: :class:`SpikingQPolicy` is a ``DQNPolicy`` whose ``make_q_net``
returns a :class:`SpikingQNetwork` (a ``QNetwork``); the algorithm, its replay buffer, target
updates and exploration are SB3's own. The Q-network is

    observation -> SB3 preprocessing -> encoder -> spiking body (T steps) -> read-out -> Q [B, A]

and every call starts from zero state, so it is a pure (Markov) function of the observation.

Bodies (``body="auto"`` picks from the observation space):

* ``mlp``: ``Linear -> neuron`` per entry of ``net_arch`` (default ``[64, 64]`` like SB3), for
  vector / discrete observations (flattened, one-hot as SB3 does);
* ``nature_cnn``: 3 conv (NatureCNN) + ``Linear -> neuron`` per ``net_arch`` (default
  ``[512]``), for SB3 image spaces (uint8 ``[0, 255]``, at least 36x36, normalised by SB3);
* ``small_cnn``: conv 16@3x3 + ``net_arch`` (default ``[128]``), the MinAtar DQN, for any other
  3-D ``Box`` (e.g. MinAtar's 10x10xC bool grids, channels-last is handled).

Defaults (measured with rl-zoo3's ANN DQN settings for CartPole-v1, only the policy changed,
``examples/dqn_cartpole.py``): the asymmetric ternary neuron (:math:`\theta^-` starting at
seed 000's 2, trainable), T = 8, atan surrogate, direct input coding and DSQN's membrane-max
read-out reach a greedy 10-episode mean >= 475 on every seed run (see the README table).

All new keyword arguments are JSON-plain (strings, numbers, lists, dicts) and saved with the
model, so ``DQN.load`` rebuilds the same network in a fresh process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn
from typing_extensions import Unpack

from snnrl_sb3._policy import SpikingPolicyMixin, check_finite_input, check_spaces
from snnrl_sb3._validation import InvalidStateDictError, check_bool, check_choice, check_int, check_real
from snnrl_sb3.body import (
    MINATAR_CNN_ARCH,
    NATURE_CNN_ARCH,
    SpikingNetwork,
    ann_conv_net,
    spiking_conv_net,
    spiking_mlp,
)
from snnrl_sb3.coding import Readout, make_encoder
from snnrl_sb3.config import SpikingConfig, SpikingKwargs

__all__ = [
    "SpikingQPolicy",
    "SpikingCnnQPolicy",
    "SpikingQRDQNPolicy",
    "SpikingCnnQRDQNPolicy",
    "SpikingQNetwork",
    "SpikingQuantileNetwork",
    "DuelingReadout",
    "ImageInput",
    "BODIES",
    "INITS",
]

BODIES = ("auto", "mlp", "nature_cnn", "small_cnn")
INITS = ("auto", "torch", "kaiming")
_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def resolve_body(observation_space: spaces.Space, body: str) -> str:
    """The body ``auto`` picks for an observation space; checks the body fits the space."""
    check_choice("body", body, BODIES)
    image: spaces.Box | None = None
    if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
        image = observation_space
    if body == "auto":
        if image is None:
            return "mlp"
        if is_image_space(image) and min(_image_shape(image)[1:]) >= 36:
            return "nature_cnn"
        return "small_cnn"
    if body != "mlp" and image is None:
        raise ValueError(f"body={body!r} needs 3-D Box (image) observations, got {observation_space}")
    return body


def _image_shape(space: spaces.Box) -> tuple[int, int, int]:
    """``(C, H, W)`` of a 3-D Box, channels-first or channels-last (smallest dim = channels)."""
    first, second, third = (int(s) for s in space.shape)
    if is_image_space_channels_first(space):
        return (first, second, third)
    return (third, first, second)


class ImageInput(BaseFeaturesExtractor):
    """Features extractor of the convolutional bodies: the preprocessed image as ``[B, C, H, W]``
    (channels-last observations, e.g. MinAtar's, are permuted). The convolutions are in the body.

    :param scale: multiply the observation by this (``None``: leave it as SB3 preprocessed it); the
        policies pass ``image_scale`` here and turn SB3's own division by 255 off
    """

    def __init__(self, observation_space: spaces.Box, scale: float | None = None) -> None:
        if not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3):
            raise TypeError(f"ImageInput needs a 3-D Box observation space, got {observation_space}")
        channels, height, width = _image_shape(observation_space)
        super().__init__(observation_space, channels * height * width)
        self.channels_last = not is_image_space_channels_first(observation_space)
        self.image_shape = (channels, height, width)
        self.scale = None if scale is None else check_real("image_scale", scale, low=1e-6, high=1.0)
        high = float(observation_space.high.max())
        if self.scale is not None and self.scale != 1.0 and high <= 1.0:
            # a pixel scale (DSQN's frame / 256) on grids already in [0, 1] (MinAtar's bool channels)
            # would shrink every input below any threshold: the network would never spike
            raise ValueError(f"image_scale={self.scale:g} is for raw 0-255 pixels, but this observation space "
                             f"({observation_space.dtype}, high {high:g}) is already within [0, 1]: pass "
                             f"image_scale=1.0 (e.g. preset='dsqn' on MinAtar)")

    def forward(self, observations: th.Tensor) -> th.Tensor:
        if self.scale is not None:
            observations = observations * self.scale
        return observations.permute(0, 3, 1, 2) if self.channels_last else observations


class MinAtarCNN(BaseFeaturesExtractor):
    """The ANN MinAtar DQN body (Young & Tian, 2019): conv 16@3x3 stride 1 -> ReLU -> FC
    ``features_dim`` -> ReLU, for the ANN baselines of the spiking ``small_cnn`` body
    (``DQN("MlpPolicy", env, policy_kwargs=dict(features_extractor_class=MinAtarCNN, net_arch=[]))``
    is the paper's network). Channels-last observations (MinAtar's 10x10xC grids) are permuted."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128) -> None:
        image = ImageInput(observation_space)
        (_, kernel, _), = MINATAR_CNN_ARCH
        if min(image.image_shape[1:]) < kernel:
            raise ValueError(f"MinAtarCNN needs images of at least {kernel}x{kernel}, got {image.image_shape[1:]}")
        super().__init__(observation_space, check_int("features_dim", features_dim, low=1))
        self.image = image
        self.net, _ = ann_conv_net(image.image_shape, MINATAR_CNN_ARCH, [features_dim])

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.net(self.image(observations.float()))


class DuelingReadout(nn.Module):
    r"""Dueling read-out (Wang et al., 2016) on spike trains: two :class:`~snnrl_sb3.Readout` heads,
    :math:`Q = V + A - \mathrm{mean}_a A`, per quantile when ``n_quantiles > 1``.

    Output ``[B, n_quantiles * n_actions]`` (quantile-major, the layout SB3's quantile nets view)."""

    def __init__(self, in_features: int, n_actions: int, n_quantiles: int = 1, mode: str = "membrane_max",
                 beta: float = 0.9, input_scale: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        self.n_actions, self.n_quantiles = n_actions, n_quantiles
        self.value = Readout(in_features, n_quantiles, mode, beta, bias=bias, input_scale=input_scale)
        self.advantage = Readout(in_features, n_quantiles * n_actions, mode, beta, bias=bias, input_scale=input_scale)

    def forward(self, spikes: th.Tensor) -> th.Tensor:
        value = self.value(spikes).unsqueeze(-1)  # [B, Nq, 1]
        adv = self.advantage(spikes).unflatten(-1, (self.n_quantiles, self.n_actions))
        return (value + adv - adv.mean(-1, keepdim=True)).flatten(1)


class _SpikingQMixin(BasePolicy):
    """Shared construction and forward of the spiking Q and quantile networks (a ``BasePolicy``
    for type checking only, like :class:`~snnrl_sb3._policy.SpikingPolicyMixin`)."""

    spiking_config: SpikingConfig
    q_net: SpikingNetwork
    features_extractor: BaseFeaturesExtractor
    action_space: spaces.Discrete

    def _init_spiking_q(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                        features_extractor: BaseFeaturesExtractor, features_dim: int, net_arch: list[int] | None,
                        activation_fn: type[nn.Module], normalize_images: bool, n_quantiles: int,
                        spiking: SpikingConfig | Mapping[str, Any] | None, body: str, dueling: bool,
                        init: str, bias: bool) -> None:
        # QNetwork.__init__ would build (and throw away) an ANN MLP: set its attributes directly
        BasePolicy.__init__(self, observation_space, action_space,
                            features_extractor=features_extractor, normalize_images=normalize_images)
        self.spiking_config = (spiking if isinstance(spiking, SpikingConfig)
                               else SpikingConfig.from_kwargs(spiking or {}))
        self.body = resolve_body(observation_space, body)
        self.dueling = check_bool("dueling", dueling)
        self.init = check_choice("init", init, INITS)
        self.bias = check_bool("bias", bias)
        self.net_arch = _check_net_arch(net_arch, self.body)
        self.activation_fn = activation_fn
        self.features_dim = int(features_dim)
        self.q_net = self._build_q_net(int(action_space.n), n_quantiles)
        # state dicts of version 0.1 kept the Bernoulli seed in a float64 "encoder_seed" buffer here
        self._register_load_state_dict_pre_hook(_upgrade_encoder_seed)

    def _build_q_net(self, n_actions: int, n_quantiles: int) -> SpikingNetwork:
        cfg = self.spiking_config
        encoder = make_encoder(cfg.encoder, **cfg.encoder_kwargs)
        if self.body == "mlp":
            net = spiking_mlp(self.features_dim, self.net_arch, None, num_steps=cfg.num_steps, neuron=cfg.make_neuron,
                              encoder=encoder, bias=self.bias)
        else:
            extractor = self.features_extractor
            if not isinstance(extractor, ImageInput):
                raise TypeError(f"body={self.body!r} needs the ImageInput features extractor, "
                                f"got {type(extractor).__name__}")
            channels, height, width = extractor.image_shape
            conv_arch = NATURE_CNN_ARCH if self.body == "nature_cnn" else MINATAR_CNN_ARCH
            net = spiking_conv_net(channels, (height, width), conv_arch, self.net_arch, None, num_steps=cfg.num_steps,
                                   neuron=cfg.make_neuron, encoder=encoder, bias=self.bias)
        if (self.init == "auto" and self.body != "mlp") or self.init == "kaiming":
            _kaiming_init(net)
        width, mode, beta, scale = self.net_arch[-1], cfg.readout, cfg.readout_beta, cfg.readout_input_scale
        net.readout = (DuelingReadout(width, n_actions, n_quantiles, mode, beta, input_scale=scale, bias=self.bias)
                       if self.dueling else
                       Readout(width, n_actions * n_quantiles, mode, beta, bias=self.bias, input_scale=scale))
        return net

    def _values(self, obs: PyTorchObs, deterministic: bool) -> th.Tensor:
        features = self.extract_features(obs, self.features_extractor)
        check_finite_input(features)
        return self.q_net(features, deterministic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(spiking=self.spiking_config.to_kwargs(), body=self.body, dueling=self.dueling, init=self.init,
                    bias=self.bias)
        return data


def _upgrade_encoder_seed(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Read a version-0.1 state dict: its float64 ``encoder_seed`` becomes the encoder's int64 seed."""
    old = state_dict.pop(prefix + "encoder_seed", None)
    if old is None:
        return
    value = float(old)
    if not (value.is_integer() and 0 <= value < 2**31):
        raise InvalidStateDictError(f"state dict entry {prefix + 'encoder_seed'!r} must be an integer seed in "
                                    f"[0, 2**31), got {value!r}: the saved model is corrupted")
    state_dict.setdefault(prefix + "q_net.encoder.noise_seed", th.tensor(int(value), dtype=th.int64))


def _kaiming_init(net: SpikingNetwork) -> None:
    """Kaiming-normal weights (fan-in, ReLU gain) and zero biases for the synaptic layers of the body.

    With PyTorch's default init (uniform, std 1/sqrt(3 fan_in)) the spiking NatureCNN is silent past
    its first layer at T = 8 and T = 20 on Breakout frames (firing rates 3%, 0.5%, 0%, 0%), and the
    MinAtar body's FC layer fires 0.4%: the surrogate gradient then has almost nothing to flow
    through. Kaiming-normal gives 10-30% in every layer."""
    for layer in net.layers:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _default_net_arch(body: str) -> list[int]:
    return {"mlp": [64, 64], "nature_cnn": [512], "small_cnn": [128]}[body]


def _check_net_arch(net_arch: Any, body: str) -> list[int]:
    if net_arch is None:
        return _default_net_arch(body)
    if not isinstance(net_arch, (list, tuple)) or not net_arch:
        raise ValueError(f"net_arch must be a non-empty list of layer widths for a spiking Q-network, got {net_arch!r}")
    return [check_int(f"net_arch[{i}]", w, low=1) for i, w in enumerate(net_arch)]


class SpikingQNetwork(_SpikingQMixin, QNetwork):
    """A ``QNetwork`` whose ``q_net`` is a :class:`~snnrl_sb3.SpikingNetwork` (body + read-out).

    ``forward(obs, deterministic=False)`` returns Q-values ``[B, A]``; ``_predict`` passes
    ``deterministic`` on, so stochastic encoders use frozen noise when acting greedily.
    ``spiking`` is the policy's :class:`~snnrl_sb3.config.SpikingConfig` (or its kwargs).
    """

    q_net: SpikingNetwork  # type: ignore[assignment]  # SB3's QNetwork declares an nn.Sequential

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 features_extractor: BaseFeaturesExtractor, features_dim: int, net_arch: list[int] | None = None,
                 activation_fn: type[nn.Module] = nn.ReLU, normalize_images: bool = True,
                 spiking: SpikingConfig | Mapping[str, Any] | None = None, body: str = "mlp", dueling: bool = False,
                 init: str = "auto", bias: bool = True) -> None:
        self._init_spiking_q(observation_space, action_space, features_extractor, features_dim, net_arch,
                             activation_fn, normalize_images, 1, spiking, body, dueling, init, bias)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._values(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation, deterministic).argmax(dim=1).reshape(-1)


class SpikingQuantileNetwork(_SpikingQMixin, QuantileNetwork):
    """sb3-contrib's ``QuantileNetwork`` with a spiking body: quantiles ``[B, n_quantiles, A]``."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 features_extractor: BaseFeaturesExtractor, features_dim: int, n_quantiles: int = 200,
                 net_arch: list[int] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 normalize_images: bool = True, spiking: SpikingConfig | Mapping[str, Any] | None = None,
                 body: str = "mlp", dueling: bool = False, init: str = "auto", bias: bool = True) -> None:
        self.n_quantiles = check_int("n_quantiles", n_quantiles, low=1)
        self._init_spiking_q(observation_space, action_space, features_extractor, features_dim, net_arch,
                             activation_fn, normalize_images, self.n_quantiles, spiking, body, dueling, init, bias)

    @property
    def quantile_net(self) -> SpikingNetwork:  # type: ignore[override]  # sb3-contrib's attribute (an nn.Sequential)
        return self.q_net

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._values(obs, deterministic).view(-1, self.n_quantiles, int(self.action_space.n))

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation, deterministic).mean(dim=1).argmax(dim=1).reshape(-1)


_POLICY_DOC = r"""
    Spiking keyword arguments (JSON-plain, saved with the model; the vocabulary shared by every
    policy family, see :mod:`snnrl_sb3.config`):

    :param num_steps: simulation steps ``T`` per forward (8: enough to learn CartPole and
        MinAtar at ~2x the ANN cost; seed 000 uses 20 on Atari)
    :param neuron: ``"ternary"`` (asymmetric ternary, the default), ``"lif"``,
        ``"symmetric_ternary"``, ``"current_lif"`` or ``"dynamic"``
    :param neuron_kwargs: the neuron's parameters, e.g. ``{"beta": 0.9, "threshold": 1.0,
        "neg_threshold": 2.0, "learn_neg_threshold": True}`` (the ternary defaults; seed 000's
        initial :math:`	heta^-` is 2)
    :param surrogate: surrogate gradient name (``"atan"``, the default of the leaky kinds,
        ``"trapezoid"``, ...), with ``surrogate_kwargs``
    :param encoder: ``"direct"`` (the observation is the input current at every step) or
        ``"bernoulli"`` (rate coding of inputs in [0, 1]; frozen noise when acting
        deterministically); ``encoder_kwargs={"seed": ...}`` is drawn from torch's RNG if absent and
        kept in the state dict
    :param readout: ``"membrane_max"`` (DSQN, default), ``"membrane_mean"``, ``"membrane_last"``
        or ``"spike_count"`` (seed 000); ``readout_kwargs={"beta": 0.9}`` is the leak of the
        non-spiking output integrator of the membrane read-outs
    :param backend: ``"eager"`` (hand-written kernels) or ``"compile"`` (``torch.compile``)
    :param dueling: dueling read-out, :math:`Q = V + A - ar A`
    :param body: ``"auto"``, ``"mlp"``, ``"nature_cnn"`` or ``"small_cnn"`` (MinAtar); ``net_arch``
        is the spiking fully connected widths (default ``[64, 64]``, ``[512]``, ``[128]`` resp.)
    :param init: weight init of the body's synaptic layers: ``"torch"`` (PyTorch default),
        ``"kaiming"`` (Kaiming-normal, zero bias) or ``"auto"`` (kaiming for the convolutional
        bodies, which are otherwise silent past the first layer; torch for the MLP)
    :param bias: whether the synapses have biases (True; ``False`` is DSQN's paper, whose code keeps them)
    :param image_scale: convolutional bodies: scale raw pixels by this instead of SB3's division by 255
        (``None``; DSQN's code feeds frame / 256)
    :param preset: a published system by name (:data:`snnrl_sb3.presets.PRESETS`: ``"datsqn"``,
        ``"dtsqn"``, ``"dsqn_binary"``, ``"dsqn"``); every other kwarg given overrides the preset's
    """


class _SpikingQPolicyMixin(SpikingPolicyMixin):
    """Resolves the spiking kwargs and the body before the SB3 constructor builds the networks."""

    spiking_family = "q"

    #: the body when neither the kwargs nor a preset name one
    default_body: ClassVar[str] = "auto"

    def _setup_q(self, observation_space: spaces.Space, action_space: spaces.Space, net_arch: Any,
                 features_extractor_class: Any, features_extractor_kwargs: dict[str, Any] | None,
                 normalize_images: bool, spiking: Mapping[str, Any], **options: Any
                 ) -> tuple[list[int], type[BaseFeaturesExtractor], dict[str, Any] | None, bool]:
        given = {**spiking, **{k: v for k, v in options.items() if v is not None}}
        extra = self._setup_spiking(given, {"body": self.default_body, "dueling": False, "init": "auto",
                                            "bias": True, "image_scale": None})
        check_bool("dueling", extra["dueling"])
        check_bool("bias", extra["bias"])
        check_choice("init", extra["init"], INITS)
        check_spaces(type(self).__name__, observation_space, action_space, observations=_OBSERVATION_SPACES,
                     actions=(spaces.Discrete,))
        self._body = resolve_body(observation_space, extra["body"])
        net_arch = _check_net_arch(net_arch, self._body)
        if features_extractor_class is None:
            features_extractor_class = FlattenExtractor if self._body == "mlp" else ImageInput
        elif self._body != "mlp" and not (isinstance(features_extractor_class, type)
                                          and issubclass(features_extractor_class, ImageInput)):
            raise ValueError(f"body={self._body!r} has its own convolutions: leave features_extractor_class unset "
                             "(or use body='mlp' on top of your own features extractor)")
        if extra["image_scale"] is not None:  # the body scales the raw pixels itself (DSQN: frame / 256, exact)
            if self._body == "mlp":
                raise ValueError("image_scale applies to the convolutional bodies (body='nature_cnn' or 'small_cnn')")
            check_real("image_scale", extra["image_scale"], low=1e-6, high=1.0)
            features_extractor_kwargs = {**(features_extractor_kwargs or {}), "scale": extra["image_scale"]}
            normalize_images = False
        return net_arch, features_extractor_class, features_extractor_kwargs, normalize_images

    def _q_net_kwargs(self) -> dict[str, Any]:
        extra = self._policy_kwargs_extra
        return dict(spiking=self.spiking_config, body=self._body, dueling=extra["dueling"], init=extra["init"],
                    bias=extra["bias"])


class SpikingQPolicy(_SpikingQPolicyMixin, DQNPolicy):
    __doc__ = r"""DQN policy with a spiking Q-network (:class:`SpikingQNetwork`) and its target copy.

    Use it with stock SB3: ``DQN(SpikingQPolicy, env, policy_kwargs=dict(num_steps=8))``. The
    SB3 arguments keep their meaning except ``activation_fn`` (unused: the neurons are the
    non-linearity) and ``net_arch`` (the spiking layer widths). Vector observations get a
    spiking MLP, images a spiking NatureCNN, other 3-D grids (MinAtar) the MinAtar CNN.
    """ + _POLICY_DOC

    q_net: SpikingQNetwork
    q_net_target: SpikingQNetwork

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule,
                 net_arch: list[int] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 features_extractor_class: type[BaseFeaturesExtractor] | None = None,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, *, dueling: bool | None = None,
                 body: str | None = None, init: str | None = None, bias: bool | None = None,
                 image_scale: float | None = None, **spiking: Unpack[SpikingKwargs]) -> None:
        net_arch, features_extractor_class, features_extractor_kwargs, normalize_images = self._setup_q(
            observation_space, action_space, net_arch, features_extractor_class, features_extractor_kwargs,
            normalize_images, spiking, body=body, dueling=dueling, init=init, bias=bias, image_scale=image_scale)
        super().__init__(observation_space, action_space, lr_schedule, net_arch, activation_fn,
                         features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
                         optimizer_kwargs)

    def make_q_net(self) -> SpikingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SpikingQNetwork(**net_args, **self._q_net_kwargs()).to(self.device)


class SpikingCnnQPolicy(SpikingQPolicy):
    """:class:`SpikingQPolicy` with the spiking NatureCNN body (``body="nature_cnn"``) by default."""

    default_body = "nature_cnn"


class SpikingQRDQNPolicy(_SpikingQPolicyMixin, QRDQNPolicy):
    __doc__ = r"""QR-DQN policy (sb3-contrib ``QRDQN``) with a spiking quantile network
    (:class:`SpikingQuantileNetwork`): ``QRDQN(SpikingQRDQNPolicy, env)``. Same keyword
    arguments as :class:`SpikingQPolicy`, plus SB3's ``n_quantiles``.
    """ + _POLICY_DOC

    quantile_net: SpikingQuantileNetwork
    quantile_net_target: SpikingQuantileNetwork

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule: Schedule,
                 n_quantiles: int = 200, net_arch: list[int] | None = None,
                 activation_fn: type[nn.Module] = nn.ReLU,
                 features_extractor_class: type[BaseFeaturesExtractor] | None = None,
                 features_extractor_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, *, dueling: bool | None = None,
                 body: str | None = None, init: str | None = None, bias: bool | None = None,
                 image_scale: float | None = None, **spiking: Unpack[SpikingKwargs]) -> None:
        net_arch, features_extractor_class, features_extractor_kwargs, normalize_images = self._setup_q(
            observation_space, action_space, net_arch, features_extractor_class, features_extractor_kwargs,
            normalize_images, spiking, body=body, dueling=dueling, init=init, bias=bias, image_scale=image_scale)
        super().__init__(observation_space, action_space, lr_schedule, n_quantiles, net_arch, activation_fn,
                         features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
                         optimizer_kwargs)

    def make_quantile_net(self) -> SpikingQuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SpikingQuantileNetwork(**net_args, **self._q_net_kwargs()).to(self.device)


class SpikingCnnQRDQNPolicy(SpikingQRDQNPolicy):
    """:class:`SpikingQRDQNPolicy` with the spiking NatureCNN body by default."""

    default_body = "nature_cnn"
