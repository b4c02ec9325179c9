"""Named presets of the seeds' systems: expansion, overrides, errors and persistence.

Whether each preset computes what its authors' code computes is checked against independent
re-implementations of the reference code in tests/test_reference_*.py."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from stable_baselines3 import DQN
from stable_baselines3.common.envs import FakeImageEnv

from snnrl_sb3 import presets as presets_module
from snnrl_sb3 import SpikingCnnQPolicy, SpikingQPolicy
from snnrl_sb3._validation import InvalidStateDictError
from snnrl_sb3.dqn import ImageInput
from snnrl_sb3.presets import PRESETS, apply_preset

Q_PRESETS = sorted(n for n, p in PRESETS.items() if p.family == "q")
POP_PRESETS = sorted(n for n, p in PRESETS.items() if p.family == "population")


def atari_env():
    return FakeImageEnv(action_dim=4, screen_height=84, screen_width=84, n_channels=4)


def q_model(preset, env=None, **kwargs):
    return make_tiny_model("DQN", {"preset": preset, **kwargs}, env=env or atari_env(), policy=SpikingCnnQPolicy,
                           buffer_size=10)


def _reload_in_a_fresh_process(algo, model, tmp_path, run_fresh):
    """Save ``model``, load it in a fresh process; assert identical deterministic actions there and return
    ``(actions, spiking_preset, actor_lr_ratio or None)`` of the loaded model."""
    obs = np.stack([model.observation_space.sample() for _ in range(4)])
    np.save(tmp_path / "obs.npy", obs)
    model.save(tmp_path / "m.zip")
    script = (f"import sys, json, numpy as np\nfrom stable_baselines3 import {algo}\nm = {algo}.load(sys.argv[1])\n"
              "print('RESULT' + json.dumps([m.predict(np.load(sys.argv[2]), deterministic=True)[0].tolist(), "
              "m.policy.spiking_preset, getattr(m.policy, 'actor_lr_ratio', None)]))")
    out = run_fresh(script, str(tmp_path / "m.zip"), str(tmp_path / "obs.npy"))
    actions, preset, ratio = json.loads(out.split("RESULT", 1)[1].splitlines()[0])
    assert actions == model.predict(obs, deterministic=True)[0].tolist()
    return actions, preset, ratio


def test_every_seed_system_has_a_preset():
    assert Q_PRESETS == ["datsqn", "dsqn", "dsqn_binary", "dtsqn"]
    assert POP_PRESETS == ["mdcsan", "popsan"]
    for preset in PRESETS.values():
        json.dumps(dict(preset.kwargs))  # JSON-plain: saved with the model
        assert preset.reference.startswith("github.com/")


@pytest.mark.parametrize("name", Q_PRESETS)
def test_q_presets_build_their_system(name):
    model = q_model(name, num_steps=2)
    preset = PRESETS[name].kwargs
    cfg = model.policy.spiking_config
    assert (cfg.neuron, cfg.readout, cfg.encoder) == (preset["neuron"], preset["readout"], preset["encoder"])
    assert cfg.num_steps == 2  # the override wins
    assert model.policy._policy_kwargs_extra == {"body": "nature_cnn", "dueling": False, "init": "torch",
                                                 "bias": preset["bias"], "image_scale": preset.get("image_scale")}
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.q_net.modules()) == 3
    assert model.policy._get_constructor_parameters()["preset"] == name


@pytest.mark.parametrize("name", POP_PRESETS)
def test_population_presets_build_their_system(name):
    model = make_tiny_model("TD3", {"preset": name, "net_arch": [8]})
    assert model.policy.spiking_config.neuron == PRESETS[name].kwargs["neuron"]
    assert model.policy.actor_lr_ratio == PRESETS[name].kwargs["actor_lr_ratio"]
    explicit = make_tiny_model("TD3", {"preset": name, "net_arch": [8], "actor_lr_ratio": 0.5})
    assert explicit.policy.actor_lr_ratio == 0.5


def test_overrides_merge_into_the_presets_own_choices():
    merged = apply_preset({"preset": "datsqn", "neuron_kwargs": {"neg_threshold": 1.0}}, "q")
    assert merged["neuron_kwargs"] == {**PRESETS["datsqn"].kwargs["neuron_kwargs"], "neg_threshold": 1.0}
    # a new neuron kind drops the preset's parameters of the old kind
    switched = apply_preset({"preset": "datsqn", "neuron": "lif"}, "q")
    assert switched["neuron"] == "lif" and "neuron_kwargs" not in switched
    # a new read-out drops the preset's read-out parameters
    assert "readout_kwargs" not in apply_preset({"preset": "dsqn", "readout": "spike_count"}, "q")
    assert apply_preset({"neuron": "lif"}, "q") == {"neuron": "lif"}  # no preset: unchanged


@pytest.mark.parametrize("kwargs,error,match", [
    ({"preset": "datsqm"}, ValueError, "unknown preset 'datsqm'; allowed: \\['datsqn', 'dsqn', 'dsqn_binary', 'dtsqn'\\]"),
    ({"preset": "popsan"}, ValueError, "preset 'popsan' is a 'population'-family system"),
    ({"preset": 3}, TypeError, "preset must be a string"),
    ({"preset": "dsqn_binary", "neuron_kwargs": {"neg_threshold": 2.0}}, TypeError,
     "with preset='dsqn_binary': bad parameters \\['neg_threshold'\\] for neuron 'lif'"),
    ({"preset": "dsqn", "encoder_kwargs": {"seed": 1}}, TypeError, "with preset='dsqn': encoder_kwargs has unknown"),
])
def test_bad_presets_and_overrides_that_make_no_sense_get_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        q_model(**{"preset": kwargs.pop("preset")}, **kwargs)


def test_td3_refuses_a_q_preset():
    with pytest.raises(ValueError, match="preset 'datsqn' is a 'q'-family system"):
        make_tiny_model("TD3", {"preset": "datsqn"})


def test_datsqn_evaluates_with_fresh_bernoulli_noise():
    # (with PyTorch's default init the untrained NatureCNN is silent past its first layer, so look at the encoder)
    x = torch.rand(3, 4, 84, 84)
    encoder = q_model("datsqn", num_steps=4).q_net.q_net.encoder
    assert not torch.equal(encoder(x, 4, deterministic=True), encoder(x, 4, deterministic=True))  # as the authors
    frozen = q_model("datsqn", num_steps=4, encoder_kwargs={"deterministic_noise": "frozen"}).q_net.q_net.encoder
    assert torch.equal(frozen(x, 4, deterministic=True), frozen(x, 4, deterministic=True))


@pytest.mark.parametrize("name", Q_PRESETS)
def test_presets_save_and_load_identically_in_a_fresh_process(name, tmp_path, run_fresh):
    model = q_model(name, num_steps=2, encoder_kwargs={"deterministic_noise": "frozen"}
                    if PRESETS[name].kwargs["encoder"] == "bernoulli" else None)
    preset = _reload_in_a_fresh_process("DQN", model, tmp_path, run_fresh)[1]
    assert preset == name


def test_a_preset_that_changed_since_saving_refuses_to_load(tmp_path, monkeypatch):
    model = q_model("dsqn", num_steps=2)
    model.save(tmp_path / "m.zip")
    changed = presets_module.Preset("dsqn", "q", {**PRESETS["dsqn"].kwargs, "readout": "membrane_last"},
                                    PRESETS["dsqn"].reference, PRESETS["dsqn"].description)
    monkeypatch.setitem(presets_module.PRESETS, "dsqn", changed)
    with pytest.raises(InvalidStateDictError, match="readout: saved 'membrane_max', now 'membrane_last'"):
        DQN.load(tmp_path / "m.zip")


def test_a_default_that_changed_since_saving_refuses_to_load(tmp_path, monkeypatch):
    from snnrl_sb3 import config

    model = make_tiny_model("DQN", {"num_steps": 2, "net_arch": [8]}, policy=SpikingQPolicy)
    model.save(tmp_path / "m.zip")
    q = config.FAMILIES["q"]
    monkeypatch.setitem(config.FAMILIES, "q", config.Family("q", {**q.defaults, "neuron": "lif"}, q.encoders,
                                                            q.readouts))
    with pytest.raises(InvalidStateDictError, match="neuron: saved 'ternary', now 'lif'"):
        DQN.load(tmp_path / "m.zip")


def test_an_unreadable_saved_configuration_is_refused():
    model = q_model("dsqn", num_steps=2)
    state = dict(model.policy.state_dict())
    state["_extra_state"] = torch.tensor([1, 2, 3], dtype=torch.uint8)
    with pytest.raises(InvalidStateDictError, match="'_extra_state'\\) is not readable"):
        model.policy.load_state_dict(state)


@pytest.mark.filterwarnings("ignore:observation dimensions")  # raw Pendulum: the presets expect VecNormalize
@pytest.mark.parametrize("name", POP_PRESETS)
def test_population_presets_save_and_load_identically_in_a_fresh_process(name, tmp_path, run_fresh):
    model = make_tiny_model("TD3", {"preset": name, "net_arch": [8]})
    model.learn(30)
    preset, ratio = _reload_in_a_fresh_process("TD3", model, tmp_path, run_fresh)[1:]
    assert (preset, ratio) == (name, 0.1)


def test_bias_free_synapses_and_image_scale_are_validated_and_saved(tmp_path):
    model = q_model("dsqn", num_steps=2, bias=False)
    names = [n for n, _ in model.q_net.named_parameters()]
    assert names and not [n for n in names if n.endswith("bias")]  # DSQN's paper: no bias anywhere
    params = model.policy._get_constructor_parameters()
    assert (params["bias"], params["image_scale"], params["normalize_images"]) == (False, 1 / 256, False)
    model.policy.save(tmp_path / "p.zip")
    loaded = type(model.policy).load(tmp_path / "p.zip")
    assert not [n for n, _ in loaded.q_net.named_parameters() if n.endswith("bias")]
    with pytest.raises(TypeError, match="bias must be a bool"):
        q_model("dsqn", bias="no")
    with pytest.raises(ValueError, match="image_scale must be <= 1.0"):
        q_model("dsqn", image_scale=2.0)
    with pytest.raises(ValueError, match="image_scale applies to the convolutional bodies"):
        make_tiny_model("DQN", {"image_scale": 0.5, "net_arch": [8]})
    # DSQN's frame / 256 on a grid already in [0, 1] (MinAtar's bool channels) would silence every neuron
    grid = gym.spaces.Box(np.zeros((10, 10, 4), bool), np.ones((10, 10, 4), bool), dtype=bool)
    with pytest.raises(ValueError, match=r"image_scale=0.00390625 is for raw 0-255 pixels.*pass image_scale=1.0"):
        ImageInput(grid, scale=1 / 256)
    assert ImageInput(grid, scale=1.0)(torch.ones(1, 10, 10, 4)).sum() == 400  # as it is
