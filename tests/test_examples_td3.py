"""Smoke runs of examples/td3.py (tiny budgets, fresh processes) and of the rl-zoo3 TD3 hyperparameters."""

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, check_help, run_python

REPO = str(ROOT)
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_td3_help():
    docs = check_help("td3.py")
    assert {"env_id", "preset", "ann", "neuron", "surrogate", "surrogate_kwargs", "num_steps", "pop_dim"} <= set(docs)


def test_pendulum_preset_is_rl_zoo3s():
    import rl_zoo3

    zoo = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "td3.yml").read_text())["Pendulum-v1"]
    preset = load_example("td3").PRESETS["Pendulum-v1"]
    assert zoo["noise_type"] == "normal" and zoo["policy_kwargs"] == "dict(net_arch=[400, 300])"
    assert {k: preset[k] for k in ("gamma", "buffer_size", "learning_starts", "noise_std", "gradient_steps",
                                   "train_freq", "learning_rate")} == {
        k: zoo[k] for k in ("gamma", "buffer_size", "learning_starts", "noise_std", "gradient_steps", "train_freq",
                            "learning_rate")}
    assert (preset["total_timesteps"], preset["net_arch"], preset["normalize"]) == (zoo["n_timesteps"], [400, 300],
                                                                                    False)
    assert (preset["batch_size"], preset["tau"], preset["actor_lr_ratio"]) == (256, 0.005, 1.0)  # TD3's defaults


def test_halfcheetah_preset_is_pop_sans():
    module = load_example("td3")
    preset = module.PRESETS["HalfCheetah-v5"]
    assert set(module.PRESETS) == {"Pendulum-v1", "HalfCheetah-v5"}
    assert {k: preset[k] for k in ("learning_rate", "actor_lr_ratio", "batch_size", "train_freq", "gradient_steps",
                                   "learning_starts", "noise_std", "gamma", "tau", "buffer_size", "net_arch",
                                   "normalize")} == dict(
        learning_rate=1e-3, actor_lr_ratio=0.1, batch_size=100, train_freq=50, gradient_steps=50,
        learning_starts=10_000, noise_std=0.1, gamma=0.99, tau=0.005, buffer_size=1_000_000, net_arch=[256, 256],
        normalize=True)
    assert module.CLIP_OBS == 3.0


def test_published_td3_is_the_reference_td3():
    from reference.popsan import REFERENCE_TD3 as ref

    td3 = load_example("td3").POPSAN_TD3
    assert td3["total_timesteps"] == ref["steps_per_epoch"] * ref["epochs"]
    assert td3["learning_rate"] == ref["q_lr"]
    assert td3["learning_rate"] * td3["actor_lr_ratio"] == pytest.approx(ref["popsan_lr"])
    assert (td3["buffer_size"], td3["batch_size"], td3["gamma"]) == (ref["replay_size"], ref["batch_size"],
                                                                     ref["gamma"])
    assert td3["tau"] == pytest.approx(1 - ref["polyak"])
    assert td3["random_steps"] == ref["start_steps"] + 1  # random while t <= start_steps, t from 0
    assert td3["learning_starts"] == ref["update_after"]
    assert td3["train_freq"] == td3["gradient_steps"] == ref["update_every"]
    assert (td3["noise_std"], td3["target_policy_noise"], td3["target_noise_clip"], td3["policy_delay"]) == (
        ref["act_noise"], ref["target_noise"], ref["noise_clip"], ref["policy_delay"])
    assert td3["net_arch"] == ref["critic_hidden_sizes"] and td3["eval_freq"] == ref["steps_per_epoch"]
    assert td3["normalize"] and load_example("td3").CLIP_OBS == ref["norm_clip_limit"]
    assert td3["norm_epsilon"] == float(np.finfo(np.float32).eps)
    # the rl-zoo3 entries: the same, except learning_starts (SB3 ties random actions and the first update)
    with open(os.path.join(REPO, "snnrl_sb3", "hyperparams", "td3.yml")) as fh:
        conf = yaml.safe_load(fh)
    for env_id in ("HalfCheetah-v4", "HalfCheetah-v5", "Hopper-v4", "Walker2d-v4"):
        hp = conf[env_id]
        assert (hp["n_timesteps"], hp["buffer_size"], hp["batch_size"], hp["gamma"], hp["learning_rate"]) == (
            td3["total_timesteps"], td3["buffer_size"], td3["batch_size"], td3["gamma"], td3["learning_rate"])
        assert (hp["train_freq"], hp["gradient_steps"], hp["noise_type"], hp["noise_std"]) == (50, 50, "normal", 0.1)
        assert hp["learning_starts"] == ref["start_steps"] and "preset='popsan'" in hp["policy_kwargs"]
        assert eval(hp["normalize"]) == {"norm_obs": True, "norm_reward": False, "clip_obs": 3.0,
                                         "epsilon": td3["norm_epsilon"]}
        assert ("bernoulli" in hp["policy_kwargs"]) == env_id.startswith(("Hopper", "Walker2d"))


def test_published_kwargs_are_the_preset_and_only_what_was_given():
    module = load_example("td3")
    policy, kwargs = module.policy_and_kwargs(module.Args(preset="popsan"), module.POPSAN_TD3, "HalfCheetah-v4")
    assert policy is module.PopSpikingTD3Policy
    assert kwargs == dict(net_arch=[256, 256], preset="popsan", surrogate="rectangular")
    args = module.Args(preset="mdcsan", surrogate="trapezoid", surrogate_kwargs='{"w1": 0.2, "w2": 0.6}', pop_dim=4)
    assert module.policy_and_kwargs(args, module.POPSAN_TD3, "HalfCheetah-v4")[1] == dict(
        net_arch=[256, 256], preset="mdcsan", surrogate="trapezoid", surrogate_kwargs={"w1": 0.2, "w2": 0.6},
        encoder_kwargs={"pop_dim": 4}, readout_kwargs={"pop_dim": 4})
    assert module.published_kwargs(module.Args(preset="popsan"), "Hopper-v4")["encoder_kwargs"] == {
        "spikes": "bernoulli", "deterministic_noise": "fresh"}  # Pop-SAN's Poisson tasks
    assert module.tag_of(module.Args(preset="popsan", surrogate="triangular")) == "popsan/triangular"
    assert module.tag_of(module.Args()) == "current_lif/rectangular"


def test_warmup_td3_acts_randomly_for_random_steps_and_trains_from_learning_starts():
    module = load_example("td3")
    model = module.WarmupTD3("MlpPolicy", "Pendulum-v1", learning_starts=10, random_steps=30, train_freq=5,
                             gradient_steps=1, batch_size=8, buffer_size=100, policy_kwargs=dict(net_arch=[8]), seed=0)
    calls = []
    predict = model.predict
    model.predict = lambda *a, **k: (calls.append(model.num_timesteps), predict(*a, **k))[1]
    model.learn(40)
    assert calls == list(range(30, 40))  # the policy acts only from step 30
    assert model._n_updates == 6  # updates after steps 15, 20, ..., 40 (num_timesteps > learning_starts = 10)


def test_population_kwargs_are_built_in_one_place():
    module = load_example("td3")
    assert module.population_kwargs(4, [-3.0, 3.0]) == dict(
        encoder="population", encoder_kwargs={"pop_dim": 4, "mean_range": [-3.0, 3.0]}, readout="population",
        readout_kwargs={"pop_dim": 4})
    assert module.population_kwargs(10, None) == dict(encoder="population", encoder_kwargs={"pop_dim": 10},
                                                      readout="population", readout_kwargs={"pop_dim": 10})
    args = module.Args(pop_dim=4, num_steps=3, neuron="dynamic", surrogate="trapezoid")
    policy, kwargs = module.policy_and_kwargs(args, module.PRESETS["HalfCheetah-v5"])
    assert policy is module.PopSpikingTD3Policy
    assert kwargs == dict(net_arch=[256, 256], num_steps=3, neuron="dynamic", surrogate="trapezoid",
                          surrogate_kwargs=None, actor_lr_ratio=0.1, **module.population_kwargs(4, [-3.0, 3.0]))
    assert module.policy_and_kwargs(module.Args(ann=True), module.PRESETS["Pendulum-v1"]) == (
        "MlpPolicy", {"net_arch": [400, 300]})


def test_td3_pendulum_smoke_records_saves_and_plots(tmp_path):
    out = run_python(["examples/td3.py", "--total-timesteps", "160", "--learning-starts", "100", "--eval-freq", "80",
               "--eval-episodes", "1", "--net-arch", "16", "--pop-dim", "4", "--surrogate", "trapezoid",
               "--surrogate-kwargs", '{"w1": 0.2, "w2": 0.6}', "--record", tmp_path, "--save", tmp_path / "m"])
    assert len(re.findall(r"^current_lif/trapezoid seed 0: eval at ", out, re.M)) == 2
    assert "160/160" in out and "final eval" not in out
    record = json.loads((tmp_path / "current_lif_trapezoid_seed0.json").read_text())
    assert [point[0] for point in record["curve"]] == [80, 160]
    assert (record["tag"], record["steps"], record["settings"]["net_arch"]) == ("current_lif/trapezoid", 160, [16])
    assert record["policy_kwargs"]["surrogate_kwargs"] == {"w1": 0.2, "w2": 0.6}
    assert re.findall(r'model = TD3\.load\("([^"]+)"\)', out) == [str(tmp_path / "m.zip")]
    assert (tmp_path / "m.zip").is_file()

    out = run_python(["examples/td3.py", "--total-timesteps", "120", "--learning-starts", "100", "--eval-freq", "0",
               "--eval-episodes", "1", "--net-arch", "16", "--ann", "--no-progress-bar", "--record", tmp_path,
               "--save", ""])
    assert "ANN seed 0: final eval at 120 steps: " in out
    assert json.loads((tmp_path / "ANN_seed0.json").read_text())["policy_kwargs"] == {"net_arch": [16]}

    run_python(["examples/td3.py", "--plot", tmp_path])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split(" | ")[0] for line in (tmp_path / "table.md").read_text().splitlines()[2:]]
    assert rows == ["| ANN", "| current_lif/trapezoid"]


def test_td3_plot_reads_the_recorded_halfcheetah_runs(tmp_path):
    for path in (ROOT / "examples" / "results" / "td3" / "halfcheetah").glob("*.json"):
        shutil.copy(path, tmp_path)
    out = run_python(["examples/td3.py", "--plot", tmp_path])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| current_lif/trapezoid | 0 | 2340 | 2340 | 375 s |" in out
    rows = [line.split(" | ")[0] for line in (tmp_path / "table.md").read_text().splitlines()[2:]]
    assert rows == ["| ANN", "| current_lif/rectangular", "| current_lif/trapezoid", "| current_lif/triangular",
                    "| dynamic/rectangular"]


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco not installed (pip install mujoco)")
def test_td3_halfcheetah_smoke(tmp_path):
    out = run_python(["examples/td3.py", "--env-id", "HalfCheetah-v5", "--total-timesteps", "120", "--learning-starts", "60",
               "--train-freq", "20", "--eval-freq", "0", "--eval-episodes", "1", "--net-arch", "16", "--pop-dim", "4",
               "--neuron", "dynamic", "--no-progress-bar", "--record", tmp_path, "--save", tmp_path / "m.zip"])
    assert "dynamic/rectangular seed 0: final eval at 120 steps: " in out
    record = json.loads((tmp_path / "dynamic_rectangular_seed0.json").read_text())
    assert (record["settings"]["actor_lr_ratio"], record["policy_kwargs"]["actor_lr_ratio"]) == (0.1, 0.1)
    assert (record["settings"]["train_freq"], record["settings"]["gradient_steps"]) == (20, 20)
    assert record["policy_kwargs"]["encoder_kwargs"] == {"pop_dim": 4, "mean_range": [-3.0, 3.0]}
    assert (tmp_path / "m.zip").is_file() and (tmp_path / "m_vecnormalize.pkl").is_file()
    assert f'VecNormalize.load("{tmp_path / "m_vecnormalize.pkl"}", venv)' in out


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco not installed (pip install mujoco)")
@pytest.mark.parametrize("preset", ["popsan", "mdcsan"])
def test_td3_published_preset_smoke(tmp_path, preset):
    out = run_python(["examples/td3.py", "--preset", preset, "--total-timesteps", "120", "--learning-starts", "60",
                      "--train-freq", "20", "--eval-freq", "0", "--eval-episodes", "1", "--net-arch", "16",
                      "--pop-dim", "4", "--surrogate", "trapezoid", "--no-progress-bar", "--record", tmp_path,
                      "--save", tmp_path / "m"])
    assert re.findall(r'model = TD3\.load\("([^"]+)"\)', out) == [str(tmp_path / "m.zip")]  # a plain TD3 model
    assert f"{preset}/trapezoid TD3 on HalfCheetah-v4, seed 0: 120 steps" in out
    assert f"{preset}/trapezoid seed 0: final eval at 120 steps: " in out
    record = json.loads((tmp_path / f"{preset}_trapezoid_seed0.json").read_text())
    assert record["policy_kwargs"] == dict(net_arch=[16], preset=preset, surrogate="trapezoid",
                                           encoder_kwargs={"pop_dim": 4}, readout_kwargs={"pop_dim": 4})
    assert (record["settings"]["random_steps"], record["settings"]["learning_starts"]) == (10_001, 60)
    assert record["env_id"] == "HalfCheetah-v4"


def test_zoo_hyperparams_resolve_with_only_nn_th_np_in_scope():
    import torch as th
    from rl_zoo3.utils import get_class_by_name
    from stable_baselines3 import TD3
    from torch import nn

    from snnrl_sb3 import PopSpikingTD3Policy

    with open(os.path.join(REPO, "snnrl_sb3", "hyperparams", "td3.yml")) as fh:
        conf = yaml.safe_load(fh)
    assert {"Pendulum-v1", "HalfCheetah-v5"} <= set(conf)
    for hp in conf.values():
        assert get_class_by_name(hp["policy"]) is PopSpikingTD3Policy
        assert isinstance(hp["policy_kwargs"], str)
        kwargs = eval(hp["policy_kwargs"], {"nn": nn, "th": th, "np": np})  # what rl-zoo3 does
        json.dumps(kwargs)
        kwargs.update(net_arch=[8], encoder_kwargs={**kwargs.get("encoder_kwargs", {}), "pop_dim": 2},
                      readout_kwargs={"pop_dim": 2})
        TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=kwargs)


def test_zoo_train_smoke(tmp_path):
    out = run_python(["-m", "rl_zoo3.train", "--algo", "td3", "--env", "Pendulum-v1", "-n", "150", "--conf-file",
               "snnrl_sb3/hyperparams/td3.yml", "-f", str(tmp_path), "--eval-freq", "-1", "--seed", "0",
               "--hyperparams", "learning_starts:100", "batch_size:16",
               "policy_kwargs:dict(net_arch=[8],encoder_kwargs=dict(pop_dim=2),readout_kwargs=dict(pop_dim=2),"
               "surrogate='trapezoid')"])
    saved = tmp_path / "td3" / "Pendulum-v1_1" / "Pendulum-v1.zip"
    assert f"Saving to {saved.parent}" in out and saved.is_file()
    script = f"from stable_baselines3 import TD3\nprint(type(TD3.load({json.dumps(str(saved))}).policy).__name__)"
    assert "PopSpikingTD3Policy" in run_python(["-c", script], cwd=tmp_path).splitlines()


def test_mujoco_warnings_do_not_litter_the_working_directory(tmp_path):
    pytest.importorskip("mujoco")
    script = ("import warnings, gymnasium as gym\nfrom snnrl_sb3.utils import route_mujoco_warnings\n"
              "assert route_mujoco_warnings()\nwarnings.simplefilter('always')\n"
              "gym.make('HalfCheetah-v5').reset(seed=0)\n")
    out = run_python(["-c", script], cwd=tmp_path)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert "MuJoCo: " in out  # the warning went to Python's warnings instead
