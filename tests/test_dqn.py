"""SpikingQPolicy / SpikingQRDQNPolicy with stock SB3 DQN and sb3-contrib QR-DQN (tiny budgets)."""

import copy
import json
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, IdentityEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import polyak_update

from snnrl_sb3 import SpikingCnnQPolicy, SpikingQNetwork, SpikingQPolicy, SpikingQRDQNPolicy, atan
from snnrl_sb3.config import SPIKING_KWARGS
from snnrl_sb3.dqn import DuelingReadout, ImageInput


class GridEnv(gym.Env):
    """MinAtar-shaped: 10x10x4 bool, channels last (not an SB3 image space)."""

    observation_space = spaces.Box(0.0, 1.0, (10, 10, 4), dtype=bool)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.random((10, 10, 4)) < 0.2, {}

    def step(self, action):
        self.t += 1
        return self.np_random.random((10, 10, 4)) < 0.2, float(action == 1), self.t >= 20, False, {}


class BoxActionEnv(IdentityEnv):
    def __init__(self):
        super().__init__(space=spaces.Box(-1, 1, (2,)))


class MultiDiscreteObsEnv(gym.Env):
    """MultiDiscrete observations (SB3 one-hot encodes them; their size arrives as np.int64)."""

    observation_space = spaces.MultiDiscrete([3, 4])
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action == 0), self.t >= 10, False, {}


class DictObsEnv(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (3,))})
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"a": np.zeros(3, np.float32)}, {}

    def step(self, action):
        return {"a": np.zeros(3, np.float32)}, 0.0, True, False, {}


def make_env(kind):
    if kind == "cartpole":
        return gym.make("CartPole-v1")
    if kind == "image":
        return FakeImageEnv(action_dim=3, screen_height=40, screen_width=40, n_channels=1)
    if kind == "grid":
        return GridEnv()
    if kind == "discrete_obs":
        return IdentityEnv(dim=4)
    if kind == "multi_discrete_obs":
        return MultiDiscreteObsEnv()
    raise ValueError(kind)


# (name, algorithm, policy, env kind, policy kwargs)
VARIANTS = [
    ("mlp_default", DQN, SpikingQPolicy, "cartpole", {}),
    ("mlp_lif", DQN, SpikingQPolicy, "cartpole", {"neuron": "lif", "surrogate": "fast_sigmoid"}),
    ("mlp_symmetric", DQN, SpikingQPolicy, "cartpole", {"neuron": "symmetric_ternary"}),
    ("mlp_current_lif", DQN, SpikingQPolicy, "cartpole", {"neuron": "current_lif", "neuron_kwargs": {"threshold": 0.5}}),
    ("mlp_ternary_trapezoid", DQN, SpikingQPolicy, "cartpole",
     {"neuron": "ternary", "neuron_kwargs": {"neg_threshold": 1.5}, "surrogate": "trapezoid",
      "surrogate_kwargs": {"w1": 0.2, "w2": 0.6}}),
    ("mlp_spike_count", DQN, SpikingQPolicy, "cartpole", {"readout": "spike_count", "num_steps": 3}),
    ("mlp_membrane_mean", DQN, SpikingQPolicy, "cartpole", {"readout": "membrane_mean"}),
    ("mlp_membrane_last", DQN, SpikingQPolicy, "cartpole", {"readout": "membrane_last", "readout_kwargs": {"beta": 0.5}}),
    ("mlp_dueling", DQN, SpikingQPolicy, "cartpole", {"dueling": True}),
    ("discrete_obs", DQN, SpikingQPolicy, "discrete_obs", {"num_steps": 2}),
    ("multi_discrete_obs", DQN, SpikingQPolicy, "multi_discrete_obs", {"num_steps": 2}),
    ("qrdqn_multi_discrete_obs", QRDQN, SpikingQRDQNPolicy, "multi_discrete_obs", {"num_steps": 2, "n_quantiles": 3}),
    ("cnn_bernoulli", DQN, SpikingCnnQPolicy, "image", {"num_steps": 6, "encoder": "bernoulli", "net_arch": [32]}),
    ("cnn_auto_direct", DQN, SpikingQPolicy, "image", {"num_steps": 2, "net_arch": [32]}),
    ("small_cnn_grid", DQN, SpikingQPolicy, "grid", {"num_steps": 2}),
    ("qrdqn_mlp", QRDQN, SpikingQRDQNPolicy, "cartpole", {"n_quantiles": 5}),
    ("qrdqn_dueling", QRDQN, SpikingQRDQNPolicy, "cartpole", {"n_quantiles": 5, "dueling": True, "neuron": "lif"}),
    ("qrdqn_cnn_bernoulli", QRDQN, SpikingQRDQNPolicy, "image",
     {"n_quantiles": 3, "num_steps": 2, "encoder": "bernoulli", "net_arch": [16]}),
]
IDS = [v[0] for v in VARIANTS]


def build(algo, policy, env_kind, kwargs, **overrides):
    return make_tiny_model(algo.__name__, kwargs, env=make_env(env_kind), policy=policy,
                           **{"learning_starts": 30, **overrides})


def sample_obs(model, n=7, seed=0):
    space = model.observation_space
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, run_fresh):
    """Every variant trained for a few steps and saved; loaded back in ONE fresh process."""
    folder = tmp_path_factory.mktemp("dqn")
    models, paths = {}, {}
    torch.set_num_threads(1)
    for name, algo, policy, env_kind, kwargs in VARIANTS:
        model = build(algo, policy, env_kind, kwargs)
        model.learn(80)
        models[name] = model
        paths[name] = str(folder / f"{name}.zip")
        model.save(paths[name])
        np.save(folder / f"{name}_obs.npy", sample_obs(model))
    script = (
        "import json, sys, numpy as np, torch\n"
        "from stable_baselines3 import DQN\nfrom sb3_contrib import QRDQN\n"
        "torch.set_num_threads(1)\n"
        "jobs = json.loads(sys.argv[1]); out = {}\n"
        "for name, (algo, path) in jobs.items():\n"
        "    model = {'DQN': DQN, 'QRDQN': QRDQN}[algo].load(path)\n"
        "    obs = np.load(path[:-4] + '_obs.npy')\n"
        "    out[name] = [model.predict(obs, deterministic=True)[0].tolist(),\n"
        "                 type(model.policy).__name__]\n"
        "print('RESULT' + json.dumps(out))\n"
    )
    jobs = {name: (algo.__name__, paths[name]) for name, algo, *_ in VARIANTS}
    fresh = json.loads(run_fresh(script, json.dumps(jobs)).split("RESULT", 1)[1].splitlines()[0])
    return models, paths, fresh, folder


@pytest.mark.parametrize("name", IDS)
def test_learn_save_load_in_fresh_process_gives_same_greedy_actions(trained, name):
    models, paths, fresh, folder = trained
    model = models[name]
    obs = np.load(folder / f"{name}_obs.npy")
    actions, _ = model.predict(obs, deterministic=True)
    assert fresh[name][0] == actions.tolist()
    assert fresh[name][1] == type(model.policy).__name__


@pytest.mark.parametrize("name", IDS)
def test_deterministic_predict_is_batch_invariant_and_repeatable(trained, name):
    model = trained[0][name]
    obs = np.load(trained[3] / f"{name}_obs.npy")
    batched, _ = model.predict(obs, deterministic=True)
    one_by_one = [int(model.predict(o, deterministic=True)[0]) for o in obs]
    assert batched.tolist() == one_by_one
    assert model.predict(obs, deterministic=True)[0].tolist() == batched.tolist()


@pytest.mark.parametrize("name", IDS)
def test_policy_save_load_and_pickle(trained, name, tmp_path):
    model = trained[0][name]
    obs = np.load(trained[3] / f"{name}_obs.npy")
    expected = model.predict(obs, deterministic=True)[0]
    model.policy.save(tmp_path / "policy.pt")
    policy = type(model.policy).load(tmp_path / "policy.pt")
    assert policy.predict(obs, deterministic=True)[0].tolist() == expected.tolist()
    net = model.q_net if isinstance(model, DQN) else model.quantile_net
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        obs_t = model.policy.obs_to_tensor(obs)[0]
        assert torch.equal(clone._predict(obs_t, deterministic=True), net._predict(obs_t, deterministic=True))


@pytest.mark.parametrize("name", IDS)
def test_target_network_receives_all_parameters_including_thresholds(trained, name):
    model = trained[0][name]
    online = model.q_net if isinstance(model, DQN) else model.quantile_net
    target = model.q_net_target if isinstance(model, DQN) else model.quantile_net_target
    polyak_update(online.parameters(), target.parameters(), 1.0)  # what SB3's target update does
    online_params, target_params = dict(online.named_parameters()), dict(target.named_parameters())
    assert online_params.keys() == target_params.keys()
    for key, value in online_params.items():
        assert torch.equal(value, target_params[key]), key
    if model.policy_kwargs.get("neuron", "ternary") == "ternary":
        assert any(key.endswith("neg.rho") for key in target_params)


def test_trainable_threshold_learns_and_reaches_target_net():
    model = build(DQN, SpikingQPolicy, "cartpole", {"net_arch": [16]}, target_update_interval=1, tau=1.0,
                  gradient_steps=4)
    before = model.q_net.q_net.layers[1].neg.rho.detach().clone()
    model.learn(120)
    rho = model.q_net.q_net.layers[1].neg.rho
    assert not torch.equal(rho.detach(), before)  # the threshold was trained ...
    target_rho = model.q_net_target.q_net.layers[1].neg.rho
    model.policy.q_net_target.load_state_dict(model.q_net.state_dict())
    assert torch.equal(rho.detach(), target_rho.detach())  # ... and is synced like any parameter


@pytest.mark.parametrize("name", ["mlp_default", "cnn_bernoulli", "qrdqn_mlp"])
def test_train_and_eval_mode(trained, name):
    model = trained[0][name]
    policy = model.policy
    obs_t = policy.obs_to_tensor(np.load(trained[3] / f"{name}_obs.npy"))[0]
    net = model.q_net if isinstance(model, DQN) else model.quantile_net
    policy.set_training_mode(True)
    assert net.training and all(m.training for m in net.modules())
    train_values = net(obs_t, deterministic=True)
    policy.set_training_mode(False)
    assert not net.training and not any(m.training for m in net.modules())
    assert torch.equal(net(obs_t, deterministic=True), train_values)  # no mode-dependent layers


def test_forward_is_markov_and_bernoulli_is_stochastic_only_when_asked(trained):
    direct = trained[0]["mlp_default"].q_net
    obs_t = torch.randn(5, 4)
    assert torch.equal(direct(obs_t), direct(obs_t))  # zero state every call
    torch.testing.assert_close(direct(obs_t)[2:3], direct(obs_t[2:3]))  # batch size may change BLAS rounding
    bern = trained[0]["cnn_bernoulli"]
    img = bern.policy.obs_to_tensor(sample_obs(bern, 4))[0]
    q_det = bern.q_net(img, deterministic=True)
    assert torch.equal(q_det, bern.q_net(img, deterministic=True))
    torch.testing.assert_close(q_det[1:2], bern.q_net(img[1:2], deterministic=True))  # frozen noise
    assert bern.q_net.q_net.spike_trains(img.float() / 255).abs().sum() > 0  # the body is not silent
    assert not torch.equal(bern.q_net(img), bern.q_net(img))  # fresh noise when not deterministic


def test_online_and_target_draw_the_same_frozen_noise():
    model = build(DQN, SpikingQPolicy, "image", {"num_steps": 2, "encoder": "bernoulli", "net_arch": [8]})
    online, target = model.q_net.q_net.encoder, model.q_net_target.q_net.encoder
    assert online.seed == target.seed
    x = torch.rand(3, 1, 36, 36)
    assert torch.equal(online(x, 4, deterministic=True), target(x, 4, deterministic=True))
    assert model.policy.state_dict()["q_net.q_net.encoder.noise_seed"].dtype == torch.int64
    fixed = build(DQN, SpikingQPolicy, "image",
                  {"num_steps": 2, "encoder": "bernoulli", "encoder_kwargs": {"seed": 7}, "net_arch": [8]})
    assert fixed.q_net.q_net.encoder.seed == fixed.q_net_target.q_net.encoder.seed == 7


def test_constructor_parameters_are_json_plain_and_complete():
    model = build(DQN, SpikingQPolicy, "cartpole", {"neuron": "lif", "num_steps": 3, "dueling": True,
                                                    "readout_kwargs": {"beta": 0.5}})
    data = model.policy._get_constructor_parameters()
    spiking = {k: data[k] for k in (*SPIKING_KWARGS, "dueling", "body", "init")}
    assert json.loads(json.dumps(spiking)) == spiking
    assert spiking == {"num_steps": 3, "neuron": "lif", "neuron_kwargs": None, "surrogate": None,
                       "surrogate_kwargs": None, "encoder": "direct", "encoder_kwargs": None,
                       "readout": "membrane_max", "readout_kwargs": {"beta": 0.5}, "backend": "eager",
                       "dueling": True, "body": "auto", "init": "auto"}
    assert isinstance(model.q_net.q_net.readout, DuelingReadout)


def test_kernel_backend_is_a_saved_policy_kwarg(tmp_path):
    model = build(DQN, SpikingQPolicy, "cartpole", {"num_steps": 3, "backend": "compile"})
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip")
    for net in (loaded.q_net, loaded.q_net_target):
        backends = {m.backend for m in net.modules() if hasattr(m, "backend")}
        assert backends == {"compile"}


def test_default_bodies_and_net_arch():
    cart = build(DQN, SpikingQPolicy, "cartpole", {})
    assert cart.policy.net_arch == [64, 64] and isinstance(cart.q_net, SpikingQNetwork)
    img = build(DQN, SpikingQPolicy, "image", {"num_steps": 1})
    assert img.policy.net_arch == [512] and isinstance(img.q_net.features_extractor, ImageInput)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in img.q_net.modules()) == 3
    grid = build(DQN, SpikingQPolicy, "grid", {"num_steps": 1})
    convs = [m for m in grid.q_net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert grid.policy.net_arch == [128] and [(c.out_channels, c.kernel_size) for c in convs] == [(16, (3, 3))]
    assert grid.q_net.features_extractor.channels_last


@pytest.mark.parametrize("env_kind,num_steps", [("image", 8), ("grid", 8)])
def test_convolutional_bodies_spike_in_every_layer_at_init(env_kind, num_steps):
    from snnrl_sb3.kernels import MultiStepNeuron

    model = build(DQN, SpikingQPolicy, env_kind, {"num_steps": num_steps})
    net = model.q_net.q_net
    rates = []
    hooks = [m.register_forward_hook(lambda m, i, o: rates.append(o.abs().mean().item()))
             for m in net.modules() if isinstance(m, MultiStepNeuron)]
    model.q_net(model.policy.obs_to_tensor(sample_obs(model, 4))[0])
    for h in hooks:
        h.remove()
    assert len(rates) == (4 if env_kind == "image" else 2) and min(rates) > 0.02, rates


def test_evaluate_policy_with_vec_env():
    venv = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = DQN(SpikingQPolicy, venv, learning_starts=30, train_freq=8, gradient_steps=2, batch_size=16,
                buffer_size=500, seed=0, policy_kwargs={"num_steps": 2, "net_arch": [16]})
    model.learn(60)
    rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=4, return_episode_rewards=True)
    assert len(rewards) == len(lengths) == 4
    assert rewards == [float(n) for n in lengths]  # CartPole pays 1 per step: whole episodes were scored


# ---- bad input: clear errors naming the problem ----

BAD_KWARGS = [
    ({"num_steps": 0}, ValueError, "num_steps must be >= 1"),
    ({"num_steps": 2.5}, TypeError, "num_steps must be an int"),
    ({"num_steps": 10**7}, ValueError, "num_steps must be <= 4096"),
    ({"neuron": "izhikevich"}, ValueError, "unknown neuron 'izhikevich'"),
    ({"surrogate": "erf"}, ValueError, "unknown surrogate 'erf'"),
    ({"surrogate": "atan", "surrogate_kwargs": {"width": 1}}, TypeError, "bad parameters .* surrogate 'atan'"),
    ({"encoder": "poisson"}, ValueError, "unknown encoder 'poisson'"),
    ({"encoder": "population"}, ValueError, "unknown encoder 'population'; allowed: \\['bernoulli', 'direct'\\]"),
    ({"encoder_kwargs": {"seed": 1}}, TypeError, "encoder_kwargs has unknown keys \\['seed'\\]: encoder 'direct' "
                                                 "takes no parameters"),
    ({"encoder": "bernoulli", "encoder_kwargs": {"seed": 2**70}}, ValueError, "seed'\\] must be <= 2\\*\\*63 - 1"),
    ({"encoder": "bernoulli", "encoder_kwargs": {"seed": 3.7}}, TypeError, "seed'\\] must be an int"),
    ({"readout": "softmax"}, ValueError, "unknown readout 'softmax'"),
    ({"readout": "spike_count", "readout_kwargs": {"beta": 0.5}}, TypeError,
     "readout_kwargs has unknown keys \\['beta'\\]: readout 'spike_count' takes no parameters"),
    ({"readout_kwargs": {"beta": -0.1}}, ValueError, "readout_kwargs\\['beta'\\] must be >= 0.0"),
    ({"body": "resnet"}, ValueError, "unknown body 'resnet'"),
    ({"init": "xavier"}, ValueError, "unknown init 'xavier'"),
    ({"body": "nature_cnn"}, ValueError, "body='nature_cnn' needs 3-D Box"),
    ({"surrogate": atan()}, TypeError, "surrogate must be JSON-plain"),
    ({"neuron_kwargs": {"beta": float("nan")}}, ValueError, "beta must be finite"),
    ({"neuron_kwargs": {"threshold": float("inf")}}, ValueError, "threshold must be finite"),
    ({"neuron_kwargs": {"beta": 1.5}}, ValueError, "beta must be <= 1.0"),
    ({"neuron_kwargs": {"neg_threshold": -1.0}}, ValueError, "neg_threshold must be >"),
    ({"net_arch": []}, ValueError, "net_arch must be a non-empty list"),
    ({"backend": "cuda"}, ValueError, "unknown backend 'cuda'"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_KWARGS, ids=[str(b[0]) for b in BAD_KWARGS])
def test_bad_policy_kwargs_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DQN(SpikingQPolicy, "CartPole-v1", policy_kwargs=kwargs)


def test_unsupported_spaces():
    lr = lambda _: 1e-3  # noqa: E731
    with pytest.raises(TypeError, match="SpikingQPolicy needs a Discrete action space"):
        SpikingQPolicy(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), lr)
    with pytest.raises(TypeError, match="unsupported observation space Dict"):
        SpikingQPolicy(spaces.Dict({"a": spaces.Box(-1, 1, (3,))}), spaces.Discrete(2), lr)
    with pytest.raises(TypeError, match="unsupported observation space Dict"):
        DQN(SpikingQPolicy, DictObsEnv())
    with pytest.raises(TypeError, match="Discrete action space"):
        SpikingQRDQNPolicy(spaces.Box(-1, 1, (3,)), spaces.MultiDiscrete([2, 2]), lr)
    # stock DQN checks its action space itself, before building any policy
    with pytest.raises(AssertionError, match="only supports"):
        DQN(SpikingQPolicy, BoxActionEnv())


def test_non_finite_observations_raise():
    model = build(DQN, SpikingQPolicy, "cartpole", {"num_steps": 2})
    bad = np.array([[0.0, np.nan, 0.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.predict(bad, deterministic=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.q_net(torch.tensor([[0.0, np.inf, 0.0, 0.0]]))


def test_bernoulli_needs_unit_interval_inputs():
    model = build(DQN, SpikingQPolicy, "cartpole", {"num_steps": 2, "encoder": "bernoulli"})
    with pytest.raises(ValueError, match=r"BernoulliEncoder needs inputs in \[0, 1\]"):
        model.predict(np.array([[0.5, -2.0, 0.0, 0.0]], dtype=np.float32), deterministic=True)


def test_features_extractor_class_with_conv_body_is_rejected():
    from stable_baselines3.common.torch_layers import NatureCNN

    with pytest.raises(ValueError, match="has its own convolutions"):
        DQN(SpikingQPolicy, make_env("image"), buffer_size=10,
            policy_kwargs={"features_extractor_class": NatureCNN})
    # with body="mlp", an ANN features extractor in front of the spiking MLP is allowed (hybrid)
    model = DQN(SpikingQPolicy, make_env("image"), buffer_size=10,
                policy_kwargs={"features_extractor_class": NatureCNN, "body": "mlp", "net_arch": [16],
                               "num_steps": 2})
    obs = sample_obs(model, 3)
    assert type(model.q_net.features_extractor).__name__ == "NatureCNN"
    batched = model.predict(obs, deterministic=True)[0].tolist()
    assert batched == [int(model.predict(o, deterministic=True)[0]) for o in obs]


def test_randomised_state_dict_round_trip_is_consistent():
    # SB3's own save/load tests overwrite every state-dict entry with rand_like before saving
    model = build(DQN, SpikingQPolicy, "image", {"num_steps": 4, "encoder": "bernoulli", "net_arch": [8]})
    state = {k: torch.rand_like(v) if v.is_floating_point() else v for k, v in model.policy.state_dict().items()}
    model.policy.load_state_dict(state)
    clone = build(DQN, SpikingQPolicy, "image", {"num_steps": 4, "encoder": "bernoulli", "net_arch": [8]})
    clone.policy.load_state_dict(model.policy.state_dict())
    obs = sample_obs(model, 6)
    assert clone.q_net.q_net.encoder.seed == model.q_net.q_net.encoder.seed
    assert clone.predict(obs, deterministic=True)[0].tolist() == model.predict(obs, deterministic=True)[0].tolist()


def test_minatar_cnn_is_the_papers_ann_body():
    """conv 16@3x3 stride 1 -> ReLU -> FC 128 -> ReLU over channels-last 10x10xC grids."""
    from gymnasium import spaces as gym_spaces

    from snnrl_sb3 import MinAtarCNN

    space = gym_spaces.Box(0, 1, (10, 10, 4), dtype=bool)
    body = MinAtarCNN(space)
    conv, _, _, fc, _ = body.net
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (4, 16, (3, 3), (1, 1))
    assert (fc.in_features, fc.out_features, body.features_dim) == (16 * 8 * 8, 128, 128)
    obs = torch.rand(5, 10, 10, 4) > 0.5
    expected = body.net(obs.float().permute(0, 3, 1, 2))
    assert torch.equal(body(obs), expected)
    with pytest.raises(ValueError, match="features_dim"):
        MinAtarCNN(space, features_dim=0)
    with pytest.raises(ValueError, match="at least 3x3"):
        MinAtarCNN(gym_spaces.Box(0, 1, (2, 2, 4), dtype=bool))
