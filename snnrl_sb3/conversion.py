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
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from torch import nn

from snnrl_sb3._validation import check_choice, check_int, check_real

__all__ = ["convert_dqn", "ann_layers", "collect_observations", "action_agreement"]

NORMALIZATIONS = ("data", "fixed", "none")
#: Settings of the DQN copied from the ANN model to the converted one (for fine-tuning).
_DQN_SETTINGS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                 "gradient_steps", "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                 "exploration_final_eps", "max_grad_norm")


def ann_layers(model: DQN) -> list[nn.Module]:
    """The ANN Q-network of an SB3 ``DQN`` as one flat list of layers (features extractor
    included), checked to be convertible: Linear/Conv2d layers, each hidden one followed by a
    ReLU, the output layer linear. Raises ``ValueError`` naming the first offending layer."""
    from snnrl_sb3.dqn import SpikingQNetwork

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
    for i in synapses[:-1]:
        if i + 1 >= len(layers) or not isinstance(layers[i + 1], nn.ReLU):
            raise ValueError(f"layer {i} ({type(layers[i]).__name__}) is not followed by a ReLU")
    if synapses[-1] != len(layers) - 1:
        raise ValueError(f"the output layer {synapses[-1]} must be the last layer (no activation after it)")
    return layers


def collect_observations(model: DQN, env: gym.Env | Any | None = None, n_steps: int = 2000,
                         seed: int = 0) -> np.ndarray:
    """Observations from the model's own greedy play (calibration data for :func:`convert_dqn`)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    env = env if env is not None else model.get_env()
    if env is None:
        raise ValueError("no environment to collect calibration observations from: pass env= or observations=")
    if not isinstance(env, VecEnv):
        env = DummyVecEnv([lambda: env])
    env.seed(seed)
    obs = env.reset()
    collected = []
    while len(collected) * env.num_envs < n_steps:
        collected.append(obs)
        action, _ = model.predict(obs, deterministic=True)
        obs, *_ = env.step(action)
    return np.concatenate(collected)[:n_steps]


def _layer_factors(layers: list[nn.Module], features: torch.Tensor, normalization: str, percentile: float,
                   fixed_scale: float, out_scale: float) -> list[tuple[float, float]]:
    """``(weight factor, bias factor)`` of every synaptic layer, output layer last."""
    n_hidden = sum(isinstance(layer, (nn.Linear, nn.Conv2d)) for layer in layers) - 1
    if normalization == "none":
        return [(1.0, 1.0)] * n_hidden + [(out_scale, out_scale)]
    if normalization == "fixed":  # seed 002: layer l (1-based) x fixed_scale**l
        return [(fixed_scale ** l, fixed_scale ** l) for l in range(1, n_hidden + 1)] + [(out_scale, out_scale)]
    lambdas, h = [], features
    with torch.no_grad():
        for layer in layers[:-1]:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                value = float(np.percentile(h.flatten().cpu().numpy(), percentile))
                lambdas.append(value if value > 0 else 1.0)  # a silent layer: leave it unscaled
    previous = [1.0] + lambdas
    return ([(previous[l] / lambdas[l], 1.0 / lambdas[l]) for l in range(n_hidden)]
            + [(previous[-1] * out_scale, out_scale)])


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
    :param fixed_scale: per-layer factor of the fixed scaling (seed 002: 10)
    :param encoder: ``"direct"`` or ``"bernoulli"`` (rate/Poisson coding, inputs must be in [0, 1])
    :param decoder: ``"spike_count"`` (count + residual membrane) or ``"membrane_max"`` /
        ``"membrane_mean"`` / ``"membrane_last"`` (non-leaky integrator, scaled by 1/T)
    :return: a new ``DQN`` with a :class:`~snnrl_sb3.SpikingQPolicy`; the ANN model is untouched
    """
    from snnrl_sb3.coding import READOUTS
    from snnrl_sb3.dqn import SpikingQPolicy

    check_int("num_steps", num_steps, low=1)
    check_choice("neuron", neuron, ("if", "lif"))
    beta = 1.0 if neuron == "if" else check_real("beta", beta, low=0.0, high=1.0)
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_real("percentile", percentile, low=0.0, high=100.0, low_inclusive=False)
    check_real("fixed_scale", fixed_scale, low=0.0, low_inclusive=False)
    check_choice("encoder", encoder, ("direct", "bernoulli"))
    check_choice("decoder", decoder, READOUTS)
    layers = ann_layers(model)
    if observations is None:
        observations = collect_observations(model, env, n_calibration)
    obs_tensor, _ = model.policy.obs_to_tensor(np.asarray(observations))
    with torch.no_grad():
        features = model.policy.q_net.extract_features(obs_tensor, model.policy.q_net.features_extractor)
        if isinstance(model.policy.q_net.features_extractor, NatureCNN):  # preprocessed image, before the convs
            from stable_baselines3.common.preprocessing import preprocess_obs

            features = preprocess_obs(obs_tensor, model.observation_space, model.policy.normalize_images)
    if encoder == "bernoulli" and (features.min() < 0 or features.max() > 1):
        raise ValueError("encoder='bernoulli' needs preprocessed observations in [0, 1] (e.g. images); these range "
                         f"over [{features.min().item():.3g}, {features.max().item():.3g}]: use encoder='direct'")
    out_scale = 1.0 if decoder == "spike_count" else 1.0 / num_steps
    factors = _layer_factors(layers, features, normalization, percentile, fixed_scale, out_scale)

    synapses = [layer for layer in layers if isinstance(layer, (nn.Linear, nn.Conv2d))]
    is_cnn = isinstance(synapses[0], nn.Conv2d)
    hidden_linear = [layer.out_features for layer in synapses[:-1] if isinstance(layer, nn.Linear)]
    policy_kwargs = dict(net_arch=hidden_linear, num_steps=num_steps, neuron="lif", beta=beta, threshold=1.0,
                         encoder=encoder, decoder=decoder, decoder_beta=1.0, body="nature_cnn" if is_cnn else "mlp")
    if is_cnn:
        policy_kwargs["normalize_images"] = model.policy.normalize_images
    settings = {name: copy.deepcopy(getattr(model, name)) for name in _DQN_SETTINGS if hasattr(model, name)}
    snn_model = DQN(SpikingQPolicy, _SpacesEnv(model.observation_space, model.action_space),
                    policy_kwargs=policy_kwargs, device=model.device, seed=seed, **settings)
    if model.get_env() is not None:
        snn_model.set_env(model.get_env())

    for policy_net in (snn_model.policy.q_net, snn_model.policy.q_net_target):
        spiking = policy_net.q_net
        targets = [m for m in spiking.layers if isinstance(m, (nn.Linear, nn.Conv2d))] + [spiking.readout.linear]
        if len(targets) != len(synapses) or any(t.weight.shape != s.weight.shape for t, s in zip(targets, synapses)):
            raise ValueError("the ANN architecture does not map onto a spiking NatureCNN/MLP body "
                             f"(ANN layers {[tuple(s.weight.shape) for s in synapses]})")
        with torch.no_grad():
            for target, source, (weight_factor, bias_factor) in zip(targets, synapses, factors):
                target.weight.copy_(source.weight * weight_factor)
                target.bias.copy_(source.bias * bias_factor)
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
    """Fraction of observations on which two models choose the same greedy action."""
    a, _ = model_a.predict(np.asarray(observations), deterministic=True)
    b, _ = model_b.predict(np.asarray(observations), deterministic=True)
    return float(np.mean(np.asarray(a) == np.asarray(b)))
