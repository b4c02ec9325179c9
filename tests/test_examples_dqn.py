"""Smoke tests of the DQN examples (tiny budgets, fresh processes) and of the rl-zoo3 hyperparameters."""

import copy
import importlib.util
import json
import math
import re
import sys
import types
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, check_help, run_python
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
    if script == "dqn_atari.py":  # the authors' protocols
        assert {"preset", "evaluation", "loss", "epsilon_per_env", "warmup_actions", "keep_best"} <= set(docs)
        assert "PROTOCOLS" in docs["preset"]


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


def distinct_entries():
    """One key per distinct entry (the YAML aliases repeat an entry under other env ids)."""
    seen = {}
    for key, entry in zoo_entries().items():
        seen.setdefault(json.dumps(entry, sort_keys=True, default=str), key)
    return sorted(seen.values())


FAKE_SPACES = {
    "CartPole-v1": (spaces.Box(-np.inf, np.inf, (4,), np.float32), spaces.Discrete(2)),
    "MinAtar": (spaces.Box(0.0, 1.0, (10, 10, 4), bool), spaces.Discrete(3)),
    "atari": (spaces.Box(0, 255, (4, 84, 84), np.uint8), spaces.Discrete(4)),
}


@pytest.mark.parametrize("key", distinct_entries())
def test_zoo_hyperparams_build_the_policy(key):
    entry = zoo_entries()[key]
    module, name = entry["policy"].rsplit(".", 1)
    assert module == "snnrl_sb3" and name in ("SpikingQPolicy", "SpikingCnnQPolicy")
    kwargs = eval(entry["policy_kwargs"], {"nn": nn, "th": torch, "np": np})  # exactly rl-zoo3's scope
    obs_space, action_space = FAKE_SPACES["MinAtar" if key.startswith("MinAtar") else
                                          "atari" if "NoFrameskip" in key else key]
    policy = getattr(snnrl_sb3, name)(obs_space, action_space, lambda _: 1e-3, **kwargs)
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


# ------------------------------------------------------------------ the authors' protocols (dqn_atari.py --preset)

#: The references' training settings in SB3's units (steps = transitions, summed over the envs).
#: Ghoreishee: github.com/Aref7792/DATSQN, DATSQN_DTSQN_DSQN/DATSQN_train.py (l.40-49, 260-261, 282, 304-343,
#: 370; DTSQN_train.py and DSQN_train.py are the same loop). Chen: spikingjelly activation_based/examples/DSQN,
#: train.py (PLAY_STEPS 4, batch_size x 4, MODEL_SAVE_FREQUENCY 1e5, test(n_episodes=30), --frame_num 2e7)
#: and utils/common.py HYPERPARAMS (the same for every game).
REFERENCE = {
    "ghoreishee": dict(n_envs=4, total_timesteps=4_000_000, learning_rate=5e-5, gamma=0.99, batch_size=32,
                       buffer_size=400_000, learning_starts=40_000, train_freq=1, target_update_interval=10_000,
                       max_grad_norm=math.inf),
    "chen": dict(n_envs=1, total_timesteps=20_000_000, learning_rate=2.5e-4, gamma=0.99, batch_size=128,
                 buffer_size=1_000_000, learning_starts=50_000, train_freq=4, target_update_interval=10_000,
                 max_grad_norm=math.inf),
}
PAPER_OF = {"datsqn": "ghoreishee", "dtsqn": "ghoreishee", "dsqn_binary": "ghoreishee", "dsqn": "chen"}
#: Transitions at which epsilon is compared (the warm-up's actions are random either way for Ghoreishee).
EPSILON_AT = {"ghoreishee": [40_000, 40_004, 100_000, 540_000, 1_039_996, 1_040_000, 2_000_000, 3_999_996],
              "chen": [0, 4, 50_000, 500_000, 899_996, 900_000, 1_000_000, 19_999_996]}


def reference_epsilon(paper, t):
    if paper == "ghoreishee":  # l.306: np.interp(step * NUM_ENV, [0, 1e6], [1, 0.1]), step counted after the warm-up
        return float(np.interp(t - 40_000, [0, 1_000_000], [1.0, 0.1]))
    return max(0.1, 1.0 - t / 1_000_000)  # common.py EpsilonTracker


def sb3_epsilon(initial, fraction, final, total, t):
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(initial, final, fraction)(1.0 - t / total)


@pytest.fixture(scope="module")
def atari_example():
    """examples/dqn_atari.py as a module (its helpers, PROTOCOLS and EVALUATIONS)."""
    spec = importlib.util.spec_from_file_location("dqn_atari_example", ROOT / "examples" / "dqn_atari.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and tyro look the module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("preset", sorted(PAPER_OF))
def test_protocols_are_the_references_settings(atari_example, preset):
    paper, protocol = PAPER_OF[preset], atari_example.PROTOCOLS[preset]
    assert {key: protocol[key] for key in REFERENCE[paper]} == REFERENCE[paper]
    chen = paper == "chen"
    assert (protocol["loss"], protocol["epsilon_per_env"], protocol["warmup_actions"], protocol["stack_start"]) == (
        ("mse", False, "epsilon_greedy", "copies") if chen else ("smooth_l1", True, "random", "zeros"))
    assert protocol["timeout_terminal"] and protocol["exploration_final_eps"] == 0.1
    args = atari_example.Args(**protocol)
    initial, fraction = atari_example.exploration(args)
    for t in EPSILON_AT[paper]:
        assert sb3_epsilon(initial, fraction, 0.1, args.total_timesteps, t) == pytest.approx(
            reference_epsilon(paper, t), abs=1e-12), t
    evaluation = atari_example.EVALUATIONS[protocol["evaluation"]]
    assert (protocol["eval_freq"], protocol["eval_episodes"], protocol["keep_best"]) == (
        (100_000, 30, True) if chen else (40_000, 10, False))
    assert (evaluation["terminal_on_life_loss"], evaluation["clip_reward"], evaluation["epsilon"],
            evaluation["fire_first"], evaluation["after_warmup"]) == (
        (False, False, 0.05, False, False) if chen else (True, True, 0.0, True, True))


@pytest.mark.parametrize("key, paper", [("BreakoutNoFrameskip-v4", "ghoreishee"), ("PongNoFrameskip-v4", "chen")])
def test_zoo_atari_entries_are_the_references_settings(key, paper):
    entry, reference = zoo_entries()[key], REFERENCE[paper]
    renamed = dict(reference, n_timesteps=reference["total_timesteps"])
    del renamed["total_timesteps"]
    assert {k: entry[k] for k in renamed} == renamed
    assert entry["gradient_steps"] == 1 and entry["frame_stack"] == 4 and entry["optimize_memory_usage"] is True
    assert entry["env_wrapper"] == ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
    assert entry["policy"] == "snnrl_sb3.SpikingCnnQPolicy"
    scope = {"nn": nn, "th": torch, "np": np}
    assert eval(entry["policy_kwargs"], scope) == {"preset": "datsqn" if paper == "ghoreishee" else "dsqn"}
    assert eval(entry["replay_buffer_kwargs"], scope) == {"handle_timeout_termination": False}
    for t in EPSILON_AT[paper]:
        assert sb3_epsilon(entry["exploration_initial_eps"], entry["exploration_fraction"],
                           entry["exploration_final_eps"], entry["n_timesteps"], t) == pytest.approx(
            reference_epsilon(paper, t), abs=1e-12), t
    games = [k for k, e in zoo_entries().items() if e == entry]
    assert len(games) == (6 if paper == "ghoreishee" else 11)  # each paper's own games (DATSQN_test.py's DTER list)


@pytest.mark.skipif(not atari_ready(), reason="Atari needs ale-py with ROMs and OpenCV")
def test_rl_zoo3_trains_the_datsqn_entry(tmp_path):
    out = run_python(["-m", "rl_zoo3.train", "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "--conf-file",
                      str(HYPERPARAMS), "-n", "200", "--seed", "0", "--log-folder", str(tmp_path), "--eval-freq", "-1",
                      "--hyperparams", "buffer_size:1000", "learning_starts:100",
                      "policy_kwargs:dict(preset='datsqn',num_steps=2)"], timeout=300)
    assert "Using 4 environments" in out and "learning_rate    | 5e-05" in out, out[-2000:]
    assert len(list(tmp_path.rglob("BreakoutNoFrameskip-v4.zip"))) == 1, out[-2000:]


def test_parse_args_takes_the_protocol_and_the_flags_given(atari_example):
    assert atari_example.parse_args([]) == atari_example.Args()  # no preset: today's defaults
    args = atari_example.parse_args(["--batch-size", "8", "--preset", "dsqn", "--num-steps", "2"])
    assert (args.preset, args.loss, args.learning_rate, args.batch_size, args.num_steps) == (
        "dsqn", "mse", 2.5e-4, 8, 2)
    assert atari_example.network_kwargs(args) == {"preset": "dsqn", "num_steps": 2}  # the preset builds the rest
    args = atari_example.parse_args(["--preset=datsqn", "--batch-size", "32"])  # a flag equal to the protocol's
    assert (args.batch_size, args.n_envs, args.evaluation) == (32, 4, "datsqn")
    assert atari_example.network_kwargs(args) == {"preset": "datsqn"}


@pytest.mark.parametrize("preset", sorted(PAPER_OF))
def test_every_preset_builds_from_the_command_line(atari_example, preset):
    kwargs = atari_example.network_kwargs(atari_example.parse_args(["--preset", preset, "--num-steps", "2"]))
    obs_space, action_space = FAKE_SPACES["atari"]
    policy = snnrl_sb3.SpikingCnnQPolicy(obs_space, action_space, lambda _: 1e-3, **kwargs)
    assert policy.predict(np.stack([obs_space.sample()] * 2), deterministic=True)[0].shape == (2,)


def _cartpole_dqn(atari_example, n_envs=1, **kwargs):
    from stable_baselines3.common.env_util import make_vec_env

    settings = dict(learning_starts=64, batch_size=16, buffer_size=500, seed=0, train_freq=1000,
                    policy_kwargs=dict(net_arch=[16], num_steps=2), device="cpu")
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    return atari_example.DQN(SpikingQPolicy, env, **{**settings, **kwargs})


def test_protocol_dqn_trains_on_the_mse_loss(atari_example):
    import stable_baselines3.dqn.dqn as sb3_dqn
    import torch.nn.functional as F

    model = _cartpole_dqn(atari_example, td_loss="mse", max_grad_norm=math.inf)
    model.learn(64)  # fills the buffer; no update yet (SB3 updates once num_timesteps > learning_starts)
    q_net, target = copy.deepcopy(model.q_net), copy.deepcopy(model.q_net_target)
    np.random.seed(1)
    batch = model.replay_buffer.sample(16)
    with torch.no_grad():
        y = batch.rewards + (1 - batch.dones) * 0.99 * target(batch.next_observations).max(1)[0].reshape(-1, 1)
        q = q_net(batch.observations).gather(1, batch.actions.long())
    mse, huber = F.mse_loss(q, y).item(), F.smooth_l1_loss(q, y).item()
    assert abs(mse - huber) > 0.1 * mse  # the two losses are told apart
    np.random.seed(1)  # the same minibatch
    model.train(1, 16)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(mse, rel=1e-6)
    assert sb3_dqn.F is F  # SB3's module is left as it was


def test_protocol_dqn_flips_one_coin_per_env(atari_example):
    model = _cartpole_dqn(atari_example, epsilon_per_env=True)
    model.exploration_rate = 0.5
    obs = np.zeros((4000, 4), np.float32)
    greedy = model.policy.predict(obs, deterministic=True)[0]
    np.random.seed(0)
    model.action_space.seed(0)
    changed = model.predict(obs)[0] != greedy  # half explore, half of those pick the other of 2 actions
    assert 0.22 < changed.mean() < 0.28
    stock = _cartpole_dqn(atari_example)
    stock.exploration_rate = 0.5
    np.random.seed(0)
    assert (stock.predict(obs)[0] != greedy).mean() in (0.0, pytest.approx(0.5, abs=0.03))  # one coin for all


@pytest.mark.parametrize("warmup", ["random", "epsilon_greedy"])
def test_protocol_dqn_warmup_actions(atari_example, warmup):
    model = _cartpole_dqn(atari_example, warmup_actions=warmup, learning_starts=1000, exploration_initial_eps=0.0,
                          exploration_final_eps=0.0)
    eager = _cartpole_dqn(atari_example, warmup_actions=warmup, exploration_initial_eps=1.0)
    assert eager.exploration_rate == (1.0 if warmup == "epsilon_greedy" else 0.0)  # DSQN's first action too
    model.learn(60)
    buffer = model.replay_buffer
    greedy = model.policy.predict(buffer.observations[:60, 0], deterministic=True)[0]
    same = float(np.mean(buffer.actions[:60, 0, 0] == greedy))
    assert (same == 1.0) if warmup == "epsilon_greedy" else (same < 0.8)  # SB3: uniform random


class _Counter(gym.Env):
    """Frames 1, 2, 3, ... (2x2, one channel, last: as make_atari_env's); an episode ends after 3 steps."""

    observation_space = spaces.Box(0, 255, (2, 2, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def __init__(self):
        self.frame = 0

    def _obs(self):
        self.frame += 1
        return np.full((2, 2, 1), self.frame, np.uint8)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, self.t == 3, False, {}


def test_copies_frame_stack_starts_episodes_from_copies(atari_example):
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = atari_example.CopiesFrameStack(DummyVecEnv([_Counter]), n_stack=4)
    frames = lambda obs: obs[0, 0, 0].tolist()  # noqa: E731
    assert frames(env.reset()) == [1, 1, 1, 1]
    assert frames(env.step(np.array([0]))[0]) == [1, 1, 1, 2]
    assert frames(env.step(np.array([0]))[0]) == [1, 1, 2, 3]
    obs, _, dones, infos = env.step(np.array([0]))
    assert dones[0] and frames(obs) == [5, 5, 5, 5]  # 4 was the terminal frame, 5 the next episode's first
    assert infos[0]["terminal_observation"][0, 0].tolist() == [1, 2, 3, 4]
    assert frames(env.step(np.array([0]))[0]) == [5, 5, 5, 6]


class _FakeAtari(gym.Env):
    """A scripted game for SB3's Atari wrappers: per underlying step, a raw reward and whether a life is lost
    (2 lives); the frame is ``100 * game + step`` after that step (step 0: after the reset). Actions are recorded
    and otherwise ignored."""

    SCRIPT: ClassVar = [(10, False), (0, False), (5, False), (-3, False), (0, True), (7, False), (0, False),
                        (0, False), (2, False), (100, True)]
    observation_space = spaces.Box(0, 255, (2, 2, 1), np.uint8)
    action_space = spaces.Discrete(4)

    def __init__(self):
        self.ale = types.SimpleNamespace(lives=lambda: self.lives)
        self.games, self.actions = -1, []

    def get_action_meanings(self):
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def _obs(self):
        return np.full((2, 2, 1), 100 * self.games + self.t, np.uint8)

    def reset(self, *, seed=None, options=None):
        self.games, self.t, self.lives = self.games + 1, 0, 2
        return self._obs(), {}

    def step(self, action):
        reward, lost = self.SCRIPT[self.t]
        self.t += 1
        self.lives -= lost
        self.actions.append(int(action))
        return self._obs(), float(reward), self.lives == 0, False, {"lives": self.lives}


class _Greedy:
    """A policy that always answers action 3 and keeps the stacks it was shown."""

    def __init__(self):
        self.seen = []

    def predict(self, obs, deterministic=False):
        assert deterministic and obs.shape == (1, 4, 2, 2)
        self.seen.append(obs[0, :, 0, 0].tolist())
        return np.array([3]), None


def _fake_atari_env(terminal_on_life_loss, clip_reward):
    from stable_baselines3.common.atari_wrappers import ClipRewardEnv, EpisodicLifeEnv, FireResetEnv
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

    game = _FakeAtari()

    def make():  # SB3's AtariWrapper's order, without no-ops, frame skip and resizing
        env = Monitor(game)
        env = EpisodicLifeEnv(env) if terminal_on_life_loss else env
        env = ClipRewardEnv(FireResetEnv(env))
        return env if clip_reward else env.env

    return game, VecTransposeImage(DummyVecEnv([make]))


def test_authors_score_datsqn_sums_clipped_rewards_over_the_lives(atari_example):
    game, env = _fake_atari_env(terminal_on_life_loss=True, clip_reward=True)
    policy = _Greedy()
    authors, scores = atari_example.play_games(policy, env, games=2, fire_first=True)
    # the agent plays steps 2, 3, 4 (a life lost: the reset plays 5 as a no-op, 6 and 7 as FIRE-reset), 8, 9
    # (game over): clipped 1 - 1 + 0 + 1 + 1; the Monitor sees every step: 10 + 5 - 3 + 7 + 2 + 100
    assert authors == [2.0, 2.0] and scores == [121.0, 121.0]
    agent_steps = [a for i, a in enumerate(game.actions) if i % 10 in (2, 3, 4, 8, 9)]
    assert agent_steps == [1, 3, 3, 3, 3] * 2  # FIRE on the first step of each game, not after a life loss
    # stacks: copies of a game's first frame, then on across the life loss (DATSQN_test.py's frame stack)
    first = [[2, 2, 2, 2], [2, 2, 2, 3], [2, 2, 3, 4], [2, 3, 4, 8], [3, 4, 8, 9]]
    assert policy.seen == first + [[f + 100 for f in s] for s in first]


def test_authors_score_dsqn_is_the_raw_game(atari_example):
    game, env = _fake_atari_env(terminal_on_life_loss=False, clip_reward=False)
    policy = _Greedy()
    authors, scores = atari_example.play_games(policy, env, games=2, epsilon=0.0)
    assert authors == [111.0, 111.0] and scores == [121.0, 121.0]  # steps 2-9 played; 0-1: FIRE-reset
    assert policy.seen[:3] == [[2, 2, 2, 2], [2, 2, 2, 3], [2, 2, 3, 4]] and len(policy.seen) == 16
    assert game.actions == ([1, 2] + [3] * 8) * 2 + [1, 2]  # FIRE-resets (1, 2); the env has begun a 3rd game
    # epsilon: a coin per step from the given generator, then a uniform action from it
    game, env = _fake_atari_env(terminal_on_life_loss=False, clip_reward=False)
    atari_example.play_games(_Greedy(), env, games=1, epsilon=0.5, rng=np.random.default_rng(3))
    rng, expected = np.random.default_rng(3), []
    for _ in range(8):
        expected.append(int(rng.integers(4)) if rng.random() < 0.5 else 3)
    assert game.actions[2:10] == expected and expected != [3] * 8


@pytest.mark.skipif(not atari_ready(), reason="Atari needs ale-py with ROMs and OpenCV")
@pytest.mark.parametrize("preset", ["datsqn", "dsqn"])
def test_atari_example_runs_the_authors_protocol(tmp_path, preset):
    out = run_python(["examples/dqn_atari.py", "--preset", preset, "--total-timesteps", "300", "--learning-starts",
                      "100", "--buffer-size", "1000", "--batch-size", "8", "--eval-freq", "100", "--eval-episodes",
                      "1", "--num-steps", "2", "--no-progress-bar", "--save", tmp_path / "atari", "--record", tmp_path])
    name = f"BreakoutNoFrameskip-v4 {preset} seed 0: "
    assert f"preset {preset}, its authors' protocol, {preset} evaluation" in out
    score = r"authors' score -?\d+\.\d ± \d+\.\d, game score -?\d+\.\d ± \d+\.\d"
    # DATSQN counts its checkpoints from the end of the warm-up (100 + 100), DSQN from step 0
    steps = [200] if preset == "datsqn" else [100, 200]
    assert re.findall(rf"^{name}eval at ([\d,]+) steps: {score} \(best", out, re.M) == [f"{s:,}" for s in steps]
    assert re.search(rf"^{name}final eval at 300 steps: {score}", out, re.M), out[-3000:]
    assert re.search(rf"^{name}authors' score -?\d+\.\d\d ± \d+\.\d\d \(.+\), game score -?\d+\.\d\d ± \d+\.\d\d "
                     r"\(raw rewards of whole games, SB3's Monitor\); 1 games", out, re.M), out[-3000:]
    record = json.loads((tmp_path / f"BreakoutNoFrameskip-v4_{preset}_seed0.json").read_text())
    assert [p[0] for p in record["curve"]] == [p[0] for p in record["game_curve"]] == [*steps, 300]
    assert record["final"] == record["curve"][-1][1] and record["final_game"] == record["game_curve"][-1][1]
    assert record["best"] == max(p[1] for p in record["curve"]) and record["evaluation"]["name"] == preset
    assert record["policy_kwargs"] == {"preset": preset, "num_steps": 2}
    protocol = record["args"]
    assert protocol["learning_rate"] == (5e-5 if preset == "datsqn" else 2.5e-4) and protocol["batch_size"] == 8
    assert protocol["loss"] == ("smooth_l1" if preset == "datsqn" else "mse") and protocol["max_grad_norm"] == math.inf
    saved = [str(tmp_path / "atari_best.zip")] * (preset == "dsqn") * len(steps)  # DSQN keeps its best network
    assert load_lines(out)[-1] == str(tmp_path / "atari.zip") and set(load_lines(out)[:-1]) <= set(saved)
    if preset == "dsqn":
        assert (tmp_path / "atari_best.zip").is_file()
        script = ("import sys\nfrom stable_baselines3 import DQN\nm = DQN.load(sys.argv[1])\n"
                  "print(type(m.policy).__name__, m.policy_kwargs['preset'])")
        assert "SpikingCnnQPolicy dsqn" in run_python(["-c", script, str(tmp_path / "atari_best.zip")])
