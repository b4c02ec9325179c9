"""Spiking actor-critic policies with stock SB3 PPO / A2C and sb3-contrib MaskablePPO (tiny budgets)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import device_from_env
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.envs import InvalidActionEnvDiscrete
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, IdentityEnvMultiBinary, IdentityEnvMultiDiscrete
from stable_baselines3.common.evaluation import evaluate_policy

from snnrl_sb3 import (
    SpikeStatsCallback,
    SpikingActorCriticPolicy,
    SpikingCnnActorCriticPolicy,
    SpikingMaskableActorCriticPolicy,
    SpikingNetwork,
    atan,
    estimate_energy,
    export_nir,
)
from snnrl_sb3.actor_critic import SpikingActorCriticExtractor
from snnrl_sb3.config import SPIKING_KWARGS

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              # CartPole's space samples reach far past Pop-SAN's receptive fields (a warning says so)
              pytest.mark.filterwarnings("ignore:observation dimensions")]

ALGOS = {"PPO": PPO, "A2C": A2C, "MaskablePPO": MaskablePPO}
TINY = {"net_arch": [16], "num_steps": 3}


def make_env(kind):
    if kind == "cartpole":
        return gym.make("CartPole-v1")
    if kind == "pendulum":
        return gym.make("Pendulum-v1")
    if kind == "multi_discrete":
        return IdentityEnvMultiDiscrete(dim=3, ep_length=20)
    if kind == "multi_binary":
        return IdentityEnvMultiBinary(dim=3, ep_length=20)
    if kind == "image":
        return FakeImageEnv(action_dim=3, screen_height=40, screen_width=40, n_channels=1)
    if kind == "masked":
        return InvalidActionEnvDiscrete(dim=6, n_invalid_actions=3, ep_length=20)
    raise ValueError(kind)


# (name, algorithm, policy, env kind, policy kwargs, algorithm kwargs)
VARIANTS = [
    ("ppo_ternary", "PPO", SpikingActorCriticPolicy, "cartpole", {}, {}),
    ("ppo_ternary_spiking_critic", "PPO", SpikingActorCriticPolicy, "cartpole", {"critic": "spiking"}, {}),
    ("ppo_lif", "PPO", SpikingActorCriticPolicy, "cartpole", {"neuron": "lif"}, {}),
    ("ppo_lif_spiking_critic", "PPO", SpikingActorCriticPolicy, "cartpole",
     {"neuron": "lif", "critic": "spiking", "net_arch": {"pi": [16], "vf": [8]}}, {}),
    ("ppo_symmetric_ternary", "PPO", SpikingActorCriticPolicy, "cartpole",
     {"neuron": "symmetric_ternary", "readout": "spike_count"}, {}),
    ("a2c_discrete", "A2C", SpikingActorCriticPolicy, "cartpole", {"readout": "membrane_mean"}, {}),
    ("ppo_box", "PPO", SpikingActorCriticPolicy, "pendulum", {}, {}),
    ("ppo_box_sde", "PPO", SpikingActorCriticPolicy, "pendulum", {"neuron": "lif"}, {"use_sde": True,
                                                                                       "sde_sample_freq": 4}),
    ("a2c_box_sde_spiking_critic", "A2C", SpikingActorCriticPolicy, "pendulum", {"critic": "spiking"},
     {"use_sde": True}),
    ("ppo_multi_discrete", "PPO", SpikingActorCriticPolicy, "multi_discrete", {}, {}),
    ("a2c_multi_binary", "A2C", SpikingActorCriticPolicy, "multi_binary", {"neuron": "lif"}, {}),
    ("ppo_population", "PPO", SpikingActorCriticPolicy, "pendulum",
     {"encoder": "population", "encoder_kwargs": {"pop_dim": 4}, "critic": "spiking"}, {}),
    ("ppo_popsan_discrete", "PPO", SpikingActorCriticPolicy, "cartpole",
     {"preset": "popsan", "encoder_kwargs": {"pop_dim": 4}, "readout_kwargs": {"pop_dim": 3}}, {}),
    ("ppo_cnn", "PPO", SpikingCnnActorCriticPolicy, "image", {"num_steps": 2, "net_arch": [16]}, {}),
    ("ppo_cnn_datsqn", "PPO", SpikingCnnActorCriticPolicy, "image",
     {"preset": "datsqn", "num_steps": 2, "net_arch": [16], "encoder_kwargs": {"deterministic_noise": "frozen"}},
     {}),
    ("maskable_ternary", "MaskablePPO", SpikingMaskableActorCriticPolicy, "masked", {}, {}),
    ("maskable_lif_spiking_critic", "MaskablePPO", SpikingMaskableActorCriticPolicy, "masked",
     {"neuron": "lif", "critic": "spiking"}, {}),
]
IDS = [v[0] for v in VARIANTS]
BY_NAME = {v[0]: v for v in VARIANTS}


def build(name, seed=0, **overrides):
    _, algo, policy, env_kind, kwargs, algo_kwargs = BY_NAME[name]
    kwargs = {**TINY, **kwargs}
    settings = dict(n_steps=32, seed=seed, device=device_from_env(), policy_kwargs=kwargs, **algo_kwargs)
    if algo != "A2C":
        settings.update(batch_size=16, n_epochs=2)
    settings.update(overrides)
    return ALGOS[algo](policy, make_env(env_kind), **settings)


def sample_obs(model, n=7, seed=0):
    space = model.observation_space
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


def masks(model, obs):
    """Valid-action masks of the masked env (a fixed random pattern per observation)."""
    if not isinstance(model, MaskablePPO):
        return None
    rng = np.random.default_rng(1)
    out = rng.random((len(obs), int(model.action_space.n))) < 0.5
    out[:, 0] = True
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, run_fresh):
    """Every variant trained for a few hundred steps and saved; loaded back in ONE fresh process."""
    folder = tmp_path_factory.mktemp("actor_critic")
    torch.set_num_threads(1)
    models = {}
    for name, algo, *_ in VARIANTS:
        model = build(name)
        model.learn(128)
        models[name] = model
        model.save(folder / f"{name}.zip")
        obs = sample_obs(model)
        np.save(folder / f"{name}_obs.npy", obs)
        if algo == "MaskablePPO":
            np.save(folder / f"{name}_masks.npy", masks(model, obs))
    script = (
        "import json, sys, numpy as np, torch\n"
        "from stable_baselines3 import A2C, PPO\nfrom sb3_contrib import MaskablePPO\n"
        "torch.set_num_threads(1)\n"
        "jobs = json.loads(sys.argv[1]); folder = sys.argv[2]; out = {}\n"
        "for name, algo in jobs.items():\n"
        "    model = {'PPO': PPO, 'A2C': A2C, 'MaskablePPO': MaskablePPO}[algo].load(f'{folder}/{name}.zip')\n"
        "    obs = np.load(f'{folder}/{name}_obs.npy')\n"
        "    extra = {'action_masks': np.load(f'{folder}/{name}_masks.npy')} if algo == 'MaskablePPO' else {}\n"
        "    out[name] = [model.predict(obs, deterministic=True, **extra)[0].tolist(), type(model.policy).__name__]\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    jobs = {name: algo for name, algo, *_ in VARIANTS}
    fresh = json.loads(run_fresh(script, json.dumps(jobs), str(folder)).split("RESULT", 1)[1].splitlines()[0])
    return models, fresh, folder


def predict(model, obs, mask=None, **kwargs):
    extra = {"action_masks": masks(model, obs) if mask is None else mask} if isinstance(model, MaskablePPO) else {}
    return model.predict(obs, **extra, **kwargs)[0]


@pytest.mark.parametrize("name", IDS)
def test_learn_save_load_in_fresh_process_gives_same_deterministic_actions(trained, name):
    models, fresh, folder = trained
    model = models[name]
    obs = np.load(folder / f"{name}_obs.npy")
    actions = predict(model, obs, deterministic=True)
    assert fresh[name] == [actions.tolist(), type(model.policy).__name__]
    assert model.num_timesteps >= 128


@pytest.mark.parametrize("name", IDS)
def test_deterministic_predict_is_batch_invariant_and_repeatable(trained, name):
    model = trained[0][name]
    obs = sample_obs(model)
    mask = masks(model, obs)
    batched = predict(model, obs, mask, deterministic=True)
    rows = [predict(model, o[None], None if mask is None else mask[i:i + 1], deterministic=True)[0]
            for i, o in enumerate(obs)]
    if isinstance(model.action_space, spaces.Box):  # BLAS rounding may differ with the batch size
        np.testing.assert_allclose(batched, np.stack(rows), rtol=1e-4, atol=1e-5)
    else:
        assert batched.tolist() == [row.tolist() for row in rows]
    assert np.array_equal(predict(model, obs, deterministic=True), batched)


# a stochastic (Bernoulli) encoder draws fresh noise at every training-time forward: deterministic inputs only
@pytest.mark.parametrize("name", [name for name in IDS if name != "ppo_cnn_datsqn"])
def test_evaluate_actions_log_prob_is_the_distributions_and_forward_matches_predict(trained, name):
    model = trained[0][name]
    policy = model.policy
    obs = sample_obs(model)
    obs_t, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        actions, values, log_prob = policy(obs_t, deterministic=True)
        assert np.array_equal(actions.cpu().numpy(), policy.predict(obs, deterministic=True)[0])
        distribution = policy.get_distribution(obs_t)
        stored = actions.reshape(len(obs), -1) if isinstance(model.action_space, spaces.Box) else actions
        values_eval, log_prob_eval, entropy = policy.evaluate_actions(obs_t, stored)
        assert torch.equal(log_prob_eval, distribution.log_prob(stored))
        torch.testing.assert_close(log_prob_eval, log_prob)
        torch.testing.assert_close(values_eval, values)
        torch.testing.assert_close(values_eval, policy.predict_values(obs_t))
        assert entropy is None or entropy.shape == (len(obs),)
        assert torch.equal(policy(obs_t, deterministic=True)[0], actions)  # Markov: zero state every call


def test_actor_is_a_spiking_network_with_the_read_out_feeding_sb3s_action_net(trained):
    policy = trained[0]["ppo_ternary"].policy
    extractor = policy.mlp_extractor
    assert isinstance(extractor, SpikingActorCriticExtractor) and isinstance(extractor.policy_net, SpikingNetwork)
    assert extractor.latent_dim_pi == 16 == extractor.policy_net.readout.linear.out_features
    assert policy.action_net.in_features == 16 and policy.action_net.out_features == 2
    assert isinstance(extractor.value_net, torch.nn.Sequential)  # SB3's deep critic
    assert [type(m).__name__ for m in extractor.value_net] == ["Linear", "Tanh"]
    spiking = trained[0]["ppo_lif_spiking_critic"].policy.mlp_extractor
    assert isinstance(spiking.value_net, SpikingNetwork) and spiking.latent_dim_vf == 8
    assert trained[0]["ppo_lif_spiking_critic"].policy.net_arch == {"pi": [16], "vf": [8]}
    population = trained[0]["ppo_popsan_discrete"].policy
    assert population.spiking_config.family == "population" and population.mlp_extractor.latent_dim_pi == 2
    assert population.spiking_config.neuron == "current_lif" and population.spiking_preset == "popsan"
    # Pop-SAN's actor_lr_ratio=0.1: the actor's param group steps at a tenth of the learning rate
    groups = population.optimizer.param_groups
    assert [g["lr_scale"] for g in groups] == [1.0, 0.1]
    actor_ids = {id(p) for p in [*population.mlp_extractor.policy_net.parameters(),
                                 *population.action_net.parameters()]}
    assert {id(p) for p in groups[1]["params"]} == actor_ids
    datsqn = trained[0]["ppo_cnn_datsqn"].policy
    assert datsqn.spiking_config.neuron == "ternary" and datsqn.spiking_config.encoder == "bernoulli"
    assert sum(isinstance(m, torch.nn.Conv2d) for m in datsqn.mlp_extractor.policy_net.modules()) == 3
    assert sum(isinstance(m, torch.nn.Conv2d) for m in datsqn.mlp_extractor.value_net.modules()) == 3


def test_masked_actions_are_never_taken(trained):
    model = trained[0]["maskable_ternary"]
    obs = sample_obs(model, 32)
    mask = masks(model, obs)
    for deterministic in (True, False):
        actions = predict(model, obs, deterministic=deterministic)
        assert mask[np.arange(len(obs)), actions].all()


def test_constructor_parameters_are_json_plain_and_complete(trained):
    data = trained[0]["ppo_lif_spiking_critic"].policy._get_constructor_parameters()
    spiking = {k: data[k] for k in (*SPIKING_KWARGS, "critic", "body", "init", "bias", "image_scale",
                                    "actor_lr_ratio")}
    assert json.loads(json.dumps(spiking)) == spiking
    assert spiking == {"num_steps": 3, "neuron": "lif", "neuron_kwargs": None, "surrogate": None,
                       "surrogate_kwargs": None, "encoder": "direct", "encoder_kwargs": None,
                       "readout": "membrane_max", "readout_kwargs": None, "backend": "eager", "critic": "spiking",
                       "body": "auto", "init": "auto", "bias": True, "image_scale": None, "actor_lr_ratio": 1.0}


def test_evaluate_policy_with_vec_env():
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = PPO(SpikingActorCriticPolicy, venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, policy_kwargs=TINY)
    model.learn(64)
    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=4, return_episode_rewards=True)
    assert len(rewards) == len(lengths) == 4
    assert rewards == [float(n) for n in lengths]  # CartPole pays 1 per step: whole episodes were scored


def test_spike_stats_callback_samples_the_rollout_and_does_not_change_a_seeded_run():
    def run(callback):
        model = build("ppo_ternary_spiking_critic", seed=3)
        model.learn(96, callback=callback)
        return model, [p.detach().clone() for p in model.policy.parameters()]

    callback = SpikeStatsCallback(log_freq=10, batch_size=8)
    model, watched = run(callback)
    _, alone = run(None)
    assert callback.n_calls == 96
    assert all(torch.equal(a, b) for a, b in zip(watched, alone))
    values = callback.collect()
    for net in ("policy_net", "value_net"):
        assert 0.0 <= values[f"spikes/{net}/L0/rate"] <= 1.0 and values[f"spikes/{net}/L0/neg_thr"] > 0
    rollout = model.rollout_buffer
    rollout.reset()  # a rollout in progress: one step stored, the callback samples from it
    rollout.observations[0, 0] = [0.01, 0.02, 0.03, 0.04]
    rollout.pos = 1
    assert torch.equal(callback._observations(), torch.tensor([[0.01, 0.02, 0.03, 0.04]] * 8))


def test_energy_covers_the_actor_and_a_spiking_critic(trained):
    obs = sample_obs(trained[0]["ppo_ternary"], 4)
    report = estimate_energy(trained[0]["ppo_ternary"].policy, obs, verbose=False)
    assert [r["layer"] for r in report["layers"]] == ["mlp_extractor.policy_net.layers.0",
                                                      "mlp_extractor.policy_net.readout.linear"]
    assert report["layers"][0]["macs"] == 4 * 16 and report["layers"][1]["ann_macs"] == 16 * 16
    both = estimate_energy(trained[0]["ppo_ternary_spiking_critic"].policy, obs, verbose=False)
    assert {r["layer"].split(".")[1] for r in both["layers"]} == {"policy_net", "value_net"}


def test_export_nir_covers_the_actor():
    model = build("ppo_lif", policy_kwargs={**TINY, "neuron": "lif", "neuron_kwargs": {"reset": "zero"}})
    graph = export_nir(model.policy)
    assert {"layers_0", "layers_1", "readout_linear"} <= set(graph.nodes)
    assert graph.nodes["readout_linear"].weight.shape == (16, 16)
    with pytest.raises(NotImplementedError, match="no ternary"):
        export_nir(build("ppo_ternary").policy)
    spiking_critic = build("ppo_lif_spiking_critic", policy_kwargs={
        **TINY, "neuron": "lif", "neuron_kwargs": {"reset": "zero"}, "critic": "spiking"})
    with pytest.raises(ValueError, match="exactly one spiking network"):
        export_nir(spiking_critic.policy)
    assert "readout_linear" in export_nir(spiking_critic.policy.mlp_extractor.policy_net).nodes


class DictObsEnv(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (3,))})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"a": np.zeros(3, np.float32)}, {}

    def step(self, action):
        return {"a": np.zeros(3, np.float32)}, 0.0, True, False, {}


BAD_KWARGS = [
    ({"critic": "lstm"}, ValueError, "unknown critic 'lstm'; allowed: \\['mlp', 'spiking'\\]"),
    ({"surrogate": atan()}, TypeError, "surrogate must be JSON-plain"),
    ({"neuron": "izhikevich"}, ValueError, "unknown neuron 'izhikevich'"),
    ({"dueling": True}, TypeError, "unknown spiking policy kwargs \\['dueling'\\]"),
    ({"net_arch": []}, ValueError, "net_arch must be a non-empty list of layer widths"),
    ({"net_arch": {"pi": [8], "qf": [8]}}, ValueError, "net_arch has unknown keys \\['qf'\\]"),
    ({"net_arch": {"pi": [8], "vf": []}, "critic": "spiking"}, ValueError, "net_arch\\['vf'\\] must be a non-empty"),
    ({"body": "nature_cnn"}, ValueError, "body='nature_cnn' needs 3-D Box"),
    ({"preset": "datsqn"}, ValueError, "with preset='datsqn': body='nature_cnn' needs 3-D Box"),
    ({"preset": "nope"}, ValueError, "unknown preset 'nope'"),
    ({"image_scale": 0.5}, ValueError, "image_scale applies to the convolutional bodies"),
    ({"actor_lr_ratio": 0.0}, ValueError, "actor_lr_ratio must be >="),
    ({"readout": "population"}, ValueError, "unknown readout 'population'"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_KWARGS, ids=[str(b[0]) for b in BAD_KWARGS])
def test_bad_policy_kwargs_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        PPO(SpikingActorCriticPolicy, "CartPole-v1", policy_kwargs=kwargs)


def test_bad_spaces_raise_clear_errors():
    lr = lambda _: 1e-3  # noqa: E731
    with pytest.raises(TypeError, match="unsupported observation space Dict.*FlattenObservation"):
        PPO(SpikingActorCriticPolicy, DictObsEnv())
    with pytest.raises(TypeError, match="SpikingActorCriticPolicy needs a Box or Discrete or MultiDiscrete or "
                                        "MultiBinary action space"):
        SpikingActorCriticPolicy(spaces.Box(-1, 1, (3,)), spaces.Tuple([spaces.Discrete(2)]), lr)
    with pytest.raises(TypeError, match="unsupported observation space Discrete.*takes Box observations"):
        SpikingActorCriticPolicy(spaces.Discrete(4), spaces.Discrete(2), lr, encoder="population")
    with pytest.raises(ValueError, match="bias=False is not available with population coding"):
        SpikingActorCriticPolicy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), lr, encoder="population", bias=False)
    with pytest.raises(ValueError, match="needs a flat \\(1-D\\) Box"):
        SpikingActorCriticPolicy(spaces.Box(0, 1, (2, 3)), spaces.Discrete(2), lr, encoder="population")
    with pytest.raises(TypeError, match="SpikingMaskableActorCriticPolicy needs a Discrete, MultiDiscrete or "
                                        "MultiBinary action space"):
        SpikingMaskableActorCriticPolicy(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), lr)


def test_use_sde_is_supported_and_its_noise_reaches_the_spiking_read_out(trained):
    model = trained[0]["ppo_box_sde"]
    policy = model.policy
    assert policy.use_sde and policy.action_dist.__class__.__name__ == "StateDependentNoiseDistribution"
    assert policy.log_std.shape == (16, 1)  # latent_sde is the read-out's 16 values
    obs_t, _ = policy.obs_to_tensor(sample_obs(model, 5))
    policy.reset_noise(5)
    noisy = policy(obs_t)[0]
    assert not torch.equal(noisy, policy(obs_t, deterministic=True)[0])


def test_non_finite_observations_raise():
    model = build("ppo_ternary")
    with pytest.raises(ValueError, match="NaN or inf"):
        model.predict(np.array([[0.0, np.nan, 0.0, 0.0]], dtype=np.float32), deterministic=True)
    obs = torch.tensor([[0.0, np.inf, 0.0, 0.0]])
    for call in (model.policy, model.policy.predict_values, lambda o: model.policy.evaluate_actions(o, torch.zeros(1))):
        with pytest.raises(ValueError, match="NaN or inf"):
            call(obs)
