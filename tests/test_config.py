"""The one spiking configuration shared by every policy family: vocabulary, old spellings, conflicts,
persistence (encoder seeds, version-0.1 zips) and refusals of corrupted or non-finite input."""

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from gymnasium import spaces
from stable_baselines3 import DQN, TD3
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file

from snnrl_sb3 import PopSpikingTD3Policy, SpikingConfig
from snnrl_sb3.coding import BernoulliEncoder

DATA = Path(__file__).parent / "data" / "v0_1"
Q_TINY = dict(num_steps=3, net_arch=[8])
POP_TINY = dict(num_steps=3, net_arch=[8], encoder_kwargs={"pop_dim": 3})


def image_env():
    return FakeImageEnv(action_dim=3, screen_height=36, screen_width=36, n_channels=1)


def model_of(algo, policy_kwargs, seed=0, env=None):
    extra = {"n_quantiles": 3} if algo == "QRDQN" else {}
    return make_tiny_model(algo, {**policy_kwargs, **extra}, env=env, seed=seed, buffer_size=10)


def network(model):
    if hasattr(model, "actor"):
        return model.actor.snn
    return (model.q_net if hasattr(model, "q_net") else model.quantile_net).q_net


# ------------------------------------------------------------------ the value object


def test_config_defaults_per_family_and_round_trip():
    q = SpikingConfig.from_kwargs({})
    assert (q.num_steps, q.neuron, q.encoder, q.readout, q.backend) == (8, "ternary", "direct", "membrane_max", "eager")
    pop = SpikingConfig.from_kwargs({}, family="population")
    assert (pop.num_steps, pop.neuron, pop.encoder, pop.readout) == (5, "current_lif", "population", "population")
    cfg = SpikingConfig.from_kwargs({"neuron": "lif", "neuron_kwargs": {"beta": 0.7}, "surrogate": "trapezoid",
                                     "surrogate_kwargs": {"w1": 0.1, "w2": 0.3}, "readout": "membrane_last",
                                     "readout_kwargs": {"beta": 0.5}, "encoder": "bernoulli",
                                     "encoder_kwargs": {"seed": 2**62}})
    kwargs = cfg.to_kwargs()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SpikingConfig.from_kwargs(kwargs) == cfg
    with pytest.raises(AttributeError):
        cfg.num_steps = 3  # frozen
    kwargs["neuron_kwargs"]["beta"] = 0.1  # to_kwargs hands out copies
    assert cfg.neuron_kwargs == {"beta": 0.7}


def test_online_and_target_networks_get_the_same_config_object():
    model = model_of("DQN", Q_TINY)
    assert model.q_net.spiking_config is model.q_net_target.spiking_config is model.policy.spiking_config
    actor = model_of("TD3", POP_TINY)
    assert actor.actor.spiking_config is actor.actor_target.spiking_config is actor.policy.spiking_config


# ------------------------------------------------------------------ old spellings and conflicts

OLD_AND_NEW = [
    ("DQN", {"beta": 0.8, "threshold": 1.2, "neg_threshold": 1.5, "learn_neg_threshold": False,
             "decoder": "membrane_last", "decoder_beta": 0.7},
     {"neuron_kwargs": {"beta": 0.8, "threshold": 1.2, "neg_threshold": 1.5, "learn_neg_threshold": False},
      "readout": "membrane_last", "readout_kwargs": {"beta": 0.7}}),
    ("DQN", {"neuron_kwargs": {"surrogate": "trapezoid", "backend": "compile"}},
     {"surrogate": "trapezoid", "backend": "compile"}),
    ("DQN", {"decoder": "spike_count", "decoder_beta": 0.9}, {"readout": "spike_count"}),  # 0.1 ignored it
    ("TD3", {"pop_dim": 4, "decoder_pop_dim": 2, "encoding": "bernoulli", "mean_range": [-2, 2], "std": 0.5,
             "encoder_threshold": 0.99},
     {"encoder_kwargs": {"pop_dim": 4, "spikes": "bernoulli", "mean_range": [-2, 2], "std": 0.5, "threshold": 0.99},
      "readout_kwargs": {"pop_dim": 2}}),
    ("SAC", {"pop_dim": 4}, {"encoder_kwargs": {"pop_dim": 4}, "readout_kwargs": {"pop_dim": 4}}),
]


@pytest.mark.parametrize("algo,old,new", OLD_AND_NEW, ids=[f"{a}-{sorted(o)}" for a, o, _ in OLD_AND_NEW])
def test_old_spellings_warn_and_build_the_same_network(algo, old, new):
    seeded = {"encoder_kwargs": {"seed": 5}} if old.get("encoding") == "bernoulli" else {}
    tiny = {k: v for k, v in (Q_TINY if algo == "DQN" else {"num_steps": 3, "net_arch": [8]}).items()}
    with pytest.warns(DeprecationWarning, match="deprecated spiking policy kwargs"):
        before = model_of(algo, {**tiny, **old, **seeded})
    new = json.loads(json.dumps(new))
    if seeded:
        new["encoder_kwargs"]["seed"] = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        after = model_of(algo, {**tiny, **new})
    assert before.policy.spiking_config == after.policy.spiking_config
    assert repr(network(before)) == repr(network(after))
    for (k1, v1), (k2, v2) in zip(network(before).state_dict().items(), network(after).state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1  # same algorithm seed: same init


CONFLICTS = [
    ("DQN", {"beta": 0.8, "neuron_kwargs": {"beta": 0.5}}, "beta=0.8 conflicts with neuron_kwargs\\['beta'\\]=0.5"),
    ("DQN", {"learn_neg_threshold": False, "neuron_kwargs": {"learn_neg_threshold": True}},
     "learn_neg_threshold=False conflicts"),
    ("DQN", {"surrogate": "atan", "neuron_kwargs": {"surrogate": "trapezoid"}},
     "neuron_kwargs\\['surrogate'\\]='trapezoid' conflicts with surrogate='atan'"),
    ("DQN", {"decoder": "spike_count", "readout": "membrane_max"}, "decoder='spike_count' conflicts with readout"),
    ("DQN", {"backend": "eager", "neuron_kwargs": {"backend": "compile"}}, "conflicts with backend='eager'"),
    ("TD3", {"threshold": 0.4, "neuron_kwargs": {"threshold": 0.6}}, "threshold=0.4 conflicts"),
    ("TD3", {"pop_dim": 4, "encoder_kwargs": {"pop_dim": 5}}, "pop_dim=4 conflicts with encoder_kwargs"),
    ("SAC", {"encoding": "regular", "encoder_kwargs": {"spikes": "bernoulli"}}, "encoding='regular' conflicts"),
]


@pytest.mark.parametrize("algo,kwargs,match", CONFLICTS, ids=[str(c[1]) for c in CONFLICTS])
def test_the_same_setting_in_two_places_is_an_error(algo, kwargs, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match=match):
            model_of(algo, kwargs)


KIND_CHANGES = [
    ({"neuron": "lif", "neuron_kwargs": {"neg_threshold": 2.0}}, "neg_threshold"),
    ({"neuron": "lif", "neuron_kwargs": {"symmetric": True}}, "symmetric"),
    ({"neuron": "ternary", "neuron_kwargs": {"symmetric": True}}, "symmetric"),
    ({"neuron": "ternary", "neuron_kwargs": {"neg_threshold": None}}, "neg_threshold"),
    ({"neuron": "lif", "neg_threshold": 2.0}, "neg_threshold"),
]


@pytest.mark.parametrize("algo", ["DQN", "TD3"])
@pytest.mark.parametrize("kwargs,name", KIND_CHANGES, ids=[str(k[0]) for k in KIND_CHANGES])
def test_a_kwarg_never_silently_changes_the_neuron_kind(algo, kwargs, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises((TypeError, ValueError), match=name):
            model_of(algo, {**kwargs, "num_steps": 2})


# ------------------------------------------------------------------ seeds: encoder state in the state dict


@pytest.mark.parametrize("seed", [0, 2**31 - 1, 2**40, 2**63 - 1])
def test_bernoulli_seed_is_kept_exactly_through_save_load_and_target(tmp_path, seed):
    model = model_of("DQN", {**Q_TINY, "encoder": "bernoulli", "encoder_kwargs": {"seed": seed}}, env=image_env())
    assert model.q_net.q_net.encoder.seed == model.q_net_target.q_net.encoder.seed == seed
    model.save(tmp_path / "m.zip")
    loaded = DQN.load(tmp_path / "m.zip")
    assert loaded.q_net.q_net.encoder.seed == loaded.q_net_target.q_net.encoder.seed == seed


@pytest.mark.parametrize("value", [torch.tensor(-5), torch.tensor(3.7, dtype=torch.float64),
                                   torch.tensor(float("nan")), torch.tensor([1, 2])],
                         ids=["negative", "float", "nan", "two"])
def test_tampered_seed_in_a_state_dict_is_refused(value):
    encoder = BernoulliEncoder(seed=3)
    with pytest.raises(ValueError, match="must be one int64 seed in \\[0, 2\\*\\*63 - 1\\].*corrupted"):
        encoder.load_state_dict({"noise_seed": value})
    assert encoder.seed == 3


def test_tampered_seed_in_a_saved_zip_is_refused(tmp_path):
    model = model_of("DQN", {**Q_TINY, "encoder": "bernoulli"}, env=image_env())
    model.save(tmp_path / "m.zip")
    data, params, variables = load_from_zip_file(tmp_path / "m.zip")
    params["policy"]["q_net.q_net.encoder.noise_seed"] = torch.tensor(3.7, dtype=torch.float64)
    save_to_zip_file(tmp_path / "bad.zip", data=data, params=params, pytorch_variables=variables)
    with pytest.raises(ValueError, match="noise_seed.*corrupted"):
        DQN.load(tmp_path / "bad.zip")
    assert DQN.load(tmp_path / "m.zip").q_net.q_net.encoder.seed == model.q_net.q_net.encoder.seed


def test_version_0_1_nan_encoder_seed_is_refused():
    model = model_of("DQN", {**Q_TINY, "encoder": "bernoulli"}, env=image_env())
    state = dict(model.q_net.state_dict())
    del state["q_net.encoder.noise_seed"]
    state["encoder_seed"] = torch.tensor(float("nan"), dtype=torch.float64)
    with pytest.raises(ValueError, match="encoder_seed.*integer seed"):
        model.q_net.load_state_dict(state)


def test_non_finite_parameters_are_refused_on_load(tmp_path):
    model = model_of("DQN", Q_TINY)
    model.save(tmp_path / "ok.zip")
    with torch.no_grad():
        model.q_net.q_net.layers[1].neg.rho.fill_(float("nan"))
    model.save(tmp_path / "nan.zip")
    with pytest.raises(ValueError, match="refusing to load 'q_net.q_net.layers.1.neg.rho': it holds NaN"):
        DQN.load(tmp_path / "nan.zip")
    DQN.load(tmp_path / "ok.zip")  # the same file without NaN loads
    actor = model_of("TD3", POP_TINY)
    with torch.no_grad():
        actor.actor.snn.readout.weight[0, 0] = float("inf")
    actor.save(tmp_path / "inf.zip")
    with pytest.raises(ValueError, match="refusing to load 'actor.snn.readout.weight'"):
        TD3.load(tmp_path / "inf.zip")


# ------------------------------------------------------------------ save/load in a fresh process, every algorithm

ENCODER_CASES = {
    "DQN": [{}, {"encoder": "bernoulli"}, {"encoder": "bernoulli", "encoder_kwargs": {"seed": 2**31 - 1}}],
    "QRDQN": [{"encoder": "bernoulli"}],
    "TD3": [{}, {"encoder_kwargs": {"pop_dim": 3, "spikes": "bernoulli"}},
            {"encoder_kwargs": {"pop_dim": 3, "spikes": "bernoulli", "seed": 2**40}}],
    "DDPG": [{"encoder_kwargs": {"pop_dim": 3, "spikes": "bernoulli"}}],
    "SAC": [{}, {"encoder_kwargs": {"pop_dim": 3, "spikes": "bernoulli"}},
            {"encoder_kwargs": {"pop_dim": 3, "spikes": "bernoulli", "seed": 9}}],
}
MATRIX = [(algo, kw) for algo, cases in ENCODER_CASES.items() for kw in cases]


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory, run_fresh):
    """Every (algorithm, encoder) built WITHOUT an algorithm seed, saved, and loaded in ONE fresh process."""
    folder = tmp_path_factory.mktemp("matrix")
    jobs, expected = {}, {}
    for i, (algo, kw) in enumerate(MATRIX):
        tiny = Q_TINY if algo in ("DQN", "QRDQN") else POP_TINY
        env = image_env() if algo in ("DQN", "QRDQN") and kw else None
        model = model_of(algo, {**tiny, **kw}, seed=None, env=env)
        obs = np.stack([model.observation_space.sample() for _ in range(12)])
        path = folder / f"{i}.zip"
        model.save(path)
        np.save(folder / f"{i}.npy", obs)
        jobs[str(i)] = (algo, str(path))
        net = network(model)
        expected[str(i)] = (model.predict(obs, deterministic=True)[0].tolist(),
                            _encoder_seed(net), _target_frozen_noise_equal(model))
    script = """
import json, sys, numpy as np, torch
from stable_baselines3 import DDPG, DQN, SAC, TD3
from sb3_contrib import QRDQN
torch.manual_seed(12345)  # a different global RNG than the one that built the models
out = {}
for key, (algo, path) in json.loads(sys.argv[1]).items():
    model = {"DQN": DQN, "QRDQN": QRDQN, "TD3": TD3, "DDPG": DDPG, "SAC": SAC}[algo].load(path)
    obs = np.load(path[:-4] + ".npy")
    out[key] = model.predict(obs, deterministic=True)[0].tolist()
print("RESULT" + json.dumps(out))
"""
    fresh = json.loads(run_fresh(script, json.dumps(jobs)).split("RESULT", 1)[1].splitlines()[0])
    return expected, fresh


def _encoder_seed(net):
    encoders = [m for m in net.modules() if isinstance(m, BernoulliEncoder)]
    return encoders[0].seed if encoders else None


def _target_frozen_noise_equal(model):
    target = next((getattr(model.policy, name) for name in ("q_net_target", "quantile_net_target", "actor_target")
                   if hasattr(model.policy, name)), None)
    if target is None:  # SAC has no target actor
        return True
    online = [m for m in network(model).modules() if isinstance(m, BernoulliEncoder)]
    copies = [m for m in target.modules() if isinstance(m, BernoulliEncoder)]
    x = torch.rand(2, 5)
    return all(torch.equal(a(x, 3, deterministic=True), b(x, 3, deterministic=True)) for a, b in zip(online, copies))


@pytest.mark.parametrize("index", range(len(MATRIX)), ids=[f"{a}-{json.dumps(k)}" for a, k in MATRIX])
def test_deterministic_actions_survive_save_load_in_a_fresh_process(reloaded, index):
    expected, fresh = reloaded
    actions, seed, target_same = expected[str(index)]
    assert fresh[str(index)] == actions
    assert target_same
    kw = MATRIX[index][1]
    bernoulli = kw.get("encoder") == "bernoulli" or kw.get("encoder_kwargs", {}).get("spikes") == "bernoulli"
    assert (seed is not None) == bernoulli
    if "seed" in kw.get("encoder_kwargs", {}):
        assert seed == kw["encoder_kwargs"]["seed"]


# ------------------------------------------------------------------ zips saved by version 0.1


def test_version_0_1_zips_load_with_the_same_actions(run_fresh):
    script = """
import json, sys, warnings, numpy as np
from pathlib import Path
from stable_baselines3 import DQN, SAC, TD3
folder = Path(sys.argv[1]); out = {}
for name, cls in [("dqn_bernoulli_unseeded", DQN), ("dqn_flat_kwargs", DQN), ("dqn_spike_count", DQN),
                  ("td3_bernoulli_old_kwargs", TD3), ("sac_bernoulli_unseeded", SAC)]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cls.load(folder / f"{name}.zip")
    obs = np.load(folder / f"{name}_obs.npy")
    out[name] = [model.predict(obs, deterministic=True)[0].tolist(),
                 sorted({type(w.message).__name__ for w in caught if "snnrl_sb3" in str(w.message)
                         or "deprecated spiking" in str(w.message)})]
print("RESULT" + json.dumps(out))
"""
    fresh = json.loads(run_fresh(script, str(DATA)).split("RESULT", 1)[1].splitlines()[0])
    expected = json.loads((DATA / "v0_1_expected_actions.json").read_text())
    for name in ("dqn_bernoulli_unseeded", "dqn_flat_kwargs", "dqn_spike_count", "td3_bernoulli_old_kwargs"):
        assert fresh[name][0] == expected[name], name
    assert fresh["dqn_flat_kwargs"][1] == ["DeprecationWarning"]
    # 0.1 never saved the seed of an unseeded Pop-SAN Bernoulli encoder: it loads, and says so
    assert "UserWarning" in fresh["sac_bernoulli_unseeded"][1]
    assert np.asarray(fresh["sac_bernoulli_unseeded"][0]).shape == np.asarray(expected["sac_bernoulli_unseeded"]).shape


# ------------------------------------------------------------------ inputs the actors cannot use


@pytest.mark.parametrize("algo", ["TD3", "SAC"])
def test_non_finite_observations_are_refused_by_the_actors(algo):
    model = model_of(algo, POP_TINY)
    with pytest.raises(ValueError, match="observation contains NaN or inf"):
        model.predict(np.array([np.nan, 0.5, 0.5], dtype=np.float32), deterministic=True)


def test_population_actor_warns_when_observations_leave_its_receptive_fields():
    env = gym.make("MountainCarContinuous-v0")
    env.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)  # declared unbounded
    model = TD3(PopSpikingTD3Policy, env, buffer_size=10, seed=0, policy_kwargs=POP_TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(np.array([0.5, -0.5], dtype=np.float32), deterministic=True)  # inside (-3, 3): silent
    far = np.array([[-100.0, 0.0], [100.0, 0.0], [1e4, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.actor(torch.as_tensor(far))  # the gradient path (training on replays) skips the check
    with pytest.warns(UserWarning, match="fall outside the receptive fields"):
        model.predict(far, deterministic=True)
