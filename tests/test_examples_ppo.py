"""The PPO / A2C example, the rl-zoo3 entries of the spiking actor-critic and the PPO benchmark (tiny budgets)."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml
from conftest import ROOT, check_help, run_python
from torch import nn

import snnrl_sb3
from snnrl_sb3 import SpikingActorCriticPolicy

HYPERPARAMS = Path(snnrl_sb3.__file__).parent / "hyperparams"
ENVS = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
#: what the spiking policy adds to an entry of the zoo
SPIKING = "neuron='ternary', num_steps=8"


def test_ppo_example_help():
    docs = check_help("ppo_cartpole.py")
    assert {"algo", "ann", "neuron", "seed", "total_timesteps", "save", "progress_bar", "eval_freq",
            "eval_episodes"} <= set(docs)


def test_ppo_example_trains_records_saves_and_plots(tmp_path):
    out = run_python(["examples/ppo_cartpole.py", "--total-timesteps", "600", "--eval-freq", "512", "--eval-episodes",
                      "2", "--neuron", "lif", "--policy-kwargs", '{"num_steps": 2, "net_arch": [8]}',
                      "--save", tmp_path / "{algo}_s{seed}", "--record", tmp_path, "--tag", "smoke"])
    assert re.findall(r"^seed 0: eval at ([\d,]+) steps", out, re.M) == ["512"]  # 8 envs x 32 steps per rollout
    assert "seed 0: final eval at 768 steps: " in out and "768/768" in out  # the progress bar ends at its total
    record = json.loads((tmp_path / "smoke_seed0.json").read_text())
    assert [point[0] for point in record["curve"]] == [512, 768]
    assert record["policy_kwargs"] == {"neuron": "lif", "num_steps": 2, "net_arch": [8]}
    assert (record["algo"], record["steps"], record["budget"]) == ("ppo", 768, 600)
    path = tmp_path / "ppo_s0.zip"
    assert f'model = PPO.load("{path}")' in out
    script = f"from stable_baselines3 import PPO\nprint(type(PPO.load({json.dumps(str(path))}).policy).__name__)"
    assert "SpikingActorCriticPolicy" in run_python(["-c", script], cwd=tmp_path).splitlines()
    out = run_python(["examples/ppo_cartpole.py", "--plot", tmp_path])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| smoke | 0 | " in (tmp_path / "table.md").read_text()


def test_ppo_example_settings_are_rl_zoo3s():
    import importlib.util

    import rl_zoo3

    spec = importlib.util.spec_from_file_location("ppo_cartpole", ROOT / "examples" / "ppo_cartpole.py")
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # dataclasses look their module up
    spec.loader.exec_module(example)
    for algo in ("ppo", "a2c"):
        zoo = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").read_text())["CartPole-v1"]
        ours = example.ZOO[algo]
        assert {"n_envs": ours["n_envs"], "n_timesteps": ours["n_timesteps"], "policy": "MlpPolicy",
                **ours["hyperparams"]} == zoo


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_zoo_entries_are_the_zoos_ann_entries_with_only_the_policy_changed(algo):
    import rl_zoo3
    from rl_zoo3.utils import get_class_by_name

    zoo = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml").read_text())
    ours = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())
    assert sorted(ours) == sorted(ENVS)
    for env_id, entry in ours.items():
        assert get_class_by_name(entry["policy"]) is SpikingActorCriticPolicy
        theirs = dict(zoo[env_id])
        zoo_kwargs = theirs.pop("policy_kwargs", None)
        assert entry["policy_kwargs"] == (f"dict({zoo_kwargs[5:-1]}, {SPIKING})" if zoo_kwargs else f"dict({SPIKING})")
        assert {k: v for k, v in entry.items() if k not in ("policy", "policy_kwargs")} == {
            k: v for k, v in theirs.items() if k != "policy"}


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
@pytest.mark.parametrize("env_id", ENVS)
def test_zoo_entries_build_the_policy_and_act(algo, env_id):
    import gymnasium as gym
    from stable_baselines3 import A2C, PPO

    entry = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())[env_id]
    kwargs = eval(entry["policy_kwargs"], {"nn": nn, "th": th, "np": np})  # exactly rl-zoo3's scope
    json.dumps(kwargs)
    env = gym.make(env_id)
    model = {"ppo": PPO, "a2c": A2C}[algo](SpikingActorCriticPolicy, env, policy_kwargs={**kwargs, "net_arch": [8]},
                                           use_sde=entry.get("use_sde", False))
    obs = np.stack([env.observation_space.sample() for _ in range(2)])
    assert model.predict(obs, deterministic=True)[0].shape[0] == 2


def test_rl_zoo3_trains_ppo_with_the_conf_file(tmp_path):
    out = run_python(["-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "300", "--gym-packages",
                      "snnrl_sb3", "--conf-file", str(HYPERPARAMS / "ppo.yml"), "--seed", "0", "--log-folder",
                      str(tmp_path), "--eval-freq", "-1", "--hyperparams", "n_epochs:2",
                      "policy_kwargs:dict(net_arch=[16],num_steps=2)"], timeout=300)
    saved = list(tmp_path.rglob("CartPole-v1.zip"))
    assert len(saved) == 1, out[-2000:]
    script = ("import sys, numpy as np\nfrom stable_baselines3 import PPO\nm = PPO.load(sys.argv[1])\n"
              "print(type(m.policy).__name__, m.num_timesteps)")
    assert "SpikingActorCriticPolicy 512" in run_python(["-c", script, str(saved[0])])  # 2 rollouts of 8 x 32


def test_ppo_benchmark_runs():
    out = run_python(["-m", "snnrl_sb3.benchmarks.ppo", "--learn-steps", "256", "--rounds", "1", "--neurons", "lif",
                      "--num-steps", "2"])
    assert re.search(r"\| SpikingActorCriticPolicy lif \| \d+ +\| \d+\.\d\dx", out), out
