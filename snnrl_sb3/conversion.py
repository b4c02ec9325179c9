r"""ANN -> SNN conversion of trained SB3 DQNs (seed 002; Rueckauer et al. 2017; Tan et al. 2021).

:func:`convert_dqn` takes a trained ``DQN`` with SB3's ``MlpPolicy`` or ``CnnPolicy`` (ReLU) and
returns a new ``DQN`` whose policy is a :class:`~snnrl_sb3.SpikingQPolicy` with the same
synaptic layers, ReLUs replaced by integrate-and-fire (or leaky) neurons with reset by
subtraction and threshold 1, ready for ``predict``, ``evaluate_policy``, ``save``/``load`` and
fine-tuning with ``learn``.

Weights are rescaled so that firing rates stay in [0, 1]:

* ``normalization="data"`` (default, Rueckauer et al.): :math:`\lambda_l` is the ``percentile``
  (99.9) of layer ``l``'s ReLU activations on calibration observations;
  :math:`W_l \leftarrow W_l \lambda_{l-1}/\lambda_l`, :math:`b_l \leftarrow b_l/\lambda_l`
  (:math:`\lambda_0 = 1`), and the output layer gets :math:`W_L \lambda_{L-1}` so Q keeps its scale;
* ``normalization="fixed"`` (seed 002): hidden layer ``l`` (1-based) is multiplied by
  ``fixed_scale ** l`` to make up for sparser spiking deeper in the network;
* ``normalization="none"``: weights as trained.

Q is read as the spike count plus the residual membrane of integrate-and-fire output neurons
(Tan et al. 2021), which for reset by subtraction is exactly the time-averaged output current,
:math:`Q = W_L \bar s + b_L` (``decoder="spike_count"``); membrane decoders are available too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from torch import nn

from snnrl_sb3._validation import check_choice, check_int, check_observations, check_real

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

__all__ = ["convert_dqn", "ann_layers", "collect_observations", "action_agreement"]

NORMALIZATIONS = ("data", "fixed", "none")
#: Settings of the DQN copied from the ANN model to the converted one (for fine-tuning).
_DQN_SETTINGS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                 "gradient_steps", "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                 "exploration_final_eps", "max_grad_norm")
#: Largest finite float32: converted weights must stay below it.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def ann_layers(model: DQN) -> list[nn.Module]:
    """The ANN Q-network of an SB3 ``DQN`` as one flat list of layers (features extractor
    included), checked to be convertible: Linear/Conv2d layers, each hidden one followed by a
    ReLU, the output layer linear, at least one hidden layer, finite parameters. Raises
    ``TypeError`` for a model that is not a ``DQN`` and ``ValueError`` naming the first offending
    layer."""
    from snnrl_sb3.dqn import SpikingQNetwork

    if not isinstance(model, DQN):
        raise TypeError(f"model must be a trained stable_baselines3 DQN (MlpPolicy or CnnPolicy), got "
                        f"{type(model).__name__}")
    q_net = getattr(model.policy, "q_net", None)
    if q_net is None:
        raise ValueError(f"convert_dqn needs a DQN model; {type(model).__name__} has no q_net")
    if isinstance(q_net, SpikingQNetwork):
        raise ValueError("the model's Q-network is already spiking")
    extractor = q_net.features_extractor
    layers: list[nn.Module] = []
    if isinstance(extractor, NatureCNN):
        layers += list(extractor.cnn) + list(extractor.linear)
    elif not isinstance(extractor, FlattenExtractor):
        raise ValueError(f"unsupported features extractor {type(extractor).__name__}: convert_dqn handles SB3's "
                         "FlattenExtractor (MlpPolicy) and NatureCNN (CnnPolicy)")
    layers += list(q_net.q_net)
    for i, layer in enumerate(layers):
        if not isinstance(layer, (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten)):
            kind = "activation" if not isinstance(layer, (nn.Linear, nn.Conv2d)) else "layer"
            raise ValueError(f"layer {i} ({type(layer).__name__}) cannot be converted: only Linear/Conv2d layers "
                             f"with ReLU activations are supported (unsupported {kind})")
    synapses = [i for i, layer in enumerate(layers) if isinstance(layer, (nn.Linear, nn.Conv2d))]
    if len(synapses) < 2:
        raise ValueError("the ANN has no hidden layer to convert (its net_arch is []): a spiking Q-network needs at "
                         "least one hidden layer of neurons; train the ANN with hidden layers, e.g. net_arch=[64, 64]")
    for i in synapses:
        if not all(bool(torch.isfinite(p).all()) for p in layers[i].parameters()):
            raise ValueError(f"layer {i} ({type(layers[i]).__name__}) of the ANN has NaN or inf parameters")
    for i in synapses[:-1]:
        if i + 1 >= len(layers) or not isinstance(layers[i + 1], nn.ReLU):
            raise ValueError(f"layer {i} ({type(layers[i]).__name__}) is not followed by a ReLU")
    if synapses[-1] != len(layers) - 1:
        raise ValueError(f"the output layer {synapses[-1]} must be the last layer (no activation after it)")
    return layers


def collect_observations(model: DQN, env: gym.Env | Any | None = None, n_steps: int = 2000,
                         seed: int = 0) -> np.ndarray:
    """Observations from the model's own greedy play (calibration data for :func:`convert_dqn`).

    :param model: any SB3 model (it picks the actions, ``deterministic=True``)
    :param env: a gymnasium ``Env`` or SB3 ``VecEnv``; the model's own env when omitted. It is
        seeded with ``seed``, reset and stepped: pass a separate env to leave the model's alone
    :param n_steps: number of observations, >= 1
    :param seed: seed of the env, >= 0
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"model must be an SB3 model (with predict()), got {type(model).__name__}")
    check_int("n_steps", n_steps, low=1)
    check_int("seed", seed, low=0)
    env = env if env is not None else model.get_env()
    if env is None:
        raise ValueError("no environment to collect calibration observations from: pass env= or observations=")
    if not isinstance(env, (gym.Env, VecEnv)):
        raise TypeError(f"env must be a gymnasium.Env or an SB3 VecEnv, got {type(env).__name__}")
    if not isinstance(env, VecEnv):
        single = env
        env = DummyVecEnv([lambda: single])
    env.seed(seed)
    obs = _array_observations(env.reset())
    collected: list[np.ndarray] = []
    while len(collected) * env.num_envs < n_steps:
        collected.append(obs)
        action, _ = model.predict(obs, deterministic=True)
        obs = _array_observations(env.step(action)[0])
    return np.concatenate(collected)[:n_steps]


def _array_observations(obs: VecEnvObs) -> np.ndarray:
    """A VecEnv's observations, refused unless one array (Dict/Tuple spaces cannot be stacked)."""
    if not isinstance(obs, np.ndarray):
        raise ValueError(f"collect_observations needs array observations, got {type(obs).__name__} (a Dict or "
                         "Tuple observation space)")
    return obs


def _layer_factors(layers: list[nn.Module], features: torch.Tensor, normalization: str, percentile: float,
                   fixed_scale: float, out_scale: float) -> list[tuple[float, float]]:
    """``(weight factor, bias factor)`` of every synaptic layer, output layer last."""
    n_hidden = sum(isinstance(layer, (nn.Linear, nn.Conv2d)) for layer in layers) - 1
    if normalization == "none":
        return [(1.0, 1.0)] * n_hidden + [(out_scale, out_scale)]
    if normalization == "fixed":  # seed 002: layer l (1-based) x fixed_scale**l
        return [(_power(fixed_scale, k),) * 2 for k in range(1, n_hidden + 1)] + [(out_scale, out_scale)]
    lambdas, h = [], features
    with torch.no_grad():
        for i, layer in enumerate(layers[:-1]):
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                value = float(np.percentile(h.flatten().cpu().numpy(), percentile))
                if not math.isfinite(value):  # activations overflowed float32
                    raise ValueError(f"the calibration observations drive the ANN's activations at layer {i} to "
                                     f"{value} (float32 overflow): pass observations of the scale the env produces")
                lambdas.append(value if value > 0 else 1.0)  # a silent layer: leave it unscaled
    previous = [1.0, *lambdas]
    return ([(previous[k] / lambdas[k], 1.0 / lambdas[k]) for k in range(n_hidden)]
            + [(previous[-1] * out_scale, out_scale)])


def _power(base: float, exponent: int) -> float:
    """``base ** exponent``, ``inf`` instead of an ``OverflowError`` (caught as non-finite weights)."""
    try:
        return base ** exponent
    except OverflowError:
        return math.inf


def _bias(layer: nn.Linear | nn.Conv2d) -> torch.Tensor:
    """A synaptic layer's bias (SB3's ``MlpPolicy``/``CnnPolicy`` layers and the spiking ones have one)."""
    if layer.bias is None:
        raise ValueError(f"a {type(layer).__name__} layer without a bias cannot be converted")
    return layer.bias


def _scaled_synapses(synapses: Sequence[nn.Linear | nn.Conv2d], factors: list[tuple[float, float]], normalization: str,
                     fixed_scale: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(weight, bias)`` of every synaptic layer after scaling, checked to be finite float32 with
    no non-zero weight flushed to zero (which would silently cut synapses)."""
    tiny = float(np.finfo(np.float32).tiny)
    scaled = []
    with torch.no_grad():
        for index, (source, (weight_factor, bias_factor)) in enumerate(zip(synapses, factors)):
            source_bias = _bias(source)
            weight, bias = source.weight * weight_factor, source_bias * bias_factor
            overflow = not (bool(torch.isfinite(weight).all()) and bool(torch.isfinite(bias).all()))
            underflow = bool(((source.weight != 0) & (weight == 0)).any() | ((source_bias != 0) & (bias == 0)).any())
            if not (overflow or underflow):
                scaled.append((weight, bias))
                continue
            problem = "overflows float32 (inf weights)" if overflow else "underflows float32 (weights flushed to 0)"
            if normalization == "fixed":
                # fixed_scale**k * |w| must stay in [tiny, max] for every non-zero w of every hidden layer k
                highs, lows = [], []
                for k, layer in enumerate(synapses[:-1], start=1):
                    values = torch.cat([layer.weight.flatten(), _bias(layer).flatten()]).abs()
                    values = values[values > 0]
                    if values.numel():
                        highs.append(math.exp((math.log(_FLOAT32_MAX) - math.log(values.max().item())) / k))
                        lows.append(math.exp((math.log(tiny) - math.log(values.min().item())) / k))
                raise ValueError(f"normalization='fixed' with fixed_scale={fixed_scale:g} multiplies hidden layer "
                                 f"{index + 1} by fixed_scale**{index + 1}, which {problem}: for this ANN "
                                 f"fixed_scale must be in ({max(lows):.4g}, {min(highs):.4g})")
            raise ValueError(f"normalization={normalization!r}: scaling synaptic layer {index} {problem}; the "
                             "calibration observations give a layer an activation percentile far from 1: pass "
                             "observations of the scale the env produces or change percentile")
    return scaled


def convert_dqn(model: DQN, *, observations: Any | None = None, env: Any | None = None, num_steps: int = 32,
                neuron: str = "if", beta: float = 1.0, normalization: str = "data", percentile: float = 99.9,
                fixed_scale: float = 10.0, encoder: str = "direct", decoder: str = "spike_count",
                n_calibration: int = 2000, seed: int | None = None) -> DQN:
    """Convert a trained ReLU ``DQN`` (``MlpPolicy``/``CnnPolicy``) into a spiking ``DQN``.

    :param observations: calibration observations (raw, as the env returns them); gathered from
        the ANN's own greedy play in ``env`` (or the model's env) when omitted
    :param num_steps: simulation steps ``T``
    :param neuron: ``"if"`` (integrate-and-fire) or ``"lif"`` (leaky, decay ``beta``)
    :param normalization: ``"data"`` (percentile-based), ``"fixed"`` (seed 002) or ``"none"``
    :param percentile: activation percentile of the data-based normalisation, in (0, 100]
    :param fixed_scale: per-layer factor of the fixed scaling (seed 002: 10), > 0 and small enough
        that ``fixed_scale ** l`` times hidden layer ``l``'s weights stays finite in float32
        (otherwise a ``ValueError`` gives the bound for this ANN)
    :param encoder: ``"direct"`` or ``"bernoulli"`` (rate/Poisson coding, inputs must be in [0, 1])
    :param decoder: ``"spike_count"`` (count + residual membrane) or ``"membrane_max"`` /
        ``"membrane_mean"`` / ``"membrane_last"`` (non-leaky integrator, scaled by 1/T)
    :param n_calibration: observations to collect when ``observations`` is omitted, >= 1
    :param seed: seed of the new ``DQN`` (``None`` or an int >= 0)
    :return: a new ``DQN`` with a :class:`~snnrl_sb3.SpikingQPolicy`; the ANN's parameters are
        untouched (collecting calibration data does step the ANN's env, see :func:`collect_observations`)
    :raises TypeError: for a model that is not a ``DQN`` or arguments of the wrong type
    :raises ValueError: for arguments out of range, empty or non-finite ``observations``, an ANN
        without hidden layers or converted weights that would not be finite
    """
    from snnrl_sb3.coding import READOUTS, Readout
    from snnrl_sb3.dqn import SpikingQPolicy

    layers = ann_layers(model)
    check_int("num_steps", num_steps, low=1)
    check_choice("neuron", neuron, ("if", "lif"))
    beta = check_real("beta", beta, low=0.0, high=1.0)
    if neuron == "if" and beta != 1.0:  # silently ignoring it would hand back a different neuron than asked for
        raise ValueError(f"beta={beta} needs neuron='lif': integrate-and-fire neurons (neuron='if') do not leak "
                         "(beta=1.0)")
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_real("percentile", percentile, low=0.0, high=100.0, low_inclusive=False)
    check_real("fixed_scale", fixed_scale, low=0.0, low_inclusive=False)
    check_choice("encoder", encoder, ("direct", "bernoulli"))
    check_choice("decoder", decoder, READOUTS)
    check_int("n_calibration", n_calibration, low=1)
    if seed is not None:
        check_int("seed", seed, low=0)
    if observations is None:
        observations = collect_observations(model, env, n_calibration)
    # a NaN would make every percentile NaN and silently turn data normalisation off
    check_observations("observations", observations)
    try:
        obs_tensor, _ = model.policy.obs_to_tensor(np.asarray(observations))
    except ValueError as error:
        raise ValueError(f"observations do not match the model's observation space: {error}") from None
    with torch.no_grad():
        features = model.policy.q_net.extract_features(obs_tensor, model.policy.q_net.features_extractor)
        if isinstance(model.policy.q_net.features_extractor, NatureCNN):  # preprocessed image, before the convs
            from stable_baselines3.common.preprocessing import preprocess_obs

            image = preprocess_obs(obs_tensor, model.observation_space, model.policy.normalize_images)
            assert isinstance(image, torch.Tensor)  # a NatureCNN's (Box) observations, not a Dict
            features = image
    if not bool(torch.isfinite(features).all()):  # e.g. float64 values beyond float32's range
        raise ValueError("observations overflow float32 after SB3's preprocessing (inf values): pass observations "
                         "of the scale the env produces")
    if encoder == "bernoulli" and (features.min() < 0 or features.max() > 1):
        raise ValueError("encoder='bernoulli' needs preprocessed observations in [0, 1] (e.g. images); these range "
                         f"over [{features.min().item():.3g}, {features.max().item():.3g}]: use encoder='direct'")
    out_scale = 1.0 if decoder == "spike_count" else 1.0 / num_steps
    factors = _layer_factors(layers, features, normalization, percentile, fixed_scale, out_scale)
    synapses = [layer for layer in layers if isinstance(layer, (nn.Linear, nn.Conv2d))]
    scaled = _scaled_synapses(synapses, factors, normalization, fixed_scale)

    is_cnn = isinstance(synapses[0], nn.Conv2d)
    hidden_linear = [layer.out_features for layer in synapses[:-1] if isinstance(layer, nn.Linear)]
    # threshold 1 and reset by subtraction (the lif neuron with beta=1 is integrate-and-fire); membrane
    # read-outs integrate without leak (beta=1), spike_count takes no read-out parameters
    policy_kwargs = dict(net_arch=hidden_linear, num_steps=num_steps, neuron="lif",
                         neuron_kwargs={"beta": beta, "threshold": 1.0}, encoder=encoder, readout=decoder,
                         readout_kwargs=None if decoder == "spike_count" else {"beta": 1.0},
                         body="nature_cnn" if is_cnn else "mlp")
    if is_cnn:
        policy_kwargs["normalize_images"] = model.policy.normalize_images
    settings = {name: copy.deepcopy(getattr(model, name)) for name in _DQN_SETTINGS if hasattr(model, name)}
    snn_model = DQN(SpikingQPolicy, _SpacesEnv(model.observation_space, model.action_space),
                    policy_kwargs=policy_kwargs, device=model.device, seed=seed, **settings)
    ann_env = model.get_env()
    if ann_env is not None:
        snn_model.set_env(ann_env)

    policy = snn_model.policy
    assert isinstance(policy, SpikingQPolicy)  # built as one above (SB3 types it DQNPolicy)
    for policy_net in (policy.q_net, policy.q_net_target):
        spiking = policy_net.q_net
        readout = spiking.readout
        targets = [m for m in spiking.layers if isinstance(m, (nn.Linear, nn.Conv2d))]
        targets += [readout.linear] if isinstance(readout, Readout) else []  # else: the check below refuses it
        if len(targets) != len(synapses) or any(t.weight.shape != s.weight.shape for t, s in zip(targets, synapses)):
            raise ValueError("the ANN architecture does not map onto a spiking NatureCNN/MLP body "
                             f"(ANN layers {[tuple(s.weight.shape) for s in synapses]})")
        with torch.no_grad():
            for target, (weight, bias) in zip(targets, scaled):
                target.weight.copy_(weight)
                _bias(target).copy_(bias)
    return snn_model


class _SpacesEnv(gym.Env):
    """Placeholder env carrying only the spaces, so a DQN can be built without the real env."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        raise RuntimeError("the converted model has no environment: call model.set_env(env) before learn()")


def action_agreement(model_a: Any, model_b: Any, observations: Any) -> float:
    """Fraction of observations on which two models choose the same greedy action.

    :raises ValueError: for empty (the fraction would be NaN) or non-finite ``observations``
    """
    check_observations("observations", observations)
    a, _ = model_a.predict(np.asarray(observations), deterministic=True)
    b, _ = model_b.predict(np.asarray(observations), deterministic=True)
    return float(np.mean(np.asarray(a) == np.asarray(b)))
