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

import json
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from snnrl_sb3._validation import check_bool, check_choice, check_int, check_real
from snnrl_sb3.body import MINATAR_CNN_ARCH, NATURE_CNN_ARCH, SpikingNetwork, spiking_conv_net, spiking_mlp
from snnrl_sb3.coding import ENCODERS, READOUTS, BernoulliEncoder, Readout, make_encoder
from snnrl_sb3.multistep import NEURONS, make_neuron
from snnrl_sb3.surrogate import make_surrogate

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
    "SPIKING_DEFAULTS",
]

BODIES = ("auto", "mlp", "nature_cnn", "small_cnn")
INITS = ("auto", "torch", "kaiming")

#: Defaults of the spiking keyword arguments (see :class:`SpikingQPolicy` for the reasons).
SPIKING_DEFAULTS: dict[str, Any] = {
    "num_steps": 8,
    "neuron": "ternary",
    "beta": None,  # neuron default: 0.9
    "threshold": None,  # neuron default: 1.0 (lif / ternary / symmetric_ternary), 0.5 (current_lif)
    "neg_threshold": None,  # ternary only; None: 2.0 (seed 000)
    "learn_neg_threshold": None,  # ternary only; None: True
    "surrogate": "atan",
    "surrogate_kwargs": None,
    "neuron_kwargs": None,
    "encoder": "direct",
    "encoder_kwargs": None,
    "decoder": "membrane_max",
    "decoder_beta": 0.9,
    "dueling": False,
    "body": "auto",
    "init": "auto",
}

#: The ternary neuron's initial negative threshold (seed 000's value; 1.0 solved 2/3 CartPole seeds, 2.0 every one).
TERNARY_NEG_THRESHOLD = 2.0


def _check_json_plain(name: str, value: Any) -> None:
    """Policy kwargs must survive ``model.save``/``load`` as JSON: no objects, no classes."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(
            f"policy kwarg {name} must be JSON-plain (strings, numbers, bools, lists and dicts of those) so that "
            f"save/load rebuilds it; got {value!r} ({type(value).__name__}). Pass names, e.g. surrogate='atan' "
            f"with surrogate_kwargs={{'alpha': 2.0}}"
        ) from None


def _optional_dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
    return dict(value)


def spiking_config(**kwargs: Any) -> dict[str, Any]:
    """Validate the spiking keyword arguments (unknown keys, names, ranges, JSON-plainness) and
    return them with defaults filled in. Raises ``TypeError``/``ValueError`` naming the problem."""
    unknown = sorted(set(kwargs) - set(SPIKING_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown spiking policy kwargs {unknown}; allowed: {sorted(SPIKING_DEFAULTS)}")
    cfg = {**SPIKING_DEFAULTS, **kwargs}
    for name, value in cfg.items():
        _check_json_plain(name, value)
    check_int("num_steps", cfg["num_steps"], low=1)
    check_choice("neuron", cfg["neuron"], NEURONS)
    check_choice("encoder", cfg["encoder"], ENCODERS)
    check_choice("decoder", cfg["decoder"], READOUTS)
    check_choice("body", cfg["body"], BODIES)
    check_choice("init", cfg["init"], INITS)
    check_real("decoder_beta", cfg["decoder_beta"], low=0.0, high=1.0)
    check_bool("dueling", cfg["dueling"])
    for name in ("surrogate_kwargs", "neuron_kwargs", "encoder_kwargs"):
        _optional_dict(name, cfg[name])
    if cfg["neuron"] != "ternary":
        for name in ("neg_threshold", "learn_neg_threshold"):
            if cfg[name] is not None:
                raise ValueError(f"{name} applies only to neuron='ternary', got neuron={cfg['neuron']!r}")
    if cfg["neuron"] == "current_lif" and cfg["beta"] is not None:
        raise ValueError("beta does not apply to neuron='current_lif' (it has current_decay and volt_decay: "
                         "pass them in neuron_kwargs)")
    make_surrogate(cfg["surrogate"], cfg["surrogate_kwargs"])  # unknown names/parameters raise here
    make_neuron(cfg["neuron"], **neuron_params(cfg))
    make_encoder(cfg["encoder"], **_optional_dict("encoder_kwargs", cfg["encoder_kwargs"]))
    return cfg


def neuron_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~snnrl_sb3.make_neuron` for a validated config."""
    params: dict[str, Any] = {"surrogate": cfg["surrogate"], "surrogate_kwargs": cfg["surrogate_kwargs"]}
    if cfg["beta"] is not None:
        params["beta"] = cfg["beta"]
    if cfg["threshold"] is not None:
        params["threshold"] = cfg["threshold"]
    if cfg["neuron"] == "ternary":
        params["neg_threshold"] = TERNARY_NEG_THRESHOLD if cfg["neg_threshold"] is None else cfg["neg_threshold"]
        if cfg["learn_neg_threshold"] is not None:
            params["learn_neg_threshold"] = cfg["learn_neg_threshold"]
    params.update(cfg["neuron_kwargs"] or {})
    return params


def resolve_body(observation_space: spaces.Space, body: str) -> str:
    """The body ``auto`` picks for an observation space; checks the space is supported."""
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)) or not isinstance(
            observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        raise TypeError(f"unsupported observation space {observation_space}: spiking Q-policies take Box, Discrete, "
                        "MultiDiscrete or MultiBinary observations (flatten Dict observations with "
                        "gymnasium.wrappers.FlattenObservation)")
    image_like = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3
    if body == "auto":
        if not image_like:
            return "mlp"
        if is_image_space(observation_space) and min(_image_shape(observation_space)[1:]) >= 36:
            return "nature_cnn"
        return "small_cnn"
    if body != "mlp" and not image_like:
        raise ValueError(f"body={body!r} needs 3-D Box (image) observations, got {observation_space}")
    return body


def _image_shape(space: spaces.Box) -> tuple[int, int, int]:
    """``(C, H, W)`` of a 3-D Box, channels-first or channels-last (smallest dim = channels)."""
    shape = tuple(int(s) for s in space.shape)
    if is_image_space_channels_first(space):
        return shape  # type: ignore[return-value]
    return (shape[2], shape[0], shape[1])


class ImageInput(BaseFeaturesExtractor):
    """Features extractor of the convolutional bodies: the preprocessed image as ``[B, C, H, W]``
    (channels-last observations, e.g. MinAtar's, are permuted). The convolutions are in the body."""

    def __init__(self, observation_space: spaces.Box) -> None:
        if not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3):
            raise TypeError(f"ImageInput needs a 3-D Box observation space, got {observation_space}")
        channels, height, width = _image_shape(observation_space)
        super().__init__(observation_space, channels * height * width)
        self.channels_last = not is_image_space_channels_first(observation_space)
        self.image_shape = (channels, height, width)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return observations.permute(0, 3, 1, 2) if self.channels_last else observations


class DuelingReadout(nn.Module):
    r"""Dueling read-out (Wang et al., 2016) on spike trains: two :class:`~snnrl_sb3.Readout` heads,
    :math:`Q = V + A - \mathrm{mean}_a A`, per quantile when ``n_quantiles > 1``.

    Output ``[B, n_quantiles * n_actions]`` (quantile-major, the layout SB3's quantile nets view)."""

    def __init__(self, in_features: int, n_actions: int, n_quantiles: int = 1, mode: str = "membrane_max",
                 beta: float = 0.9) -> None:
        super().__init__()
        self.n_actions, self.n_quantiles = n_actions, n_quantiles
        self.value = Readout(in_features, n_quantiles, mode, beta)
        self.advantage = Readout(in_features, n_quantiles * n_actions, mode, beta)

    def forward(self, spikes: th.Tensor) -> th.Tensor:
        value = self.value(spikes).unsqueeze(-1)  # [B, Nq, 1]
        adv = self.advantage(spikes).unflatten(-1, (self.n_quantiles, self.n_actions))
        return (value + adv - adv.mean(-1, keepdim=True)).flatten(1)


class _SpikingQMixin:
    """Shared construction and forward of the spiking Q and quantile networks."""

    spiking: dict[str, Any]
    q_net: SpikingNetwork

    def _build_spiking(self, features_dim: int, net_arch: list[int], n_quantiles: int, spiking: dict[str, Any]) -> None:
        self.spiking = dict(spiking)
        cfg = spiking_config(**spiking)
        n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
        encoder = make_encoder(cfg["encoder"], **_optional_dict("encoder_kwargs", cfg["encoder_kwargs"]))
        common = dict(num_steps=cfg["num_steps"], neuron=cfg["neuron"], neuron_kwargs=neuron_params(cfg),
                      readout=cfg["decoder"], readout_beta=cfg["decoder_beta"], encoder=encoder)
        extractor = self.features_extractor  # type: ignore[attr-defined]
        body = cfg["body"]
        if body == "mlp":
            net = spiking_mlp(features_dim, net_arch, None, **common)
        else:
            if not isinstance(extractor, ImageInput):
                raise TypeError(f"body={body!r} needs the ImageInput features extractor, got {type(extractor).__name__}")
            channels, height, width = extractor.image_shape
            conv_arch = NATURE_CNN_ARCH if body == "nature_cnn" else MINATAR_CNN_ARCH
            net = spiking_conv_net(channels, (height, width), conv_arch, net_arch, None, **common)
        init = cfg["init"]
        if init == "auto":
            init = "torch" if body == "mlp" else "kaiming"
        if init == "kaiming":
            _kaiming_init(net)
        width = net_arch[-1]
        if cfg["dueling"]:
            net.readout = DuelingReadout(width, n_actions, n_quantiles, cfg["decoder"], cfg["decoder_beta"])
        else:
            net.readout = Readout(width, n_actions * n_quantiles, cfg["decoder"], cfg["decoder_beta"])
        self.q_net = net
        if isinstance(encoder, BernoulliEncoder):
            # model.save/DQN.load rebuild the policy from the user's policy_kwargs (without the seed drawn at
            # construction): keep the seed in the state dict too (float64 holds any 31-bit int exactly)
            self.register_buffer("encoder_seed", th.tensor(float(encoder.seed), dtype=th.float64))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[misc]
        encoder = self.q_net.encoder
        if isinstance(encoder, BernoulliEncoder) and prefix + "encoder_seed" in state_dict:
            seed = int(abs(float(state_dict[prefix + "encoder_seed"]))) % (2**31 - 1)
            if seed != encoder.seed:
                encoder.seed = seed
                encoder._generators = {}  # rebuilt lazily from the new seed

    def _values(self, obs: PyTorchObs, deterministic: bool) -> th.Tensor:
        features = self.extract_features(obs, self.features_extractor)  # type: ignore[attr-defined]
        # one reduction on the fast path: NaN/inf propagate into the sum (the exact check runs only if it is not finite)
        if (features.is_floating_point() and not bool(th.isfinite(features.sum()))
                and not bool(th.isfinite(features).all())):
            raise ValueError("observation contains NaN or inf; spiking Q-networks need finite inputs "
                             "(check the environment, e.g. with stable_baselines3.common.vec_env.VecCheckNan)")
        return self.q_net(features, deterministic)


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


def _check_spaces(observation_space: spaces.Space, action_space: spaces.Space, body: str) -> str:
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"spiking Q-policies need a Discrete action space, got {action_space}")
    return resolve_body(observation_space, body)


def _default_net_arch(body: str) -> list[int]:
    return {"mlp": [64, 64], "nature_cnn": [512], "small_cnn": [128]}[body]


class SpikingQNetwork(_SpikingQMixin, QNetwork):
    """A ``QNetwork`` whose ``q_net`` is a :class:`~snnrl_sb3.SpikingNetwork` (body + read-out).

    ``forward(obs, deterministic=False)`` returns Q-values ``[B, A]``; ``_predict`` passes
    ``deterministic`` on, so stochastic encoders use frozen noise when acting greedily.
    ``spiking`` holds the spiking keyword arguments of :class:`SpikingQPolicy`.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 features_extractor: BaseFeaturesExtractor, features_dim: int, net_arch: list[int] | None = None,
                 activation_fn: type[nn.Module] = nn.ReLU, normalize_images: bool = True,
                 spiking: dict[str, Any] | None = None) -> None:
        # QNetwork.__init__ would build (and throw away) an ANN MLP: set its attributes directly.
        BasePolicy.__init__(self, observation_space, action_space, features_extractor=features_extractor,
                            normalize_images=normalize_images)
        spiking = dict(spiking or {})
        self.net_arch = list(net_arch) if net_arch is not None else _default_net_arch(spiking.get("body", "mlp"))
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self._build_spiking(features_dim, self.net_arch, 1, spiking)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:  # type: ignore[override]
        return self._values(obs, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation, deterministic).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["spiking"] = dict(self.spiking)
        return data


class SpikingQuantileNetwork(_SpikingQMixin, QuantileNetwork):
    """sb3-contrib's ``QuantileNetwork`` with a spiking body: quantiles ``[B, n_quantiles, A]``."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete,
                 features_extractor: BaseFeaturesExtractor, features_dim: int, n_quantiles: int = 200,
                 net_arch: list[int] | None = None, activation_fn: type[nn.Module] = nn.ReLU,
                 normalize_images: bool = True, spiking: dict[str, Any] | None = None) -> None:
        BasePolicy.__init__(self, observation_space, action_space, features_extractor=features_extractor,
                            normalize_images=normalize_images)
        spiking = dict(spiking or {})
        self.net_arch = list(net_arch) if net_arch is not None else _default_net_arch(spiking.get("body", "mlp"))
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self.n_quantiles = check_int("n_quantiles", n_quantiles, low=1)
        self._build_spiking(features_dim, self.net_arch, self.n_quantiles, spiking)

    @property
    def quantile_net(self) -> SpikingNetwork:  # SB3's attribute name for the network
        return self.q_net

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:  # type: ignore[override]
        return self._values(obs, deterministic).view(-1, self.n_quantiles, int(self.action_space.n))

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self(observation, deterministic).mean(dim=1).argmax(dim=1).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["spiking"] = dict(self.spiking)
        return data


_POLICY_DOC = r"""
    Spiking keyword arguments (all JSON-plain, saved with the model):

    :param num_steps: simulation steps ``T`` per forward (8: enough to learn CartPole and
        MinAtar at ~2x the ANN cost; seed 000 uses 20 on Atari)
    :param neuron: ``"ternary"`` (asymmetric ternary, the default), ``"lif"``,
        ``"symmetric_ternary"`` or ``"current_lif"``
    :param beta: membrane decay (``None``: 0.9)
    :param threshold: positive threshold :math:`\theta^+` (``None``: 1.0)
    :param neg_threshold: initial :math:`\theta^-` of the ternary neuron (``None``: 2.0, as seed 000)
    :param learn_neg_threshold: train :math:`\theta^-` (``None``: True)
    :param surrogate: surrogate gradient name (``"atan"``, ``"trapezoid"``, ...), with ``surrogate_kwargs``
    :param neuron_kwargs: further neuron parameters (e.g. ``current_decay`` of ``current_lif``)
    :param encoder: ``"direct"`` (the observation is the input current at every step) or
        ``"bernoulli"`` (rate coding of inputs in [0, 1]; frozen noise when acting
        deterministically); ``encoder_kwargs={"seed": ...}`` is drawn from torch's RNG if absent
    :param decoder: ``"membrane_max"`` (DSQN, default), ``"membrane_mean"``, ``"membrane_last"``
        or ``"spike_count"`` (seed 000)
    :param decoder_beta: leak of the non-spiking output integrator (membrane decoders)
    :param dueling: dueling read-out, :math:`Q = V + A - \bar A`
    :param body: ``"auto"``, ``"mlp"``, ``"nature_cnn"`` or ``"small_cnn"`` (MinAtar); ``net_arch``
        is the spiking fully connected widths (default ``[64, 64]``, ``[512]``, ``[128]`` resp.)
    :param init: weight init of the body's synaptic layers: ``"torch"`` (PyTorch default),
        ``"kaiming"`` (Kaiming-normal, zero bias) or ``"auto"`` (kaiming for the convolutional
        bodies, which are otherwise silent past the first layer; torch for the MLP)
    """


def _spiking_kwargs(local: dict[str, Any]) -> dict[str, Any]:
    return {name: local[name] for name in SPIKING_DEFAULTS}


class _SpikingPolicyMixin:
    """Resolves the spiking kwargs before the SB3 constructor builds the networks."""

    _spiking: dict[str, Any]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self._spiking)  # the spiking kwargs as given: what save/load passes back
        return data

    def _setup_spiking(self, observation_space: spaces.Space, action_space: spaces.Space, net_arch: Any,
                       features_extractor_class: Any, spiking: dict[str, Any]) -> tuple[list[int], type]:
        cfg = spiking_config(**spiking)
        body = _check_spaces(observation_space, action_space, cfg["body"])
        if cfg["encoder"] == "bernoulli":  # one seed for q_net and target, saved with the model
            encoder_kwargs = dict(cfg["encoder_kwargs"] or {})
            if "seed" not in encoder_kwargs:
                encoder_kwargs["seed"] = int(th.randint(0, 2**31 - 1, ()).item())
            spiking = {**spiking, "encoder_kwargs": encoder_kwargs}
        self._spiking = dict(spiking)  # as given (+ encoder seed): what save/load passes back
        self._spiking_net = {**spiking, "body": body}
        if net_arch is None:
            net_arch = _default_net_arch(body)
        if not isinstance(net_arch, (list, tuple)) or not net_arch:
            raise ValueError(f"net_arch must be a non-empty list of layer widths for a spiking Q-network, got {net_arch!r}")
        net_arch = [check_int(f"net_arch[{i}]", w, low=1) for i, w in enumerate(net_arch)]
        if features_extractor_class is None:
            features_extractor_class = FlattenExtractor if body == "mlp" else ImageInput
        elif body != "mlp" and not (isinstance(features_extractor_class, type)
                                    and issubclass(features_extractor_class, ImageInput)):
            raise ValueError(f"body={body!r} has its own convolutions: leave features_extractor_class unset "
                             "(or use body='mlp' on top of your own features extractor)")
        return net_arch, features_extractor_class


class SpikingQPolicy(_SpikingPolicyMixin, DQNPolicy):
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
                 optimizer_kwargs: dict[str, Any] | None = None, *,
                 num_steps: int = 8, neuron: str = "ternary", beta: float | None = None,
                 threshold: float | None = None, neg_threshold: float | None = None,
                 learn_neg_threshold: bool | None = None, surrogate: str = "atan",
                 surrogate_kwargs: dict[str, Any] | None = None, neuron_kwargs: dict[str, Any] | None = None,
                 encoder: str = "direct", encoder_kwargs: dict[str, Any] | None = None,
                 decoder: str = "membrane_max", decoder_beta: float = 0.9, dueling: bool = False,
                 body: str = "auto", init: str = "auto") -> None:
        net_arch, features_extractor_class = self._setup_spiking(
            observation_space, action_space, net_arch, features_extractor_class, _spiking_kwargs(locals()))
        super().__init__(observation_space, action_space, lr_schedule, net_arch, activation_fn,
                         features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
                         optimizer_kwargs)

    def make_q_net(self) -> SpikingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SpikingQNetwork(**net_args, spiking=self._spiking_net).to(self.device)


class SpikingCnnQPolicy(SpikingQPolicy):
    """:class:`SpikingQPolicy` with the spiking NatureCNN body (``body="nature_cnn"``) by default."""

    def __init__(self, *args: Any, body: str = "nature_cnn", **kwargs: Any) -> None:
        super().__init__(*args, body=body, **kwargs)


class SpikingQRDQNPolicy(_SpikingPolicyMixin, QRDQNPolicy):
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
                 optimizer_kwargs: dict[str, Any] | None = None, *,
                 num_steps: int = 8, neuron: str = "ternary", beta: float | None = None,
                 threshold: float | None = None, neg_threshold: float | None = None,
                 learn_neg_threshold: bool | None = None, surrogate: str = "atan",
                 surrogate_kwargs: dict[str, Any] | None = None, neuron_kwargs: dict[str, Any] | None = None,
                 encoder: str = "direct", encoder_kwargs: dict[str, Any] | None = None,
                 decoder: str = "membrane_max", decoder_beta: float = 0.9, dueling: bool = False,
                 body: str = "auto", init: str = "auto") -> None:
        net_arch, features_extractor_class = self._setup_spiking(
            observation_space, action_space, net_arch, features_extractor_class, _spiking_kwargs(locals()))
        super().__init__(observation_space, action_space, lr_schedule, n_quantiles, net_arch, activation_fn,
                         features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
                         optimizer_kwargs)

    def make_quantile_net(self) -> SpikingQuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return SpikingQuantileNetwork(**net_args, spiking=self._spiking_net).to(self.device)


class SpikingCnnQRDQNPolicy(SpikingQRDQNPolicy):
    """:class:`SpikingQRDQNPolicy` with the spiking NatureCNN body by default."""

    def __init__(self, *args: Any, body: str = "nature_cnn", **kwargs: Any) -> None:
        super().__init__(*args, body=body, **kwargs)

