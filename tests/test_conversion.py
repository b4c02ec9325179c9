import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from reference.conversion_tan import seed002_forward, seed002_scale, tan_forward, tan_normalize
from stable_baselines3 import DQN
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.conversion import (
    METHODS,
    ConvertedQPolicy,
    action_agreement,
    ann_layers,
    collect_observations,
    convert_dqn,
)


@pytest.fixture(scope="module")
def ann_model():
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[32, 32]), learning_starts=100, seed=1)
    model.learn(600)
    return model


@pytest.fixture(scope="module")
def calibration(ann_model):
    return collect_observations(ann_model, n_steps=400)


def test_converted_q_values_approach_the_ann_as_t_grows(ann_model, calibration):
    obs_t, _ = ann_model.policy.obs_to_tensor(calibration)
    q_ann = ann_model.q_net(obs_t).detach()
    errors = []
    for steps in (16, 128):
        snn = convert_dqn(ann_model, observations=calibration, num_steps=steps)
        assert isinstance(snn.policy, SpikingQPolicy)
        errors.append((snn.q_net(obs_t).detach() - q_ann).abs().mean().item())
    assert errors[1] < errors[0] / 2
    assert action_agreement(ann_model, snn, calibration) >= 0.97


@pytest.mark.parametrize("normalization", ["data", "fixed", "none"])
@pytest.mark.parametrize("decoder", ["spike_count", "membrane_last"])
def test_conversion_options_run_and_keep_the_ann_intact(ann_model, calibration, normalization, decoder):
    before = [p.clone() for p in ann_model.policy.parameters()]
    snn = convert_dqn(ann_model, observations=calibration, num_steps=8, normalization=normalization,
                      readout=decoder, neuron="lif", beta=0.95)
    actions, _ = snn.predict(calibration[:5], deterministic=True)
    assert actions.shape == (5,)
    assert all(torch.equal(a, b) for a, b in zip(before, ann_model.policy.parameters()))


def test_converted_model_saves_loads_evaluates_and_fine_tunes(ann_model, calibration, tmp_path):
    snn = convert_dqn(ann_model, observations=calibration, num_steps=16)
    snn.save(tmp_path / "snn")
    loaded = DQN.load(tmp_path / "snn", env=ann_model.get_env())
    assert np.array_equal(loaded.predict(calibration, deterministic=True)[0],
                          snn.predict(calibration, deterministic=True)[0])
    mean, _ = evaluate_policy(loaded, ann_model.get_env(), n_eval_episodes=2)
    assert mean > 0
    loaded.learn(200)  # fine-tuning with stock DQN


def test_cnn_conversion_with_bernoulli_input():
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)
    model = DQN("CnnPolicy", env, buffer_size=100, learning_starts=10, seed=0,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=32)))
    obs = np.stack([env.observation_space.sample() for _ in range(8)])
    snn = convert_dqn(model, observations=obs, num_steps=4, encoder="bernoulli")
    assert snn.predict(obs, deterministic=True)[0].shape == (8,)
    assert snn.policy.q_net.q_net.layers[0].weight.shape == model.q_net.features_extractor.cnn[0].weight.shape


def test_unsupported_networks_are_named(calibration):
    tanh = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8], activation_fn=nn.Tanh))
    with pytest.raises(ValueError, match=r"layer 1 \(Tanh\) cannot be converted"):
        convert_dqn(tanh, observations=calibration)
    spiking = DQN(SpikingQPolicy, "CartPole-v1")
    with pytest.raises(ValueError, match="already spiking"):
        convert_dqn(spiking, observations=calibration)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(normalization="max"), ValueError, "unknown normalization 'max'"),
    (dict(percentile=0.0), ValueError, "percentile must be > 0.0"),
    (dict(percentile=101.0), ValueError, "percentile must be <= 100.0"),
    (dict(neuron="izhikevich"), ValueError, "unknown neuron 'izhikevich'"),
    (dict(num_steps=0), ValueError, "num_steps must be >= 1"),
    (dict(encoder="bernoulli"), ValueError, "encoder='bernoulli' needs preprocessed observations in \\[0, 1\\]"),
    (dict(readout="argmax"), ValueError, "unknown readout 'argmax'"),
])
def test_bad_arguments(ann_model, calibration, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        convert_dqn(ann_model, observations=calibration, **kwargs)


def test_non_finite_calibration_observations_are_refused(ann_model, calibration):
    # one NaN used to make every percentile NaN, which silently switched data normalisation off
    for bad in (np.nan, np.inf):
        obs = calibration.copy()
        obs[3, 1] = bad
        with pytest.raises(ValueError, match=r"observations must be finite: it contains NaN or inf "
                                             r"\(shape \(400, 4\)\)"):
            convert_dqn(ann_model, observations=obs)
    with pytest.raises(ValueError, match="observations overflow float32 after SB3's preprocessing"):
        convert_dqn(ann_model, observations=calibration.astype(np.float64) * 1e300)


def test_fixed_scale_must_keep_the_weights_finite_float32(ann_model, calibration):
    bounds = r"for this ANN fixed_scale must be in \([0-9.e+-]+, [0-9.e+-]+\)"
    with pytest.raises(ValueError, match=r"fixed_scale=1e\+30 multiplies hidden layer 2 by fixed_scale\*\*2, which "
                                         r"overflows float32 \(inf weights\): " + bounds):
        convert_dqn(ann_model, observations=calibration, normalization="fixed", fixed_scale=1e30)
    with pytest.raises(ValueError, match=r"fixed_scale=1e\+200 multiplies hidden layer 1 .* overflows float32"):
        convert_dqn(ann_model, observations=calibration, normalization="fixed", fixed_scale=1e200)
    with pytest.raises(ValueError, match=r"hidden layer 2 by fixed_scale\*\*2, which underflows float32 \(weights "
                                         r"flushed to 0\): " + bounds):
        convert_dqn(ann_model, observations=calibration, normalization="fixed", fixed_scale=1e-30)
    snn = convert_dqn(ann_model, observations=calibration, normalization="fixed", fixed_scale=1e15)
    assert all(bool(torch.isfinite(p).all()) for p in snn.policy.parameters())


def test_conversion_refuses_models_it_cannot_convert(calibration):
    with pytest.raises(TypeError, match=r"model must be a trained stable_baselines3 DQN .*, got Linear"):
        convert_dqn(nn.Linear(4, 2), observations=calibration)
    linear_ann = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[]))
    with pytest.raises(ValueError, match=r"the ANN has no hidden layer to convert \(its net_arch is \[\]\)"):
        convert_dqn(linear_ann, observations=calibration)
    broken = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]))
    with torch.no_grad():
        broken.q_net.q_net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer 0 \(Linear\) of the ANN has NaN or inf parameters"):
        convert_dqn(broken, observations=calibration)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(observations=np.zeros((0, 4))), ValueError,
     r"observations must hold at least one observation, got shape \(0, 4\)"),
    (dict(observations=np.zeros((5, 3))), ValueError, "observations do not match the model's observation space"),
    (dict(observations="cartpole"), TypeError, "observations must be numeric"),
    (dict(n_calibration=0), ValueError, "n_calibration must be >= 1, got 0"),
    (dict(n_calibration=2.5), TypeError, "n_calibration must be an int, got float"),
    (dict(seed=-1), ValueError, "seed must be >= 0, got -1"),
    (dict(neuron="if", beta=0.9), ValueError, r"beta=0.9 needs neuron='lif'"),
    (dict(fixed_scale=0.0), ValueError, "fixed_scale must be > 0.0"),
])
def test_bad_calibration_and_settings_name_the_parameter(ann_model, calibration, kwargs, exc, match):
    kwargs = {"observations": calibration, **kwargs}
    with pytest.raises(exc, match=match):
        convert_dqn(ann_model, **kwargs)


def test_helpers_validate_their_arguments(ann_model, calibration):
    with pytest.raises(ValueError, match="n_steps must be >= 1, got 0"):
        collect_observations(ann_model, n_steps=0)
    with pytest.raises(TypeError, match=r"env must be a gymnasium\.Env or an SB3 VecEnv, got int"):
        collect_observations(ann_model, env=5)
    with pytest.raises(ValueError, match=r"observations must hold at least one observation, got shape \(0, 4\)"):
        action_agreement(ann_model, ann_model, np.zeros((0, 4), np.float32))  # used to return NaN
    assert action_agreement(ann_model, ann_model, calibration[:10]) == 1.0


# ---- the published methods against independent re-implementations (tests/reference/conversion_tan.py) ----


def _reference_layers(model):
    """The ANN's synaptic layers as the reference takes them: ``(weight, bias, stride)``."""
    return [(m.weight.detach().clone(), m.bias.detach().clone(), m.stride[0] if isinstance(m, nn.Conv2d) else None)
            for m in ann_layers(model) if isinstance(m, (nn.Linear, nn.Conv2d))]


def _converted_layers(snn):
    net = snn.policy.q_net.q_net
    synapses = [m for m in net.layers if isinstance(m, (nn.Linear, nn.Conv2d))] + [net.readout.linear]
    return [(m.weight.detach(), m.bias.detach()) for m in synapses]


def _features(model, obs):
    """The preprocessed observations both sides see (the reference's Input layer values)."""
    from stable_baselines3.common.preprocessing import preprocess_obs

    obs_t, _ = model.policy.obs_to_tensor(obs)
    if isinstance(model.policy.q_net.features_extractor, NatureCNN):
        return obs_t, preprocess_obs(obs_t, model.observation_space, model.policy.normalize_images)
    return obs_t, model.policy.q_net.extract_features(obs_t, model.policy.q_net.features_extractor).detach()


class _OneInputEnv(gym.Env):
    """1-D observations in [0, 2], two actions: the hand-worked example's spaces."""

    observation_space = gym.spaces.Box(0.0, 2.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), 0.0, False, False, {}


# The hand-worked example: input x = 1 (constant, T = 3), ANN W1 = [[1], [0.5]], b1 = [1, 0],
# W2 = [[2, -1], [1, 2]], b2 = [0, 1]. On the data {x = 1}: hidden pre-activations [2, 0.5], Q = [3.5, 4].
# Normalisation with percentile 100 (the max): lambda1 = 2, lambda2 = 4 ->
#   W1' = W1 / 2 = [[0.5], [0.25]], b1' = [0.5, 0], W2' = W2 * 2 / 4 = [[1, -0.5], [0.5, 1]], b2' = b2 / 4 = [0, 0.25].
# Synchronous bindsnet run (each layer sees the previous step's spikes; v += I; s = v >= 1; v[s] -= 1):
#   t=0: hidden I = b1' = [0.5, 0]      -> v [0.5, 0],     s [0, 0]; output I = b2' = [0, 0.25] -> v [0, 0.25]
#   t=1: hidden I = [1.0, 0.25]         -> v [1.5, 0.25] s [1, 0] -> v [0.5, 0.25]; output I = b2' -> v [0, 0.5]
#   t=2: hidden I = [1.0, 0.25]         -> v [1.5, 0.5]  s [1, 0] -> v [0.5, 0.5]
#        output I = W2'[:, 0] + b2' = [1.0, 0.75] -> v [1.0, 1.25] -> s [1, 1] (1.0 >= 1) -> v [0.0, 0.25]
#   Q = count + v = [1 + 0, 1 + 0.25] = [1.0, 1.25]
#     = the summed output currents [0 + 0 + 1, 0.25 + 0.25 + 0.75]; action 1 (the ANN's: Q = [3.5, 4]).
# One-step run (layer by layer within the step): hidden I = [1.0, 0.25] from t = 0: v hits exactly 1.0 and spikes
#   (>=) at t = 0, 1, 2; output I = [1.0, 0.75] at every step -> Q = [3.0, 2.25] (count [3, 2], v [0, 0.25]).
HAND_ANN = ([[1.0], [0.5]], [1.0, 0.0], [[2.0, -1.0], [1.0, 2.0]], [0.0, 1.0])


def _hand_layers():
    w1, b1, w2, b2 = (torch.tensor(v) for v in HAND_ANN)
    return [(w1, b1, None), (w2, b2, None)]


def test_reference_tan_hand_worked_example():
    scaled, scales = tan_normalize(_hand_layers(), torch.ones(1, 1), percentile=100.0)
    assert scales == [2.0, 4.0]
    for (weight, bias, _), expected in zip(scaled, [([[0.5], [0.25]], [0.5, 0.0]), ([[1.0, -0.5], [0.5, 1.0]],
                                                                                     [0.0, 0.25])]):
        assert weight.tolist() == expected[0] and bias.tolist() == expected[1]
    q, count = tan_forward(scaled, torch.ones(3, 1, 1))
    assert q.tolist() == [[1.0, 1.25]] and count.tolist() == [[1.0, 1.0]]
    q, count = tan_forward(scaled, torch.ones(3, 1, 1), synchronous=False)
    assert q.tolist() == [[3.0, 2.25]] and count.tolist() == [[3.0, 2.0]]


def _hand_model():
    model = DQN("MlpPolicy", _OneInputEnv(), policy_kwargs=dict(net_arch=[2]), seed=0)
    w1, b1, w2, b2 = (torch.tensor(v) for v in HAND_ANN)
    with torch.no_grad():
        for layer, weight, bias in ((model.q_net.q_net[0], w1, b1), (model.q_net.q_net[2], w2, b2)):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    return model


def test_tan2021_reproduces_the_hand_worked_example_exactly():
    model, obs = _hand_model(), np.ones((1, 1), np.float32)
    snn = convert_dqn(model, method="tan2021", observations=obs, num_steps=3, percentile=100.0)
    assert isinstance(snn.policy, ConvertedQPolicy)
    assert snn.policy.q_net(torch.ones(1, 1), deterministic=True).tolist() == [[1.0, 1.25]]
    # without the delay our IF neurons spike on v > 1, not v >= 1: the hidden membrane that sits exactly at
    # 1.0 at t = 0 fires at t = 1, 2 only (rate 2/3 instead of the reference's 1); Q = W2 * 2 * rate + b2
    plain = convert_dqn(model, observations=obs, num_steps=3, percentile=100.0)
    np.testing.assert_allclose(plain.policy.q_net(torch.ones(1, 1), deterministic=True).detach().numpy(),
                               [[4 * 2 / 3, 2 * 2 / 3 + 1]], rtol=1e-6)


@pytest.fixture(scope="module")
def cnn_ann():
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)
    model = DQN("CnnPolicy", env, buffer_size=100, learning_starts=10, seed=0,
                policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16)))
    return model, np.stack([env.observation_space.sample() for _ in range(12)])


@pytest.fixture(scope="module")
def image_mlp_ann():
    """An MLP on 6x6 images: preprocessed observations in [0, 1], as Poisson coding needs."""
    env = FakeImageEnv(screen_height=6, screen_width=6, n_channels=1)
    model = DQN("MlpPolicy", env, buffer_size=100, learning_starts=10, seed=0, policy_kwargs=dict(net_arch=[32, 16]))
    return model, np.stack([env.observation_space.sample() for _ in range(64)])


@pytest.mark.parametrize("body", ["mlp", "cnn"])
@pytest.mark.parametrize("steps", [1, 2, 5, 32])
def test_tan2021_matches_the_reference_forward(request, ann_model, calibration, body, steps):
    """Weights bit-identical; Q within 1e-5: both sides add the same float32 currents, but the reference
    accumulates ``v += I; v -= 1`` step by step and adds the spike count, ours sums the currents (pooled
    spikes through one matmul), so the sums round differently (by ~T float32 ulps of |Q|)."""
    model, obs = (ann_model, calibration) if body == "mlp" else request.getfixturevalue("cnn_ann")
    obs_t, x = _features(model, obs)
    snn = convert_dqn(model, method="tan2021", observations=obs, num_steps=steps)
    reference, scales = tan_normalize(_reference_layers(model), x, percentile=99.9)
    assert all(s > 0 for s in scales)
    for (weight, bias, _), (ours_w, ours_b) in zip(reference, _converted_layers(snn)):
        assert torch.equal(weight, ours_w) and torch.equal(bias, ours_b)
    q_ref, _ = tan_forward(reference, x.unsqueeze(0).expand(steps, *x.shape))
    q = snn.policy.q_net(obs_t, deterministic=True).detach()
    torch.testing.assert_close(q, q_ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(q.argmax(1), q_ref.argmax(1))
    assert np.array_equal(snn.predict(obs, deterministic=True)[0], q_ref.argmax(1).numpy())


@pytest.mark.parametrize("body", ["mlp", "cnn"])
@pytest.mark.parametrize("steps,beta", [(3, 1.0), (16, 0.9)])
def test_seed002_matches_the_reference_forward(request, body, steps, beta):
    """Spike counts are integers and both sides compute the same float32 operations per step in
    the same order: exactly equal, actions too (ties to the first action on both sides)."""
    model, obs = request.getfixturevalue("image_mlp_ann" if body == "mlp" else "cnn_ann")
    obs_t, x = _features(model, obs)
    snn = convert_dqn(model, method="seed002", observations=obs, num_steps=steps, beta=beta)
    reference = seed002_scale(_reference_layers(model), 10.0)
    for (weight, bias, _), (ours_w, ours_b) in zip(reference, _converted_layers(snn)):
        assert torch.equal(weight, ours_w) and torch.equal(bias, ours_b)
    spikes = snn.policy.q_net.q_net.encoder(x, steps, deterministic=True)  # identical input spikes
    counts = seed002_forward(reference, spikes, beta=beta)
    q = snn.policy.q_net(obs_t, deterministic=True).detach()
    assert torch.equal(q, counts) and counts.sum() > 0
    assert np.array_equal(snn.predict(obs, deterministic=True)[0], counts.argmax(1).numpy())


@pytest.mark.parametrize("method", ["tan2021", "seed002"])
def test_converted_methods_save_and_load(image_mlp_ann, tmp_path, method):
    model, obs = image_mlp_ann
    snn = convert_dqn(model, method=method, observations=obs, num_steps=6)
    snn.save(tmp_path / "snn")
    loaded = DQN.load(tmp_path / "snn")
    assert type(loaded.policy) is ConvertedQPolicy
    assert (loaded.policy.layer_delay, loaded.policy.output_spikes) == (method == "tan2021", method == "seed002")
    obs_t, _ = model.policy.obs_to_tensor(obs)
    assert torch.equal(loaded.policy.q_net(obs_t, deterministic=True), snn.policy.q_net(obs_t, deterministic=True))


def test_methods_fix_their_settings_and_refuse_conflicts(ann_model, calibration):
    assert set(METHODS) == {"tan2021", "seed002"}
    with pytest.raises(ValueError, match=r"method='tan2021' sets readout='current_sum', got readout='membrane_max'"):
        convert_dqn(ann_model, method="tan2021", observations=calibration, readout="membrane_max")
    with pytest.raises(ValueError, match=r"method='seed002' sets fixed_scale=10.0, got fixed_scale=3.0"):
        convert_dqn(ann_model, method="seed002", observations=calibration, fixed_scale=3.0)
    with pytest.raises(ValueError, match="unknown method 'tan'"):
        convert_dqn(ann_model, method="tan", observations=calibration)
    with pytest.raises(ValueError, match=r"encoder='bernoulli' \(method='seed002' sets it\) needs preprocessed"):
        convert_dqn(ann_model, method="seed002", observations=calibration)  # CartPole is not in [0, 1]
    with pytest.raises(ValueError, match="normalize_output=True needs normalization='data'"):
        convert_dqn(ann_model, observations=calibration, normalization="fixed", normalize_output=True)
    snn = convert_dqn(ann_model, method="tan2021", observations=calibration, num_steps=4, percentile=99.0)
    assert snn.policy.layer_delay and snn.policy.q_net.q_net.readout.mode == "current_sum"


def test_normalize_output_refuses_a_non_positive_q_percentile(ann_model, calibration):
    broken = copy.deepcopy(ann_model)
    with torch.no_grad():
        broken.q_net.q_net[-1].bias.fill_(-1e4)  # every Q-value negative: dividing by it would reverse the argmax
    with pytest.raises(ValueError, match=r"percentile of the ANN's Q-values .* <= 0: that would reverse"):
        convert_dqn(broken, observations=calibration, normalize_output=True)


def test_collect_observations_plays_epsilon_greedy(ann_model):
    greedy = collect_observations(ann_model, n_steps=300, seed=3)
    assert np.array_equal(greedy, collect_observations(ann_model, n_steps=300, seed=3, epsilon=0.0))
    noisy = collect_observations(ann_model, n_steps=300, seed=3, epsilon=0.5)
    assert np.array_equal(noisy, collect_observations(ann_model, n_steps=300, seed=3, epsilon=0.5))
    assert not np.array_equal(noisy, greedy)
    with pytest.raises(ValueError, match="epsilon must be <= 1.0"):
        collect_observations(ann_model, n_steps=10, epsilon=1.5)


def test_the_old_decoder_keyword_still_works_with_a_warning(ann_model, calibration):
    with pytest.warns(DeprecationWarning, match=r"convert_dqn\(decoder=\.\.\.\) is deprecated: use readout"):
        old = convert_dqn(ann_model, observations=calibration, num_steps=4, decoder="membrane_last", seed=0)
    new = convert_dqn(ann_model, observations=calibration, num_steps=4, readout="membrane_last", seed=0)
    assert old.policy.spiking_config == new.policy.spiking_config
    with pytest.raises(ValueError, match="decoder='membrane_last' conflicts with readout='membrane_max'"):
        convert_dqn(ann_model, observations=calibration, decoder="membrane_last", readout="membrane_max")
