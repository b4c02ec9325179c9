r"""ANN -> SNN conversion of trained SB3 DQNs (Rueckauer et al. 2017; Tan et al. 2021; seed 002).

:func:`convert_dqn` takes a trained ``DQN`` with SB3's ``MlpPolicy`` or ``CnnPolicy`` (ReLU) and
returns a new ``DQN`` whose policy is a :class:`~snnrl_sb3.SpikingQPolicy` with the same
synaptic layers, ReLUs replaced by integrate-and-fire (or leaky) neurons with reset by
subtraction and threshold 1, ready for ``predict``, ``evaluate_policy``, ``save``/``load`` and
fine-tuning with ``learn``.

Weights are rescaled so that firing rates stay in [0, 1]:

* ``normalization="data"`` (default, Rueckauer et al.): :math:`\lambda_l` is the ``percentile``
  (99.9) of layer ``l``'s ReLU activations on calibration observations;
  :math:`W_l \leftarrow W_l \lambda_{l-1}/\lambda_l`, :math:`b_l \leftarrow b_l/\lambda_l`
  (:math:`\lambda_0 = 1`), and the output layer gets :math:`W_L \lambda_{L-1}` so Q keeps its
  scale, or, with ``normalize_output=True`` (Tan et al.), :math:`W_L \lambda_{L-1}/\lambda_L`,
  :math:`b_L/\lambda_L` with :math:`\lambda_L` the percentile of the ANN's Q-values;
* ``normalization="fixed"`` (seed 002): hidden layer ``l`` (1-based) is multiplied by
  ``fixed_scale ** l`` to make up for sparser spiking deeper in the network;
* ``normalization="none"``: weights as trained.

By default Q is the time-averaged output current :math:`Q = W_L \bar s + b_L`
(``readout="spike_count"``), which is the spike count plus the residual membrane of
integrate-and-fire output neurons with reset by subtraction, divided by T. ``method="tan2021"``
and ``method="seed002"`` select the published conversions exactly (see :data:`METHODS` and
:func:`convert_dqn`).
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.torch_layers import FlattenExtractor, NatureCNN
from torch import nn

from snnrl_sb3._validation import check_bool, check_choice, check_int, check_observations, check_real
from snnrl_sb3.body import SpikingNetwork
from snnrl_sb3.coding import Readout
from snnrl_sb3.dqn import SpikingQNetwork, SpikingQPolicy
from snnrl_sb3.kernels import MultiStepNeuron

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

__all__ = ["convert_dqn", "ann_layers", "collect_observations", "action_agreement", "ConvertedQPolicy", "METHODS",
           "READOUTS", "DECODERS"]

NORMALIZATIONS = ("data", "fixed", "none")
#: ``readout`` values: the policy read-outs, and ``"output_spikes"`` (spiking output neurons, Q = their count)
READOUTS = ("spike_count", "current_sum", "membrane_max", "membrane_mean", "membrane_last", "output_spikes")
DECODERS = READOUTS  # the name of version 0.1
#: The published conversions ``convert_dqn(method=...)`` reproduces: the settings each one fixes
#: (every other argument, e.g. ``num_steps``, ``percentile``, ``beta``, stays free).
METHODS: dict[str, dict[str, Any]] = {
    # Tan et al. 2021 (AAAI), github.com/WeihaoTan/bindsnet-1: bindsnet/conversion/conversion.py and
    # game_model_episode_time_seed_percentile.py
    "tan2021": dict(normalization="data", normalize_output=True, neuron="if", encoder="direct",
                    readout="current_sum", layer_delay=True, calibration_epsilon=0.05),
    # seed 002 (BCS Spikeverse, IIT Kanpur 2025), section 7.3: Poisson input, layer l x 10**l, LIF neurons,
    # the action of the output neuron with the most spikes
    "seed002": dict(normalization="fixed", fixed_scale=10.0, neuron="lif", encoder="bernoulli",
                    readout="output_spikes", normalize_output=False, layer_delay=False),
}
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
                         seed: int = 0, epsilon: float = 0.0) -> np.ndarray:
    """Observations from the model's own play (calibration data for :func:`convert_dqn`).

    :param model: any SB3 model (it picks the actions, ``deterministic=True``)
    :param env: a gymnasium ``Env`` or SB3 ``VecEnv``; the model's own env when omitted. It is
        seeded with ``seed``, reset and stepped: pass a separate env to leave the model's alone
    :param n_steps: number of observations, >= 1
    :param seed: seed of the env, of its action space and of the exploration draws, >= 0
    :param epsilon: epsilon-greedy play: at each step, each env takes a uniformly random action
        with probability ``epsilon`` (which may be the greedy one: the greedy action's probability
        is ``1 - epsilon + epsilon / n_actions``, as in Tan et al.'s ``policy()``, who collect
        with ``epsilon=0.05``); 0 (default): greedy play. In [0, 1]
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"model must be an SB3 model (with predict()), got {type(model).__name__}")
    check_int("n_steps", n_steps, low=1)
    check_int("seed", seed, low=0)
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0)
    env = env if env is not None else model.get_env()
    if env is None:
        raise ValueError("no environment to collect calibration observations from: pass env= or observations=")
    if not isinstance(env, (gym.Env, VecEnv)):
        raise TypeError(f"env must be a gymnasium.Env or an SB3 VecEnv, got {type(env).__name__}")
    if not isinstance(env, VecEnv):
        single = env
        env = DummyVecEnv([lambda: single])
    env.seed(seed)
    coins = np.random.default_rng(seed)
    if epsilon > 0:
        env.action_space.seed(seed)
    obs = _array_observations(env.reset())
    collected: list[np.ndarray] = []
    while len(collected) * env.num_envs < n_steps:
        collected.append(obs)
        action, _ = model.predict(obs, deterministic=True)
        if epsilon > 0:
            action = np.array(action, copy=True)
            for i in np.flatnonzero(coins.random(env.num_envs) < epsilon):
                action[i] = env.action_space.sample()
        obs = _array_observations(env.step(action)[0])
    return np.concatenate(collected)[:n_steps]


def _array_observations(obs: VecEnvObs) -> np.ndarray:
    """A VecEnv's observations, refused unless one array (Dict/Tuple spaces cannot be stacked)."""
    if not isinstance(obs, np.ndarray):
        raise ValueError(f"collect_observations needs array observations, got {type(obs).__name__} (a Dict or "
                         "Tuple observation space)")
    return obs


def _layer_factors(layers: list[nn.Module], features: torch.Tensor, normalization: str, percentile: float,
                   fixed_scale: float, out_scale: float, normalize_output: bool) -> list[tuple[float, float, float]]:
    """``(weight factor, bias factor, bias divisor)`` of every synaptic layer, output layer last:
    the converted layer has ``W * weight_factor`` and ``b * bias_factor / bias_divisor``.

    Data normalisation divides (rather than multiplies by a reciprocal) so that the converted
    biases are the bit-exact ``b / lambda`` of Tan et al.'s ``data_based_normalization``."""
    n_hidden = sum(isinstance(layer, (nn.Linear, nn.Conv2d)) for layer in layers) - 1
    if normalization == "none":
        return [(1.0, 1.0, 1.0)] * n_hidden + [(out_scale, out_scale, 1.0)]
    if normalization == "fixed":  # seed 002: layer l (1-based) x fixed_scale**l
        return ([(_power(fixed_scale, k), _power(fixed_scale, k), 1.0) for k in range(1, n_hidden + 1)]
                + [(out_scale, out_scale, 1.0)])
    lambdas, h = [], features
    with torch.no_grad():
        for i, layer in enumerate(layers):
            h = layer(h)
            last = i == len(layers) - 1
            if isinstance(layer, nn.ReLU) or (last and normalize_output):
                value = float(np.percentile(h.flatten().cpu().numpy(), percentile))
                if not math.isfinite(value):  # activations overflowed float32
                    raise ValueError(f"the calibration observations drive the ANN's activations at layer {i} to "
                                     f"{value} (float32 overflow): pass observations of the scale the env produces")
                if last:
                    if value <= 0:  # Tan et al.'s code would divide by it: Q's order reversed (or inf)
                        raise ValueError(f"normalize_output=True divides the output layer by the {percentile:g}th "
                                         f"percentile of the ANN's Q-values on the calibration observations, which "
                                         f"is {value:.4g} <= 0: that would reverse (or break) the order of the "
                                         "actions; use normalize_output=False")
                    lambdas.append(value)
                else:
                    lambdas.append(value if value > 0 else 1.0)  # a silent layer: leave it unscaled
    out_lambda = lambdas.pop() if normalize_output else 1.0
    previous = [1.0, *lambdas]
    return ([(previous[k] / lambdas[k], 1.0, lambdas[k]) for k in range(n_hidden)]
            + [(previous[-1] / out_lambda * out_scale, out_scale, out_lambda)])


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


def _scaled_synapses(synapses: Sequence[nn.Linear | nn.Conv2d], factors: list[tuple[float, float, float]],
                     normalization: str, fixed_scale: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(weight, bias)`` of every synaptic layer after scaling, checked to be finite float32 with
    no non-zero weight flushed to zero (which would silently cut synapses)."""
    tiny = float(np.finfo(np.float32).tiny)
    scaled = []
    with torch.no_grad():
        for index, (source, (weight_factor, bias_factor, bias_divisor)) in enumerate(zip(synapses, factors)):
            source_bias = _bias(source)
            weight, bias = source.weight * weight_factor, source_bias * bias_factor
            if bias_divisor != 1.0:
                bias = bias / bias_divisor
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


def _apply_method(method: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """The arguments with ``method``'s settings filled in; an argument given with a non-default
    value other than the method's is refused (never silently overridden)."""
    if method is None:
        return given
    check_choice("method", method, METHODS)
    defaults = {name: p.default for name, p in inspect.signature(convert_dqn).parameters.items()}
    out = dict(given)
    for name, value in METHODS[method].items():
        if given[name] != defaults[name] and given[name] != value:
            raise ValueError(f"method={method!r} sets {name}={value!r}, got {name}={given[name]!r}: drop {name} or "
                             "method (see convert_dqn's docstring for what each method sets)")
        out[name] = value
    return out


def convert_dqn(model: DQN, *, method: str | None = None, observations: Any | None = None, env: Any | None = None,
                num_steps: int = 32, neuron: str = "if", beta: float = 1.0, normalization: str = "data",
                percentile: float = 99.9, normalize_output: bool = False, fixed_scale: float = 10.0,
                encoder: str = "direct", readout: str = "spike_count", layer_delay: bool = False,
                n_calibration: int = 2000, calibration_epsilon: float = 0.0, seed: int | None = None,
                decoder: str | None = None) -> DQN:
    r"""Convert a trained ReLU ``DQN`` (``MlpPolicy``/``CnnPolicy``) into a spiking ``DQN``.

    Neurons are integrate-and-fire (``neuron="if"``) or leaky (``"lif"``, decay ``beta``), with
    threshold 1, reset by subtraction, no refractory period and zero initial state per
    observation. Every synaptic layer adds its bias at every step.

    **The published methods** (``method=``) fix these settings; everything else (``num_steps``,
    ``percentile``, ``beta``, ``n_calibration``) stays free, and an argument given with a
    non-default value other than the method's is an error.

    ``method="tan2021"``, Tan et al. 2021 (AAAI), ``github.com/WeihaoTan/bindsnet-1``
    (``bindsnet/conversion/conversion.py``, ``game_model_episode_time_seed_percentile.py``):

    * ``normalization="data"``: :math:`\lambda_l` is the ``percentile`` (theirs: 99.9 by default,
      99.0 in their README's example) of each layer's activations on the calibration data, one
      value per layer over all samples and units; :math:`W_l \lambda_{l-1}/\lambda_l`,
      :math:`b_l/\lambda_l`, the input layer unscaled;
    * ``normalize_output=True``: the output layer is divided by :math:`\lambda_L` too (the
      percentile of the ANN's Q-values), which keeps the argmax but not Q's reward units;
    * ``neuron="if"``: bindsnet's ``SubtractiveResetIFNodes`` with thresh 1, reset 0, refrac 0;
    * ``encoder="direct"``: the preprocessed observation is the input layer's value every step;
    * ``readout="current_sum"``: :math:`Q = \sum_t I_t`, which *is* their Q, the output IF
      neurons' spike count + final membrane (reset by subtraction, threshold 1, no lower bound:
      :math:`v_T = \sum_t I_t - n_{spikes}`);
    * ``layer_delay=True``: bindsnet's synchronous ``Network.run`` (their script's): every layer
      sees its input layer's output of the previous step, so with L synaptic layers the output
      sees the observation from step L on (and the biases from step 0);
    * ``calibration_epsilon=0.05``: calibration data from the ANN's own epsilon-greedy play.

    Theirs but the caller's: T (``--time``, e.g. 500 on Atari), their 15,000 Atari frames
    (``n_calibration``; theirs come from whole games only), and acting epsilon-greedily
    (epsilon = 0.05) with the SNN's Q-values too. Two details are equal only almost always:
    their percentile is over each layer's output *before* the ReLU, ours after it, which agree
    unless the percentile falls where the negative values meet the positive ones (a layer silent
    on >= 99.9% of its outputs; theirs then divides by a number <= 0); and their spike condition
    is :math:`v \ge 1`, ours :math:`v > 1`, which differ only when a membrane is exactly 1.0.

    ``method="seed002"``, seed 002 (BCS Spikeverse, IIT Kanpur 2025), section 7.3, the x10 per
    layer variant:

    * ``normalization="fixed"``, ``fixed_scale=10``: hidden layer ``l`` x ``10**l`` ("Layer 1:
      weights scaled by 10x, Layer 2: 100x"), the output layer as trained;
    * ``neuron="lif"``: the report gives no decay, so pass ``beta`` (default 1.0: no leak);
    * ``encoder="bernoulli"``: Poisson rate coding (inputs in [0, 1], e.g. images);
    * ``readout="output_spikes"``: the output layer is a layer of the same LIF neurons, Q is their
      spike count over T (the action: the neuron with the most spikes, ties to the first);
    * ``normalize_output=False``, ``layer_delay=False`` (all layers within one step).

    ``tests/reference/conversion_tan.py`` re-implements both forwards from the sources, and
    ``tests/test_conversion.py`` checks our converted networks against it.

    The defaults (``method=None``) are Rueckauer et al.'s data normalisation with Q kept in reward
    units: IF neurons, direct input, ``readout="spike_count"`` (:math:`Q = \frac1T\sum_t I_t`, the
    output IF neurons' spike count + final membrane divided by T), no delay, greedy calibration.

    :param method: ``None``, ``"tan2021"`` or ``"seed002"`` (see above and :data:`METHODS`)
    :param observations: calibration observations (raw, as the env returns them); gathered from
        the ANN's own play in ``env`` (or the model's env) when omitted
    :param num_steps: simulation steps ``T``
    :param neuron: ``"if"`` (integrate-and-fire) or ``"lif"`` (leaky, decay ``beta``)
    :param normalization: ``"data"`` (percentile-based), ``"fixed"`` (seed 002) or ``"none"``
    :param percentile: activation percentile of the data-based normalisation, in (0, 100]
    :param normalize_output: with ``normalization="data"``, also divide the output layer by the
        ``percentile`` of the ANN's Q-values (Tan et al.); refused if that percentile is <= 0,
        which would reverse the order of the actions
    :param fixed_scale: per-layer factor of the fixed scaling (seed 002: 10), > 0 and small enough
        that ``fixed_scale ** l`` times hidden layer ``l``'s weights stays finite in float32
        (otherwise a ``ValueError`` gives the bound for this ANN)
    :param encoder: ``"direct"`` or ``"bernoulli"`` (rate/Poisson coding, inputs must be in [0, 1])
    :param readout: ``"spike_count"`` (mean output current: count + residual membrane over T),
        ``"current_sum"`` (summed output current: count + residual membrane),
        ``"output_spikes"`` (spiking output neurons of the hidden kind, Q = their spike count) or
        ``"membrane_max"`` / ``"membrane_mean"`` / ``"membrane_last"`` (non-leaky integrator,
        scaled by 1/T)
    :param layer_delay: one step of delay per synaptic layer, as bindsnet's synchronous simulation
    :param n_calibration: observations to collect when ``observations`` is omitted, >= 1
    :param calibration_epsilon: epsilon of the ANN's play that collects them (see
        :func:`collect_observations`), in [0, 1]
    :param seed: seed of the new ``DQN`` (``None`` or an int >= 0)
    :return: a new ``DQN`` with a :class:`~snnrl_sb3.SpikingQPolicy` (a :class:`ConvertedQPolicy`
        when ``layer_delay`` or ``readout="output_spikes"``); the ANN's parameters are untouched
        (collecting calibration data does step the ANN's env, see :func:`collect_observations`)
    :raises TypeError: for a model that is not a ``DQN`` or arguments of the wrong type
    :raises ValueError: for arguments out of range, empty or non-finite ``observations``, an ANN
        without hidden layers or converted weights that would not be finite
    """
    if decoder is not None:  # the spelling of version 0.1: one name, readout, in every policy family now
        warnings.warn("convert_dqn(decoder=...) is deprecated: use readout=...", DeprecationWarning, stacklevel=2)
        if readout != "spike_count" and readout != decoder:
            raise ValueError(f"decoder={decoder!r} conflicts with readout={readout!r}: give it once, as readout")
        readout = decoder
    given = dict(normalization=normalization, fixed_scale=fixed_scale, neuron=neuron, encoder=encoder,
                 readout=readout, normalize_output=normalize_output, layer_delay=layer_delay,
                 calibration_epsilon=calibration_epsilon)
    chosen = _apply_method(method, given)
    normalization, fixed_scale, neuron, encoder = (chosen[k] for k in ("normalization", "fixed_scale", "neuron",
                                                                      "encoder"))
    readout, normalize_output, layer_delay = chosen["readout"], chosen["normalize_output"], chosen["layer_delay"]
    calibration_epsilon = chosen["calibration_epsilon"]

    layers = ann_layers(model)
    check_int("num_steps", num_steps, low=1)
    check_choice("neuron", neuron, ("if", "lif"))
    beta = check_real("beta", beta, low=0.0, high=1.0)
    if neuron == "if" and beta != 1.0:  # silently ignoring it would hand back a different neuron than asked for
        raise ValueError(f"beta={beta} needs neuron='lif': integrate-and-fire neurons (neuron='if') do not leak "
                         "(beta=1.0)")
    check_choice("normalization", normalization, NORMALIZATIONS)
    check_real("percentile", percentile, low=0.0, high=100.0, low_inclusive=False)
    check_bool("normalize_output", normalize_output)
    if normalize_output and normalization != "data":
        raise ValueError(f"normalize_output=True needs normalization='data' (it divides the output layer by a "
                         f"percentile of the ANN's Q-values), got normalization={normalization!r}")
    check_real("fixed_scale", fixed_scale, low=0.0, low_inclusive=False)
    check_choice("encoder", encoder, ("direct", "bernoulli"))
    check_choice("readout", readout, READOUTS)
    check_bool("layer_delay", layer_delay)
    check_int("n_calibration", n_calibration, low=1)
    calibration_epsilon = check_real("calibration_epsilon", calibration_epsilon, low=0.0, high=1.0)
    if seed is not None:
        check_int("seed", seed, low=0)
    if observations is None:
        observations = collect_observations(model, env, n_calibration, epsilon=calibration_epsilon)
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
        by = f" (method={method!r} sets it)" if method is not None else ""
        raise ValueError(f"encoder='bernoulli'{by} needs preprocessed observations in [0, 1] (e.g. images); these "
                         f"range over [{features.min().item():.3g}, {features.max().item():.3g}]: use "
                         "encoder='direct'")
    # spike_count averages over T itself; current_sum and the spiking output take the currents as they are
    out_scale = 1.0 if readout in ("spike_count", "current_sum", "output_spikes") else 1.0 / num_steps
    factors = _layer_factors(layers, features, normalization, percentile, fixed_scale, out_scale, normalize_output)
    synapses = [layer for layer in layers if isinstance(layer, (nn.Linear, nn.Conv2d))]
    scaled = _scaled_synapses(synapses, factors, normalization, fixed_scale)

    is_cnn = isinstance(synapses[0], nn.Conv2d)
    hidden_linear = [layer.out_features for layer in synapses[:-1] if isinstance(layer, nn.Linear)]
    # threshold 1 and reset by subtraction (the lif neuron with beta=1 is integrate-and-fire); membrane
    # read-outs integrate without leak (beta=1); output_spikes replaces the (current_sum) read-out
    membrane = readout.startswith("membrane")
    policy_kwargs: dict[str, Any] = dict(
        net_arch=hidden_linear, num_steps=num_steps, neuron="lif", neuron_kwargs={"beta": beta, "threshold": 1.0},
        encoder=encoder, readout="current_sum" if readout == "output_spikes" else readout,
        readout_kwargs={"beta": 1.0} if membrane else None, body="nature_cnn" if is_cnn else "mlp")
    policy_class: type[SpikingQPolicy] = SpikingQPolicy
    if layer_delay or readout == "output_spikes":
        policy_class = ConvertedQPolicy
        policy_kwargs.update(layer_delay=layer_delay, output_spikes=readout == "output_spikes")
    if is_cnn:
        policy_kwargs["normalize_images"] = model.policy.normalize_images
    settings = {name: copy.deepcopy(getattr(model, name)) for name in _DQN_SETTINGS if hasattr(model, name)}
    snn_model = DQN(policy_class, _SpacesEnv(model.observation_space, model.action_space),
                    policy_kwargs=policy_kwargs, device=model.device, seed=seed, **settings)
    ann_env = model.get_env()
    if ann_env is not None:
        snn_model.set_env(ann_env)

    policy = snn_model.policy
    assert isinstance(policy, SpikingQPolicy)  # built as one above (SB3 types it DQNPolicy)
    for policy_net in (policy.q_net, policy.q_net_target):
        spiking = policy_net.q_net
        head = spiking.readout
        targets = [m for m in spiking.layers if isinstance(m, (nn.Linear, nn.Conv2d))]
        if isinstance(head, (Readout, _OutputSpikeCount)):  # else: the check below refuses it
            targets.append(head.linear)
        if len(targets) != len(synapses) or any(t.weight.shape != s.weight.shape for t, s in zip(targets, synapses)):
            raise ValueError("the ANN architecture does not map onto a spiking NatureCNN/MLP body "
                             f"(ANN layers {[tuple(s.weight.shape) for s in synapses]})")
        with torch.no_grad():
            for target, (weight, bias) in zip(targets, scaled):
                target.weight.copy_(weight)
                _bias(target).copy_(bias)
    return snn_model


def _delayed(h: torch.Tensor) -> torch.Tensor:
    """``h[T, B, ...]`` one step later: zeros at step 0, ``h[t - 1]`` at step ``t``."""
    return torch.cat([torch.zeros_like(h[:1]), h[:-1]])


class _DelayedSpikingNetwork(SpikingNetwork):
    """A :class:`~snnrl_sb3.SpikingNetwork` simulated as bindsnet's synchronous ``Network.run``
    (Tan et al.'s script): every layer's output (the input layer's included) reaches the next
    synaptic layer one step later. The synaptic layers still add their biases at every step, so
    layer ``l`` integrates ``l`` steps of bias alone before the input reaches it."""

    def spike_trains(self, x: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        steps = self.num_steps
        h = self.encoder(x, steps, deterministic)
        if self.encoder.static:
            h = h.unsqueeze(0).expand(steps, *h.shape)
        h = _delayed(h)
        for layer in self.layers:
            if isinstance(layer, MultiStepNeuron):
                h = _delayed(layer(h))
            else:
                h = layer(h.flatten(0, 1)).unflatten(0, (steps, -1))
        return h


class _OutputSpikeCount(nn.Module):
    """Spiking output layer (seed 002): the output currents ``W s_t + b`` drive a layer of the
    hidden neurons, and Q is each output neuron's spike count over the ``T`` steps."""

    def __init__(self, linear: nn.Linear, neuron: MultiStepNeuron) -> None:
        super().__init__()
        self.linear, self.neuron = linear, neuron

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.linear(spikes)).sum(0)


class ConvertedQPolicy(SpikingQPolicy):
    """:class:`~snnrl_sb3.SpikingQPolicy` of a converted DQN with the reference simulators' options
    that the spiking kwargs do not have (saved with the model, JSON-plain):

    :param layer_delay: simulate as bindsnet's synchronous ``Network.run`` (Tan et al.): one step
        of delay per synaptic layer
    :param output_spikes: the output layer is a layer of the hidden neurons and Q is their spike
        count (seed 002), instead of the configured read-out of the output currents
    """

    def __init__(self, *args: Any, layer_delay: bool = False, output_spikes: bool = False, **kwargs: Any) -> None:
        self.layer_delay = check_bool("layer_delay", layer_delay)
        self.output_spikes = check_bool("output_spikes", output_spikes)
        super().__init__(*args, **kwargs)

    def make_q_net(self) -> SpikingQNetwork:
        q_net = super().make_q_net()
        net = q_net.q_net
        if self.output_spikes:
            readout = net.readout
            assert isinstance(readout, Readout)  # the (current_sum) read-out the policy built
            net.readout = _OutputSpikeCount(readout.linear, self.spiking_config.make_neuron())
        if self.layer_delay:
            net = _DelayedSpikingNetwork(list(net.layers), net.readout, net.num_steps, net.encoder)
        q_net.q_net = net
        return q_net.to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(layer_delay=self.layer_delay, output_spikes=self.output_spikes)
        return data


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
