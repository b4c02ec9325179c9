"""TD3 with a Pop-SAN (or MDC-SAN) spiking actor on HalfCheetah-v5: the seed paper's setting.

    python examples/td3_halfcheetah.py --steps 50000                      # Pop-SAN, rectangular
    python examples/td3_halfcheetah.py --steps 50000 --surrogate trapezoid
    python examples/td3_halfcheetah.py --steps 50000 --neuron dynamic     # MDC-SAN neurons
    python examples/td3_halfcheetah.py --steps 50000 --ann                # SB3's ANN actor
    python examples/td3_halfcheetah.py --help

Settings (Pop-SAN's TD3, seed 001): actor lr 1e-4 / critic lr 1e-3 (``actor_lr_ratio=0.1``),
batch 100, 50 gradient steps every 50 env steps, 10k random steps first, Gaussian action noise
0.1, gamma 0.99, tau 0.005, replay 1M, observations normalised by ``VecNormalize`` and clipped
to +-3, encoder/decoder populations of 10, T = 5, hidden layers [256, 256] (actor and critic).
The ANN baseline (``--ann``) keeps every RL setting but trains its actor at the critic's rate, as
in TD3. Needs ``pip install mujoco``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize, sync_envs_normalization

from snnrl_sb3 import PopSpikingTD3Policy
from snnrl_sb3.cli import parse_args


@dataclass
class Args:
    env_id: str = "HalfCheetah-v5"
    """gymnasium environment id"""
    steps: int = 50_000
    """environment steps (the seed paper: 1M)"""
    seed: int = 0
    """random seed"""
    ann: bool = False
    """train SB3's ANN actor (MlpPolicy) instead of the spiking one"""
    neuron: str = "current_lif"
    """hidden neuron: current_lif (Pop-SAN), dynamic (MDC-SAN), ternary, lif, symmetric_ternary"""
    surrogate: str = "rectangular"
    """surrogate gradient: rectangular (Pop-SAN), triangular, trapezoid, atan, ..."""
    surrogate_kwargs: str = "{}"
    """surrogate parameters as JSON, e.g. '{"w1": 0.2, "w2": 0.6}'"""
    pop_dim: int = 10
    """population neurons per observation / action dimension"""
    num_steps: int = 5
    """spiking simulation steps T per action"""
    net_arch: str = "256,256"
    """hidden layers of actor and critic"""
    learning_rate: float = 1e-3
    """critic learning rate"""
    actor_lr_ratio: float = 0.1
    """spiking actor learning rate / critic learning rate (Pop-SAN: 1e-4 / 1e-3)"""
    learning_starts: int = 10_000
    """random steps before learning"""
    batch_size: int = 100
    """minibatch size"""
    train_freq: int = 50
    """env steps between updates (and gradient steps per update)"""
    gamma: float = 0.99
    """discount"""
    noise_std: float = 0.1
    """Gaussian exploration noise"""
    clip_obs: float = 3.0
    """VecNormalize observation clip"""
    eval_freq: int = 10_000
    """evaluate every this many steps (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    threads: int = 1
    """torch CPU threads"""
    progress_bar: bool = True
    """show a progress bar"""
    results: str = ""
    """write a JSON summary here"""
    save: str = ""
    """save the trained model here (zip; VecNormalize stats next to it as .pkl)"""


class _Curve(BaseCallback):
    """Called by EvalCallback after every evaluation: records (timesteps, mean return)."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[list[float]] = []

    def _on_step(self) -> bool:
        self.points.append([int(self.parent.num_timesteps), float(self.parent.last_mean_reward)])
        return True


def _arch(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _make_env(env_id: str, clip_obs: float, training: bool) -> VecNormalize:
    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    return VecNormalize(venv, training=training, norm_obs=True, norm_reward=False, clip_obs=clip_obs)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(Args, argv, description=__doc__)
    torch.set_num_threads(args.threads)
    env = _make_env(args.env_id, args.clip_obs, training=True)
    eval_env = _make_env(args.env_id, args.clip_obs, training=False)
    n_actions = env.action_space.shape[0]
    noise = NormalActionNoise(np.zeros(n_actions), args.noise_std * np.ones(n_actions))
    net_arch = _arch(args.net_arch)
    if args.ann:
        policy, policy_kwargs = "MlpPolicy", dict(net_arch=net_arch)
    else:
        policy = PopSpikingTD3Policy
        policy_kwargs = dict(net_arch=net_arch, neuron=args.neuron, surrogate=args.surrogate,
                             surrogate_kwargs=json.loads(args.surrogate_kwargs) or None, pop_dim=args.pop_dim,
                             num_steps=args.num_steps, actor_lr_ratio=args.actor_lr_ratio,
                             mean_range=[-args.clip_obs, args.clip_obs])
    model = TD3(policy, env, learning_rate=args.learning_rate, buffer_size=1_000_000,
                learning_starts=min(args.learning_starts, args.steps), batch_size=args.batch_size, gamma=args.gamma,
                train_freq=args.train_freq, gradient_steps=args.train_freq, action_noise=noise,
                policy_kwargs=policy_kwargs, seed=args.seed, verbose=0)
    eval_freq = args.eval_freq if args.eval_freq > 0 else args.steps
    curve = _Curve()
    callback = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=eval_freq, deterministic=True,
                            callback_after_eval=curve, verbose=0)
    start = time.perf_counter()
    model.learn(args.steps, callback=callback, progress_bar=args.progress_bar)
    seconds = time.perf_counter() - start
    sync_envs_normalization(env, eval_env)
    final, final_std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    label = "ANN" if args.ann else f"{args.neuron}/{args.surrogate}"
    best = max([float(final)] + [r for _, r in curve.points])
    summary = dict(args=dataclasses.asdict(args), label=label, best_eval_mean=best,
                   final_eval_mean=float(final), final_eval_std=float(final_std), curve=curve.points,
                   seconds=seconds, steps_per_second=args.steps / seconds)
    print(f"{label} TD3 {args.env_id} seed {args.seed} {args.steps} steps: best eval mean "
          f"{summary['best_eval_mean']:.1f}, final {final:.1f} +/- {final_std:.1f}, "
          f"{summary['steps_per_second']:.0f} steps/s")
    if args.results:
        with open(args.results, "w") as fh:
            json.dump(summary, fh, indent=1)
    if args.save:
        model.save(args.save)
        env.save(args.save.removesuffix(".zip") + "_vecnormalize.pkl")
    return summary


if __name__ == "__main__":
    main()
