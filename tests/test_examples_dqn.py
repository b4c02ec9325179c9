"""Smoke tests of the DQN examples (tiny budgets, fresh processes) and of the rl-zoo3 hyperparameters."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import check_help, run_python
from gymnasium import spaces
from torch import nn

import snnrl_sb3
from snnrl_sb3 import SpikingQPolicy

HYPERPARAMS = Path(snnrl_sb3.__file__).parent / "hyperparams" / "dqn.yml"


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


def load_lines(out, algo="DQN"):
    """The paths in the printed ``model = ALGO.load("...")`` lines."""
    return re.findall(rf'model = {algo}\.load\("([^"]+)"\)', out)


@pytest.mark.parametrize("script", ["dqn_cartpole.py", "dqn_minatar.py", "dqn_atari.py"])
def test_examples_help(script):
    docs = check_help(script)
    assert {"total_timesteps", "threads", "save"} <= set(docs)


def test_cartpole_prints_evaluations_saves_records_and_plots(tmp_path):
    out = run_python(["examples/dqn_cartpole.py", "--total-timesteps", "1300", "--eval-freq", "500", "--eval-episodes", "2",
               "--seeds", "0", "1", "--save", tmp_path / "seed{seed}.zip", "--record", tmp_path, "--tag", "smoke"])
    for seed in (0, 1):
        assert len(re.findall(rf"^seed {seed}: eval at ", out, re.M)) == 3  # 500, 1,000, 1,500
        assert f"seed {seed}: final eval at 1,536 steps: " in out  # 1300 steps = 5.08 rollouts of 256
        assert f"seed {seed}: budget spent (1,536 steps) without reaching 475" in out
        record = json.loads((tmp_path / f"smoke_seed{seed}.json").read_text())
        assert [point[0] for point in record["curve"]] == [500, 1000, 1500, 1536]
        assert (record["tag"], record["seed"], record["steps"], record["budget"]) == ("smoke", seed, 1536, 1300)
        assert record["final"] == record["curve"][-1][1]
    assert "1,536/1,536" in out and "/1,300" not in out  # the progress bar ends at its total
    assert load_lines(out) == [str(tmp_path / "seed0.zip"), str(tmp_path / "seed1.zip")]
    path = str(tmp_path / "seed0.zip")
    assert f"saved {path}; load it with:" in out
    script = f"from stable_baselines3 import DQN\nprint(type(DQN.load({json.dumps(path)}).policy).__name__)"
    assert "SpikingQPolicy" in run_python(["-c", script], cwd=tmp_path).splitlines()

    out = run_python(["examples/dqn_cartpole.py", "--plot", tmp_path])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| smoke |")]
    assert len(rows) == 1 and rows[0].startswith("| smoke | 0, 1 | ")


def test_cartpole_says_when_and_why_it_stops(tmp_path):
    # every CartPole episode returns >= 1, so --stop-at 1 stops at the first evaluation
    out = run_python(["examples/dqn_cartpole.py", "--total-timesteps", "1300", "--eval-freq", "500", "--eval-episodes", "1",
               "--stop-at", "1", "--policy", "ann", "--save", "", "--no-progress-bar"])
    assert "seed 0: reached 1 at 500 steps: stopping" in out
    assert "seed 0: stopped early: reached 1 at 500 steps" in out
    assert "final eval" not in out and "saved " not in out
    assert "ann seed 0: last eval " in out and " after 500 steps in " in out


@pytest.mark.skipif(not has("minatar"), reason="MinAtar not installed (GPL-3.0, optional: pip install minatar)")
def test_minatar_example_runs(tmp_path):
    out = run_python(["examples/dqn_minatar.py", "--total-timesteps", "200", "--learning-starts", "100", "--batch-size", "8",
               "--eval-freq", "100", "--eval-episodes", "1", "--num-steps", "2", "--no-progress-bar",
               "--save", tmp_path / "minatar", "--record", tmp_path])
    assert "(ImageInput), T=2" in out
    assert len(re.findall(r"^MinAtar/Breakout-v1 seed 0: eval at ", out, re.M)) == 2
    assert load_lines(out) == [str(tmp_path / "minatar.zip")] and f"saved {tmp_path / 'minatar.zip'};" in out
    assert (tmp_path / "minatar.zip").is_file()
    record = json.loads((tmp_path / "MinAtar-Breakout-v1_seed0.json").read_text())
    assert [point[0] for point in record["curve"]] == [100, 200]
    assert record["policy_kwargs"]["num_steps"] == 2


@pytest.mark.skipif(not atari_ready(), reason="Atari needs ale-py with ROMs and OpenCV (pip install ale-py "
                                              "opencv-python-headless)")
def test_atari_example_runs(tmp_path):
    out = run_python(["examples/dqn_atari.py", "--total-timesteps", "150", "--learning-starts", "100", "--batch-size", "4",
               "--buffer-size", "300", "--num-steps", "2", "--eval-freq", "0", "--eval-episodes", "1",
               "--no-progress-bar", "--save", tmp_path / "atari"])
    assert "BreakoutNoFrameskip-v4 seed 0: final eval at 152 steps: " in out  # train_freq 4: 38 rollouts
    assert "not of the same type" not in out  # the eval env is wrapped as DQN wraps the training env
    assert load_lines(out) == [str(tmp_path / "atari.zip")] and (tmp_path / "atari.zip").is_file()


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


def test_rl_zoo3_train_then_enjoy_with_conf_file(tmp_path):
    out = run_python(["-m", "rl_zoo3.train", "--algo", "dqn", "--env", "CartPole-v1", "--conf-file", str(HYPERPARAMS),
                      "-n", "400", "--seed", "0", "--log-folder", str(tmp_path), "--eval-freq", "-1", "--hyperparams",
                      "learning_starts:100", "train_freq:64", "gradient_steps:4",
                      "policy_kwargs:dict(net_arch=[32],num_steps=2)"], timeout=300)
    saved = list(tmp_path.rglob("CartPole-v1.zip"))
    assert len(saved) == 1, out[-2000:]
    script = ("import sys, numpy as np\nfrom stable_baselines3 import DQN\nm = DQN.load(sys.argv[1])\n"
              "print(type(m.policy).__name__, m.predict(np.zeros((3, 4), np.float32), deterministic=True)[0])")
    assert "SpikingQPolicy" in run_python(["-c", script, str(saved[0])])
    # the README's enjoy line, on the model train saved (needs the zoo extra's requests)
    played = run_python(["-m", "rl_zoo3.enjoy", "--algo", "dqn", "--env", "CartPole-v1", "--folder", str(tmp_path),
                         "--no-render", "-n", "50", "--seed", "0"], timeout=300)
    assert f"Loading {saved[0]}" in played, played[-2000:]
