import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.conversion import action_agreement, collect_observations, convert_dqn


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
                      decoder=decoder, neuron="lif", beta=0.95)
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
    (dict(decoder="argmax"), ValueError, "unknown decoder 'argmax'"),
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
