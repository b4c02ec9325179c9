"""Smoke tests of the DQN examples and of the rl-zoo3 hyperparameters file (tiny budgets)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces
from torch import nn

import snnrl_sb3
from snnrl_sb3 import SpikingQPolicy

ROOT = Path(__file__).resolve().parents[1]
HYPERPARAMS = Path(snnrl_sb3.__file__).parent / "hyperparams" / "dqn.yml"


def run(args, timeout=300, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"{args}\nSTDOUT\n{proc.stdout[-3000:]}\nSTDERR\n{proc.stderr[-3000:]}"
    return proc.stdout


def has(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


def atari_ready():
    if not has("ale_py", "cv2"):
        return False
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    try:
        gym.make("BreakoutNoFrameskip-v4").close()
    except Exception:  # ROM missing
        return False
    return True


@pytest.mark.parametrize("script", ["dqn_cartpole.py", "dqn_minatar.py", "dqn_atari.py"])
def test_examples_help(script):
    out = run([f"examples/{script}", "--help"])
    assert "--steps" in out and "--seed" in out


def test_cartpole_example_trains_and_prints_return(tmp_path):
    out = run(["examples/dqn_cartpole.py", "--steps", "1300", "--eval-freq", "0", "--eval-episodes", "2",
               "--record", str(tmp_path), "--tag", "smoke", "--progress-bar", "true"])
    assert "smoke seed 0: eval return" in out
    out = run(["examples/dqn_cartpole.py", "--plot", str(tmp_path)])
    assert (tmp_path / "curves.png").stat().st_size > 0 and "| smoke |" in out


@pytest.mark.skipif(not has("minatar"), reason="MinAtar not installed (GPL-3.0, optional: pip install minatar)")
def test_minatar_example_runs():
    out = run(["examples/dqn_minatar.py", "--steps", "200", "--learning-starts", "100", "--batch-size", "8",
               "--eval-episodes", "1", "--num-steps", "2", "--progress-bar", "false"])
    assert "eval return" in out and "ImageInput" in out


@pytest.mark.skipif(not atari_ready(), reason="Atari needs ale-py with ROMs and OpenCV (pip install ale-py "
                                              "opencv-python-headless)")
def test_atari_example_runs():
    out = run(["examples/dqn_atari.py", "--steps", "150", "--learning-starts", "100", "--batch-size", "4",
               "--buffer-size", "300", "--num-steps", "2", "--eval-episodes", "1", "--progress-bar", "false"])
    assert "eval return" in out


def zoo_entries():
    return yaml.safe_load(HYPERPARAMS.read_text())


FAKE_SPACES = {
    "CartPole-v1": (spaces.Box(-np.inf, np.inf, (4,), np.float32), spaces.Discrete(2)),
    "MinAtar": (spaces.Box(0.0, 1.0, (10, 10, 4), bool), spaces.Discrete(3)),
    "atari": (spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(4)),
}


@pytest.mark.parametrize("key", sorted(zoo_entries()))
def test_zoo_hyperparams_build_the_policy(key):
    entry = zoo_entries()[key]
    assert entry["policy"] == "snnrl_sb3.SpikingQPolicy"
    kwargs = eval(entry["policy_kwargs"], {"nn": nn, "th": torch, "np": np})  # exactly rl-zoo3's scope
    obs_space, action_space = FAKE_SPACES["MinAtar" if key.startswith("MinAtar") else key]
    policy = SpikingQPolicy(obs_space, action_space, lambda _: 1e-3, **kwargs)
    obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(2)]))
    assert policy.predict(obs.numpy(), deterministic=True)[0].shape == (2,)


def test_rl_zoo3_train_with_conf_file(tmp_path):
    out = run(["-m", "rl_zoo3.train", "--algo", "dqn", "--env", "CartPole-v1", "--conf-file", str(HYPERPARAMS),
               "-n", "400", "--seed", "0", "--log-folder", str(tmp_path), "--eval-freq", "-1", "--hyperparams",
               "learning_starts:100", "train_freq:64", "gradient_steps:4", "policy_kwargs:dict(net_arch=[32],num_steps=2)"],
              timeout=300)
    saved = list(tmp_path.rglob("CartPole-v1.zip"))
    assert saved, out[-2000:]
    script = ("import sys, numpy as np\nfrom stable_baselines3 import DQN\nm = DQN.load(sys.argv[1])\n"
              "print(type(m.policy).__name__, m.predict(np.zeros((3, 4), np.float32), deterministic=True)[0])")
    assert "SpikingQPolicy" in run(["-c", script, str(saved[0])])
