"""Smoke runs of the TD3 examples, the rl-zoo3 hyperparameters and the TD3 benchmark helpers."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


def run(args, timeout=240):
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


@pytest.mark.parametrize("script", ["examples/td3_pendulum.py", "examples/td3_halfcheetah.py"])
def test_example_help(script, capsys):
    name = "example_" + os.path.basename(script)[:-3]
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, script))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_:
        module.parse_args(module.Args, ["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--surrogate" in text and "--steps" in text and "--ann" in text and "Pop-SAN" in text
    assert module.parse_args(module.Args, ["--surrogate", "trapezoid", "--no-progress-bar"]).surrogate == "trapezoid"


def test_td3_pendulum_smoke(tmp_path):
    results = tmp_path / "r.json"
    out = run(["examples/td3_pendulum.py", "--steps", "160", "--learning-starts", "100", "--eval-freq", "80",
               "--eval-episodes", "1", "--actor-arch", "16", "--critic-arch", "16", "--pop-dim", "4",
               "--surrogate", "trapezoid", "--surrogate-kwargs", '{"w1": 0.2, "w2": 0.6}', "--results", str(results),
               "--save", str(tmp_path / "m.zip")])
    assert "best eval mean" in out
    summary = json.loads(results.read_text())
    assert summary["args"]["surrogate"] == "trapezoid" and len(summary["curve"]) == 2
    assert (tmp_path / "m.zip").exists()
    # the benchmark's plot sub-command reads these files
    plot = run(["-m", "snnrl_sb3.benchmarks.td3", "plot", "--out", str(tmp_path / "c.png"), str(results)])
    assert "best eval mean" in plot and (tmp_path / "c.png").exists()


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco not installed (pip install mujoco)")
def test_td3_halfcheetah_smoke(tmp_path):
    results = tmp_path / "r.json"
    out = run(["examples/td3_halfcheetah.py", "--steps", "120", "--learning-starts", "60", "--train-freq", "20",
               "--eval-freq", "0", "--eval-episodes", "1", "--net-arch", "16", "--pop-dim", "4", "--neuron", "dynamic",
               "--no-progress-bar", "--results", str(results), "--save", str(tmp_path / "m.zip")])
    assert "dynamic/rectangular" in out
    assert json.loads(results.read_text())["args"]["actor_lr_ratio"] == 0.1
    assert (tmp_path / "m_vecnormalize.pkl").exists()


def test_zoo_hyperparams_resolve_with_only_nn_th_np_in_scope():
    from rl_zoo3.utils import get_class_by_name
    from stable_baselines3 import TD3
    import torch as th
    from torch import nn

    from snnrl_sb3 import PopSpikingTD3Policy

    with open(os.path.join(REPO, "snnrl_sb3", "hyperparams", "td3.yml")) as fh:
        conf = yaml.safe_load(fh)
    assert {"Pendulum-v1", "HalfCheetah-v5"} <= set(conf)
    for env_id, hp in conf.items():
        assert get_class_by_name(hp["policy"]) is PopSpikingTD3Policy
        assert isinstance(hp["policy_kwargs"], str)
        kwargs = eval(hp["policy_kwargs"], {"nn": nn, "th": th, "np": np})  # what rl-zoo3 does
        json.dumps(kwargs)
        kwargs.update(net_arch=[8], pop_dim=2)
        TD3(PopSpikingTD3Policy, "Pendulum-v1", policy_kwargs=kwargs)


def test_zoo_train_smoke(tmp_path):
    out = run(["-m", "rl_zoo3.train", "--algo", "td3", "--env", "Pendulum-v1", "-n", "150", "--conf-file",
               "snnrl_sb3/hyperparams/td3.yml", "-f", str(tmp_path), "--eval-freq", "-1", "--seed", "0",
               "--hyperparams", "learning_starts:100", "batch_size:16",
               "policy_kwargs:dict(net_arch=[8],pop_dim=2,surrogate='trapezoid')"])
    assert "PopSpikingTD3Policy" in out or (tmp_path / "td3").exists()
