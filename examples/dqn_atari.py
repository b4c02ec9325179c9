"""Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3 spiking Q-networks): the seed-000 configuration, or a
published system trained and evaluated as its authors did (``--preset``).

    pip install -e ".[atari]"                           # from a clone (the package is not on PyPI yet)
    python examples/dqn_atari.py --env-id BreakoutNoFrameskip-v4 --total-timesteps 10000000
    python examples/dqn_atari.py --preset datsqn        # Ghoreishee et al. 2025 (also dtsqn, dsqn_binary)
    python examples/dqn_atari.py --preset dsqn          # Chen et al. 2022 (spikingjelly's DSQN)
    python examples/dqn_atari.py --preset dsqn --help   # every flag, showing the protocol's values

Without ``--preset``: SB3's Atari preprocessing (AtariWrapper: no-op reset, frame skip 4, 84x84 grey,
episodic life, clipped reward; 4 stacked frames, channels first) and rl-zoo3's DQN Atari settings, with the
network of Ghoreishee et al. (seed 000): spiking NatureCNN (3 conv + 2 FC), asymmetric ternary neurons,
Bernoulli rate-coded pixels, T = 20, spike-count read-out; greedy evaluations by SB3's EvalCallback.

With ``--preset NAME``: the preset's network (snnrl_sb3/presets.py, built exactly as the reference code
builds it) and the protocol ``PROTOCOLS[NAME]`` below: the authors' training hyperparameters and their
evaluation, which scores the same games twice: the *authors' score* (what their code reports: DATSQN's
clipped rewards summed over the lives of a game; DSQN's raw game with epsilon 0.05) and the *game score*
(raw reward of whole games, as SB3's Monitor reports it). Flags given explicitly override the protocol (e.g.
``--total-timesteps`` for a short run). Every evaluation is printed as it happens; the model is saved
(``--save``) with the line that loads it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
import types
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import stable_baselines3
import stable_baselines3.dqn.dqn as sb3_dqn
import torch
import torch.nn.functional as F
import tyro
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecTransposeImage

from snnrl_sb3 import SpikingCnnQPolicy, SpikingQPolicy
from snnrl_sb3.presets import PRESETS
from snnrl_sb3.results import LearningCurve, ProgressBar, save_model, write_record
from snnrl_sb3.utils import tune_allocator

MISSING = ""
try:
    import ale_py
    import cv2  # noqa: F401  (SB3's AtariWrapper resizes frames with OpenCV)
except ImportError as err:  # optional; main() says how to install them
    ale_py, MISSING = None, str(err)

# ------------------------------------------------------------------ the authors' protocols

# Ghoreishee et al. 2025, github.com/Aref7792/DATSQN, DATSQN_DTSQN_DSQN/DATSQN_train.py (DTSQN_train.py and
# DSQN_train.py are the same loop with another neuron): make_atari_env(n_envs=4, seed=0) + VecFrameStack(4),
# its own DQN loop, Adam, smooth-L1.
GHOREISHEE = dict(
    total_timesteps=4_000_000,      # l.304: 1e6 vector steps x 4 envs
    n_envs=4,                       # l.46, l.260
    learning_rate=5e-5,             # l.49, l.278 (Adam)
    gamma=0.99,                     # l.40
    batch_size=32,                  # l.41
    buffer_size=400_000,            # l.42 (transitions)
    learning_starts=40_000,         # l.43, l.282: 10,000 random vector steps x 4 envs
    train_freq=1,                   # l.304-338: one gradient step per vector step
    target_update_interval=10_000,  # l.48, l.341: every 2,500 vector steps
    exploration_steps=1_000_000,    # l.306: epsilon 1 -> 0.1 over 1e6 transitions ...
    exploration_after_warmup=True,  # ... counted from the end of the warm-up
    exploration_final_eps=0.1,      # l.45
    epsilon_per_env=True,           # l.209-219: one epsilon coin per env
    warmup_actions="random",        # l.282-283
    loss="smooth_l1",               # l.243
    max_grad_norm=math.inf,         # l.336-338: no gradient clipping (SB3's DQN clips at 10)
    timeout_terminal=True,          # l.315: the stored done ends the TD target, time limits included
    stack_start="zeros",            # l.261: SB3's VecFrameStack
    optimize_memory_usage=True,     # memory only: exact here (it loses the next frames of terminal transitions)
    evaluation="datsqn",            # DATSQN_test.py, see EVALUATIONS
    eval_freq=40_000,               # l.370: a checkpoint every 10,000 vector steps of learning
    eval_episodes=10,               # DATSQN_test.py l.42 (TC): 10 games per checkpoint
    keep_best=False,                # every checkpoint is kept and evaluated
)

# Chen et al. 2022, spikingjelly, activation_based/examples/DSQN: train.py, utils/common.py (HYPERPARAMS, the
# same for every game), utils/atari_wrappers.py: one env, DeepMind wrappers, ptan's DQN loop, Adam, MSE.
CHEN = dict(
    total_timesteps=20_000_000,     # train.py --frame_num (agent steps of 4 frames)
    n_envs=1,
    learning_rate=2.5e-4,           # common.py learning_rate (Adam)
    gamma=0.99,                     # common.py gamma
    batch_size=128,                 # common.py batch_size 32 x PLAY_STEPS 4
    buffer_size=1_000_000,          # common.py replay_size
    learning_starts=50_000,         # common.py replay_initial
    train_freq=4,                   # train.py PLAY_STEPS: one gradient step per 4 steps
    target_update_interval=10_000,  # common.py target_net_sync
    exploration_steps=900_000,      # EpsilonTracker: max(0.1, 1 - t / 1e6), 0.1 at 0.9M steps ...
    exploration_after_warmup=False,  # ... counted from step 0
    exploration_final_eps=0.1,      # common.py epsilon_final
    epsilon_per_env=False,          # one env
    warmup_actions="epsilon_greedy",  # the agent acts (epsilon-greedily) while the buffer fills
    loss="mse",                     # common.py calc_loss_dqn: nn.MSELoss
    max_grad_norm=math.inf,         # no gradient clipping
    timeout_terminal=True,          # ptan masks the target at every done (last_state None), time limits included
    stack_start="copies",           # wrap_deepmind(frame_stack=True): baselines' FrameStack repeats the first frame
    optimize_memory_usage=True,     # memory only: exact here
    evaluation="dsqn",              # train.py test(), see EVALUATIONS
    eval_freq=100_000,              # train.py MODEL_SAVE_FREQUENCY
    eval_episodes=30,               # train.py test(n_episodes=30)
    keep_best=True,                 # train.py saves the best-scoring network
)

PROTOCOLS: dict[str, dict[str, Any]] = {"datsqn": GHOREISHEE, "dtsqn": GHOREISHEE, "dsqn_binary": GHOREISHEE,
                                        "dsqn": CHEN}

EVALUATIONS: dict[str, dict[str, Any]] = {
    # DATSQN_test.py: make_atari_env(n_envs=1, seed=seed) (episodes end at a life loss, clipped rewards), epsilon 0
    # with the network's fresh Bernoulli noise (the presets' deterministic_noise="fresh"), FIRE on the first step
    # of a game (l.240-242), frames stacked from copies of a game's first frame and on across life losses
    # (BatchedPytorchFrameStack); a game's score is the sum of its clipped rewards over all its lives.
    # Checkpoints are counted from the end of the warm-up.
    "datsqn": dict(terminal_on_life_loss=True, clip_reward=True, epsilon=0.0, fire_first=True, after_warmup=True,
                   score="clipped rewards summed over the lives of each game, epsilon 0, FIRE at each game start"),
    # train.py test(): wrap_deepmind(episode_life=False, clip_rewards=False, frame_stack=True): whole games,
    # raw rewards, epsilon 0.05 (the authors' score is the game score here).
    "dsqn": dict(terminal_on_life_loss=False, clip_reward=False, epsilon=0.05, fire_first=False, after_warmup=False,
                 score="raw rewards of whole games, epsilon 0.05"),
}

# What still differs from the references (SB3 runs the loop):
# * SB3 copies the target network in _on_step, just before the gradient step of the env step that reaches a
#   multiple of target_update_interval; the references copy just after it: the target is 1 gradient step (DSQN)
#   or 2 (DATSQN: l.341, one vector step after each multiple) older, and DATSQN also copies after its 1st update.
# * minibatches are drawn with replacement (DATSQN_train.py l.332: random.sample, without replacement).
# * DATSQN_train.py l.296 resets its 4 envs once after the warm-up; SB3 does not.
# * DATSQN's checkpoints are 1 vector step later than these evaluations (l.370 counts from 0 after the warm-up).
# * DATSQN_test.py ends a game after a hard-coded number of life-loss dones (DTER, l.45-58; 1 for a game it does
#   not list) and resets again (l.256); here a game ends at the ALE's game over (SB3's Monitor: lives exhausted or the
#   time limit) and the env's own reset starts the next. DTER is each listed game's number of lives (Breakout
#   5, ..., Jamesbond 6), so the games agree unless a life is won.
# * DSQN: the evaluation env is seeded (--seed; spikingjelly's test env is not); epsilon is updated every step,
#   not every 4 (less than 4e-6 apart); the first update comes at the end of the rollout that passes
#   learning_starts (ptan's: when its buffer holds 50,000 transitions, a few steps apart).
# * DSQN: frames are not transposed (spikingjelly's ImageToPyTorch swaps height and width: a relabelling that
#   a network trained from scratch cannot tell).
NETWORK_FLAGS = ("num_steps", "neuron", "encoder", "readout")


@dataclass
class Args:
    """Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3 spiking Q-networks, seed-000 network or a preset)."""

    preset: Literal["datsqn", "dtsqn", "dsqn_binary", "dsqn"] | None = None
    """a published system with its authors' protocol (PROTOCOLS): the preset's network, their hyperparameters
    and evaluation; None: the seed-000 configuration"""
    env_id: str = "BreakoutNoFrameskip-v4"
    """Atari environment id (a NoFrameskip-v4 id: SB3's AtariWrapper skips frames itself)"""
    total_timesteps: int = 10_000_000
    """environment-step budget, summed over the --n-envs envs (rl-zoo3: 1e7)"""
    seed: int = 0
    """random seed of the agent (the evaluation env uses seed + 1000; with --evaluation datsqn or dsqn, seed)"""
    num_steps: int = 20
    """spiking simulation length T per decision (seed 000: 20)"""
    neuron: str = "ternary"
    """spiking neuron: ternary (seed 000, DATSQN), lif, symmetric_ternary, current_lif, sj_lif (DSQN)"""
    encoder: str = "bernoulli"
    """pixel coding: bernoulli (seed 000, rate-coded spikes) or direct"""
    readout: str = "spike_count"
    """Q-value read-out: spike_count (seed 000), current_sum (DATSQN), membrane_max (DSQN), membrane_mean,
    membrane_last"""
    dueling: bool = False
    """dueling read-out (seed 002's dueling DQN)"""
    policy_kwargs: str = "{}"
    """JSON of further SpikingQPolicy kwargs, e.g. '{"surrogate": "trapezoid"}'"""
    learning_rate: float = 1e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount factor"""
    batch_size: int = 32
    """minibatch size"""
    buffer_size: int = 100_000
    """replay size (100k stacks of frames need ~5.6 GB without optimize_memory_usage)"""
    learning_starts: int = 100_000
    """warm-up steps before learning (random actions unless --warmup-actions epsilon_greedy)"""
    target_update_interval: int = 1000
    """environment steps between target network updates"""
    train_freq: int = 4
    """environment steps between gradient steps (per env: 1 with 4 envs is one update per 4 transitions)"""
    exploration_fraction: float = 0.1
    """fraction of the budget over which epsilon anneals from 1 to --exploration-final-eps"""
    exploration_steps: int = 0
    """if > 0: anneal epsilon over this many steps instead of --exploration-fraction of the budget"""
    exploration_after_warmup: bool = False
    """start annealing epsilon at the end of --learning-starts (DATSQN), not at step 0"""
    exploration_final_eps: float = 0.01
    """final epsilon"""
    epsilon_per_env: bool = False
    """one epsilon coin per env (DATSQN) instead of SB3's one coin per vector step"""
    warmup_actions: Literal["random", "epsilon_greedy"] = "random"
    """actions during --learning-starts: random (SB3) or the network's epsilon-greedy ones (DSQN)"""
    loss: Literal["smooth_l1", "mse"] = "smooth_l1"
    """TD loss: smooth_l1 (SB3's DQN, DATSQN) or mse (DSQN)"""
    max_grad_norm: float = 10.0
    """gradient-norm clipping (SB3: 10; inf: none, as both references)"""
    timeout_terminal: bool = False
    """time-limit truncations end the TD target like any done (the references); SB3 bootstraps them"""
    stack_start: Literal["zeros", "copies"] = "zeros"
    """an episode's first stack of 4 frames: zeros (SB3's VecFrameStack, DATSQN) or copies of its first frame (DSQN)"""
    optimize_memory_usage: bool = False
    """SB3's replay buffer that stores each frame stack once (half the memory; needs --timeout-terminal)"""
    n_envs: int = 1
    """parallel training environments"""
    evaluation: Literal["sb3", "datsqn", "dsqn"] = "sb3"
    """how evaluations play and score: sb3 (EvalCallback, greedy), datsqn (DATSQN_test.py) or dsqn (spikingjelly's
    test()); the last two print the authors' score and the game score"""
    eval_freq: int = 500_000
    """environment steps between evaluations (0: only at the end; --evaluation datsqn counts from the end of
    --learning-starts)"""
    eval_episodes: int = 5
    """games per evaluation (whole games, raw score: SB3's Monitor sits below the AtariWrapper)"""
    keep_best: bool = False
    """also save the model at every new best authors' score, as *_best.zip next to --save (DSQN)"""
    save: str = "runs/dqn_atari/{env}_seed{seed}.zip"
    """where to save the model ({env}, {seed}, {preset} filled in; .zip added if missing); empty: don't"""
    record: str = ""
    """folder to write the run's record into (learning curve and summary, JSON); empty: don't"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    device: str = "auto"
    """torch device: auto, cpu, cuda, ..."""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


# ------------------------------------------------------------------ helpers

# SB3's DQN.train computes its loss as F.smooth_l1_loss: the same functional module with that name meaning MSE
_MSE_FUNCTIONAL = types.SimpleNamespace(**{**vars(F), "smooth_l1_loss": F.mse_loss})


class DQN(stable_baselines3.DQN):
    """SB3's DQN with the three training switches the references need; all off (the defaults), it is SB3's DQN.

    * ``td_loss="mse"``: DSQN's TD loss (``nn.MSELoss``). SB3's ``DQN.train`` hard-codes ``F.smooth_l1_loss``,
      so while ``train`` runs, the ``F`` of SB3's dqn module is torch's functional module with that name bound
      to ``F.mse_loss`` (the rest of ``train``, clipping and logging included, is SB3's own).
    * ``epsilon_per_env``: one epsilon coin per env (DATSQN's ``act``); SB3 flips one coin per vector step.
    * ``warmup_actions="epsilon_greedy"``: the network acts epsilon-greedily during ``learning_starts`` (DSQN),
      from the first step; SB3 acts uniformly at random. ``learning_starts`` still delays the updates.

    Named ``DQN`` so that the saved model loads with ``stable_baselines3.DQN.load`` (the switches only act in
    training: a model trained on there is SB3's DQN)."""

    def __init__(self, *args: Any, td_loss: str = "smooth_l1", epsilon_per_env: bool = False,
                 warmup_actions: str = "random", **kwargs: Any) -> None:
        if td_loss not in ("smooth_l1", "mse") or warmup_actions not in ("random", "epsilon_greedy"):
            raise ValueError(f"td_loss must be smooth_l1 or mse, warmup_actions random or epsilon_greedy; got "
                             f"{td_loss!r}, {warmup_actions!r}")
        self.td_loss, self.epsilon_per_env, self.warmup_actions = td_loss, epsilon_per_env, warmup_actions
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.warmup_actions == "epsilon_greedy":  # SB3 sets epsilon after each step: the first one too
            self.exploration_rate = self.exploration_schedule(1.0)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> Any:
        if self.warmup_actions == "epsilon_greedy":
            learning_starts = 0  # SB3 acts at random while num_timesteps < learning_starts
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        if deterministic or not self.epsilon_per_env or not self.policy.is_vectorized_observation(observation):
            return super().predict(observation, state, episode_start, deterministic)
        actions, state = self.policy.predict(observation, state, episode_start, deterministic)
        explore = np.random.rand(len(actions)) < self.exploration_rate  # one coin per env
        actions[explore] = [self.action_space.sample() for _ in range(int(explore.sum()))]
        return actions, state

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.td_loss == "smooth_l1":
            return super().train(gradient_steps, batch_size)
        sb3_dqn.F = _MSE_FUNCTIONAL
        try:
            super().train(gradient_steps, batch_size)
        finally:
            sb3_dqn.F = F


class CopiesFrameStack(VecFrameStack):
    """SB3's VecFrameStack whose stack starts each episode as copies of its first frame (baselines' FrameStack,
    as spikingjelly's DSQN trains), not zeros."""

    def reset(self) -> np.ndarray:
        return self._restart(super().reset(), np.ones(self.num_envs, dtype=bool))

    def step_wait(self) -> Any:
        observations, rewards, dones, infos = super().step_wait()
        return self._restart(observations, dones), rewards, dones, infos

    def _restart(self, stack: np.ndarray, which: np.ndarray) -> np.ndarray:
        # in place (the array is the stack's state): the newest frame over the zeros VecFrameStack put before it
        stacking = self.stacked_obs
        axis, channels = stacking.stack_dimension, self.venv.observation_space.shape[stacking.repeat_axis]
        newest = np.take(stack[which], range(-channels, 0), axis=axis)
        stack[which] = np.concatenate([newest] * stacking.n_stack, axis=axis)
        return stack


def exploration(args: Args) -> tuple[float, float]:
    """SB3's ``(exploration_initial_eps, exploration_fraction)`` for the epsilon schedule ``args`` asks for.

    With ``--exploration-steps N``, epsilon falls linearly from 1 to the final value over N steps, starting at
    0 or, with ``--exploration-after-warmup``, at ``learning_starts`` (S). SB3's schedule is a line from step 0,
    so it gets the line through (S, 1) and (S + N, final): it starts at ``1 + (1 - final) S / N`` (above 1:
    every action random, as in the warm-up anyway) and ends at (S + N) / budget."""
    if args.exploration_steps <= 0:
        return 1.0, args.exploration_fraction
    start = args.learning_starts if args.exploration_after_warmup else 0
    initial = 1.0 + (1.0 - args.exploration_final_eps) * start / args.exploration_steps
    return initial, (start + args.exploration_steps) / args.total_timesteps


def network_kwargs(args: Args) -> dict[str, Any]:
    """The policy kwargs: the seed-000 network from the flags, or the preset with the flags that differ from it."""
    extra = json.loads(args.policy_kwargs)
    if args.preset is None:
        return dict(num_steps=args.num_steps, neuron=args.neuron, encoder=args.encoder, readout=args.readout,
                    dueling=args.dueling, **extra)
    preset = PRESETS[args.preset].kwargs
    changed = {key: getattr(args, key) for key in NETWORK_FLAGS if getattr(args, key) != preset[key]}
    return dict(preset=args.preset, **changed, **({"dueling": True} if args.dueling else {}), **extra)


def play_games(policy: Any, env: VecEnv, games: int, epsilon: float = 0.0, fire_first: bool = False,
               rng: np.random.Generator | None = None, n_stack: int = 4) -> tuple[list[float], list[float]]:
    """Play ``games`` whole games as the references' evaluators do; each game's two scores.

    ``env``: one env of channels-first frames (``VecTransposeImage(make_atari_env(..., n_envs=1))``, SB3's
    Monitor below the AtariWrapper). Each step stacks the last ``n_stack`` frames (a game starts from copies
    of its first frame and the stack runs on across life losses), takes ``policy``'s greedy action
    (``predict(..., deterministic=True)``), with probability ``epsilon`` a uniformly random one instead (coins
    from ``rng``), and FIRE (action 1) on the first step of a game if ``fire_first``. A game ends when the
    Monitor reports its episode (the ALE's game over or time limit).

    Returns ``(authors, game)``, one entry per game: the sum of the rewards ``env`` returned over all its
    episodes (DATSQN: clipped rewards summed over the lives; DSQN: the raw game), and the Monitor's return
    of the game (raw rewards, whole game: the game score)."""
    rng = np.random.default_rng() if rng is None else rng
    authors: list[float] = []
    scores: list[float] = []
    frame = env.reset()
    stack = deque([frame] * n_stack, maxlen=n_stack)
    total, first = 0.0, True
    while len(scores) < games:
        action, _ = policy.predict(np.concatenate(stack, axis=1), deterministic=True)
        if epsilon > 0 and rng.random() < epsilon:
            action = np.array([rng.integers(env.action_space.n)])
        if fire_first and first:
            action = np.array([1])  # FIRE
        first = False
        frame, reward, _, infos = env.step(action)
        total += float(reward[0])
        if "episode" in infos[0]:  # the game is over; the env has started the next one
            authors.append(total)
            scores.append(float(infos[0]["episode"]["r"]))
            total, first = 0.0, True
            stack.extend([frame] * n_stack)
        else:
            stack.append(frame)
    return authors, scores


class AuthorsEvaluation(BaseCallback):
    """Plays :func:`play_games` every ``freq`` env steps counted from ``start``, each time just after the
    gradient step that reaches them (SB3 calls ``_on_rollout_start`` after training on the last rollout), on
    a copy of the Q-network (its noise generator restarts from its seed: training's stays untouched). Prints
    and keeps both scores (``curve``: the authors' score, ``game_curve``: the game score, as
    ``(steps, mean, population std)``); with ``best_path``, saves the model at every new best authors' score."""

    def __init__(self, env: VecEnv, games: int, epsilon: float, fire_first: bool, freq: int, start: int,
                 name: str, seed: int, best_path: str = "") -> None:
        super().__init__()
        self.env, self.games, self.epsilon, self.fire_first = env, games, epsilon, fire_first
        self.freq, self.name, self.best_path = freq, name, best_path
        self.rng = np.random.default_rng(seed)
        self.next = start + freq if freq > 0 else math.inf
        self.curve: list[tuple[int, float, float]] = []
        self.game_curve: list[tuple[int, float, float]] = []

    @property
    def best(self) -> float:
        return max((mean for _, mean, _ in self.curve), default=-math.inf)

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self.next:
            self.evaluate()
            while self.next <= self.model.num_timesteps:
                self.next += self.freq

    def _on_step(self) -> bool:
        return True

    def evaluate(self, what: str = "eval") -> None:
        best, steps = self.best, self.model.num_timesteps
        authors, game = play_games(copy.deepcopy(self.model.q_net), self.env, self.games, self.epsilon,
                                   self.fire_first, self.rng)
        self.curve.append((steps, float(np.mean(authors)), float(np.std(authors))))
        self.game_curve.append((steps, float(np.mean(game)), float(np.std(game))))
        (_, a, sa), (_, g, sg) = self.curve[-1], self.game_curve[-1]
        print(f"{self.name}{what} at {steps:,} steps: authors' score {a:.1f} ± {sa:.1f}, game score {g:.1f} ± "
              f"{sg:.1f} (best authors' score {self.best:.1f})", flush=True)
        if self.best_path and a > best:
            save_model(self.model, self.best_path)


def parse_args(argv: list[str] | None = None) -> Args:
    """The command line, with ``--preset``'s protocol and network as the defaults: flags given override them."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--preset")
    name = pre.parse_known_args(argv)[0].preset
    default = Args()
    if name in PROTOCOLS:
        network = {key: PRESETS[name].kwargs[key] for key in NETWORK_FLAGS}
        default = replace(default, preset=name, save="runs/dqn_atari/{env}_{preset}_seed{seed}.zip", **network,
                          **PROTOCOLS[name])
    return tyro.cli(Args, default=default, args=argv, description=__doc__)


# ------------------------------------------------------------------ main

def main() -> None:
    args = parse_args()
    if ale_py is None:
        raise SystemExit(f"Atari needs ale-py and OpenCV ({MISSING}): pip install ale-py opencv-python-headless")
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    gym.register_envs(ale_py)
    stack = CopiesFrameStack if args.stack_start == "copies" else VecFrameStack
    env = stack(make_atari_env(args.env_id, n_envs=args.n_envs, seed=args.seed), n_stack=4)
    policy_kwargs = network_kwargs(args)
    initial_eps, fraction = exploration(args)
    model = DQN(SpikingCnnQPolicy if args.preset else SpikingQPolicy, env, learning_rate=args.learning_rate,
                gamma=args.gamma, batch_size=args.batch_size, buffer_size=args.buffer_size,
                learning_starts=args.learning_starts, target_update_interval=args.target_update_interval,
                train_freq=args.train_freq, gradient_steps=1, exploration_initial_eps=initial_eps,
                exploration_fraction=fraction, exploration_final_eps=args.exploration_final_eps,
                max_grad_norm=args.max_grad_norm, optimize_memory_usage=args.optimize_memory_usage,
                replay_buffer_kwargs=dict(handle_timeout_termination=not args.timeout_terminal),
                td_loss=args.loss, epsilon_per_env=args.epsilon_per_env, warmup_actions=args.warmup_actions,
                policy_kwargs=policy_kwargs, seed=args.seed, device=args.device, verbose=0)
    tag = args.env_id + (f" {args.preset}" if args.preset else "")
    name = f"{tag} seed {args.seed}: "
    print(f"{args.env_id}: observations {model.observation_space.shape}, spiking NatureCNN + FC "
          f"{model.policy.net_arch}, T={args.num_steps}, {args.neuron}, {args.encoder}"
          + (f"; preset {args.preset}, its authors' protocol, {args.evaluation} evaluation" if args.preset else ""),
          flush=True)
    save = args.save.format(env=args.env_id, seed=args.seed, preset=args.preset)
    if args.evaluation == "sb3":
        # channels first, as DQN wraps the training env; greedy (deterministic=True: frozen Bernoulli noise);
        # EvalCallback counts calls, one per n_envs steps
        eval_env = VecTransposeImage(VecFrameStack(make_atari_env(args.env_id, n_envs=1, seed=args.seed + 1000),
                                                   n_stack=4))
        curve = LearningCurve(name=name)
        evaluation: BaseCallback = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes,
                                                eval_freq=args.eval_freq // args.n_envs, deterministic=True,
                                                callback_after_eval=curve, verbose=0)
    else:
        kind = EVALUATIONS[args.evaluation]
        wrapper_kwargs = dict(terminal_on_life_loss=kind["terminal_on_life_loss"], clip_reward=kind["clip_reward"])
        eval_env = VecTransposeImage(make_atari_env(args.env_id, n_envs=1, seed=args.seed,
                                                    wrapper_kwargs=wrapper_kwargs))
        best_path = ((save[:-4] if save.endswith(".zip") else save) + "_best.zip") if save and args.keep_best else ""
        evaluation = curve = AuthorsEvaluation(
            eval_env, args.eval_episodes, kind["epsilon"], kind["fire_first"], args.eval_freq,
            args.learning_starts if kind["after_warmup"] else 0, name, args.seed, best_path)
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    record: dict[str, Any] = dict(tag=tag, seed=args.seed, env_id=args.env_id, preset=args.preset,
                                  steps=model.num_timesteps, budget=args.total_timesteps, seconds=seconds,
                                  policy_kwargs=policy_kwargs, args=asdict(args))
    if isinstance(curve, LearningCurve):
        if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
            curve.evaluate(model)  # no scheduled evaluation at the last step
        mean, std = curve.curve[-1][1:]
        print(f"{name}eval return {mean:.2f} ± {std:.2f} ({args.eval_episodes} episodes, best {curve.best:.2f}) "
              f"after {model.num_timesteps:,} steps in {seconds:.0f} s", flush=True)
        record.update(curve=curve.curve, final=mean, best=curve.best)
    else:
        if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
            curve.evaluate("final eval")
        (_, a, sa), (_, g, sg) = curve.curve[-1], curve.game_curve[-1]
        print(f"{name}authors' score {a:.2f} ± {sa:.2f} ({kind['score']}), game score {g:.2f} ± {sg:.2f} (raw "
              f"rewards of whole games, SB3's Monitor); {args.eval_episodes} games, best authors' score "
              f"{curve.best:.2f}; after {model.num_timesteps:,} steps in {seconds:.0f} s", flush=True)
        record.update(curve=curve.curve, game_curve=curve.game_curve, final=a, final_game=g, best=curve.best,
                      best_game=max(mean for _, mean, _ in curve.game_curve),
                      evaluation=dict(name=args.evaluation, **kind))
    if save:
        save_model(model, save)
    if args.record:
        path = os.path.join(args.record, f"{tag.replace(' ', '_')}_seed{args.seed}.json")
        print(f"wrote {write_record(path, record)}")


if __name__ == "__main__":
    main()
