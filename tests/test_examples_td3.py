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
    assert {"env_id", "ann", "neuron", "surrogate", "surrogate_kwargs", "num_steps", "pop_dim"} <= set(docs)


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
        kwargs.update(net_arch=[8], encoder_kwargs={**kwargs["encoder_kwargs"], "pop_dim": 2},
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
