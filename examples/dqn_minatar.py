"""Spiking DQN on MinAtar (stock SB3 DQN + snnrl_sb3.SpikingQPolicy, MinAtar DQN body).

    pip install minatar            # GPL-3.0: an optional extra, not a dependency of snnrl_sb3
    python examples/dqn_minatar.py --env-id MinAtar/Breakout-v1 --total-timesteps 1000000
    python examples/dqn_minatar.py --help

MinAtar observations are 10x10xC bool grids (channels last). SB3 does not treat them as images
(not uint8) and NatureCNN cannot take 10x10 inputs, so ``SpikingQPolicy`` picks its ``small_cnn``
body automatically: the MinAtar paper's conv 16@3x3 -> FC 128, with spiking neurons after both.
Hyperparameters follow the MinAtar DQN (Young & Tian, 2019) as in snnrl_sb3/hyperparams/dqn.yml.
Every evaluation is printed as it happens; the model is saved (``--save``) with the line that
loads it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

import gymnasium as gym
import torch
import tyro
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.results import LearningCurve, ProgressBar, save_model, write_record
from snnrl_sb3.utils import tune_allocator

try:
    import minatar.gym
except ImportError:  # optional (GPL-3.0); main() says how to install it
    minatar = None


@dataclass
class Args:
    """Spiking DQN on MinAtar (stock SB3 DQN + snnrl_sb3.SpikingQPolicy)."""

    env_id: str = "MinAtar/Breakout-v1"
    """MinAtar environment id (MinAtar/Asterix-v1, Breakout-v1, Freeway-v1, Seaquest-v1, SpaceInvaders-v1)"""
    total_timesteps: int = 1_000_000
    """environment-step budget (the MinAtar paper trains 5M frames)"""
    seed: int = 0
    """random seed of the agent (the evaluation env uses seed + 1000)"""
    num_steps: int = 8
    """spiking simulation length T per decision"""
    neuron: str = "ternary"
    """spiking neuron of the hidden layers: ternary, lif, symmetric_ternary, current_lif"""
    encoder: str = "direct"
    """input coding: direct (the grid as input current every step) or bernoulli (rate-coded spikes)"""
    readout: str = "membrane_max"
    """Q-value read-out of the output layer: membrane_max, membrane_mean, membrane_last, spike_count"""
    policy_kwargs: str = "{}"
    """JSON of further SpikingQPolicy kwargs, e.g. '{"surrogate": "trapezoid"}'"""
    learning_rate: float = 2.5e-4
    """Adam learning rate"""
    batch_size: int = 32
    """minibatch size"""
    buffer_size: int = 100_000
    """replay buffer size"""
    learning_starts: int = 5000
    """random-action steps before learning"""
    target_update_interval: int = 1000
    """environment steps between target network updates"""
    exploration_steps: int = 100_000
    """epsilon anneals 1 -> 0.1 over this many steps"""
    eval_freq: int = 100_000
    """environment steps between greedy evaluations (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    save: str = "runs/dqn_minatar/{env}_seed{seed}.zip"
    """where to save the model ({env}, {seed} filled in, / in env ids as -; .zip added if missing); empty: don't"""
    record: str = ""
    """folder to write the run's record into (learning curve and summary, JSON); empty: don't"""
    threads: int = 1
    """torch CPU threads (1: with two trainings on a 2-core machine, torch's default count ran 7.3x slower,
    python -m snnrl_sb3.benchmarks.threads --parallel 2)"""
    device: str = "auto"
    """torch device: auto, cpu, cuda, ..."""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    if minatar is None:
        raise SystemExit("MinAtar is not installed: pip install minatar (GPL-3.0, optional)")
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    minatar.gym.register_envs()  # gymnasium 1.x: MinAtar envs exist only after this call
    env = Monitor(gym.make(args.env_id))
    eval_env = Monitor(gym.make(args.env_id))
    eval_env.reset(seed=args.seed + 1000)
    policy_kwargs = dict(num_steps=args.num_steps, neuron=args.neuron, encoder=args.encoder,
                         readout=args.readout, **json.loads(args.policy_kwargs))
    model = DQN(SpikingQPolicy, env, learning_rate=args.learning_rate, batch_size=args.batch_size,
                buffer_size=args.buffer_size, learning_starts=args.learning_starts, gamma=0.99,
                target_update_interval=args.target_update_interval, train_freq=1, gradient_steps=1,
                exploration_initial_eps=1.0, exploration_final_eps=0.1,
                exploration_fraction=min(1.0, args.exploration_steps / max(args.total_timesteps, 1)),
                policy_kwargs=policy_kwargs, seed=args.seed, device=args.device, verbose=0)
    print(f"{args.env_id}: observations {env.observation_space}, body {model.policy.net_arch} "
          f"({type(model.q_net.features_extractor).__name__}), T={args.num_steps}", flush=True)
    curve = LearningCurve(name=f"{args.env_id} seed {args.seed}: ")
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=args.eval_freq,
                              deterministic=True, callback_after_eval=curve, verbose=0)
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=[evaluation] + ([ProgressBar()] if args.progress_bar else []))
    seconds = time.perf_counter() - start
    if not curve.curve or curve.curve[-1][0] != model.num_timesteps:
        curve.evaluate(model)  # no scheduled evaluation at the last step
    mean, std = curve.curve[-1][1:]
    print(f"{args.env_id} seed {args.seed}: eval return {mean:.2f} ± {std:.2f} ({args.eval_episodes} episodes, "
          f"best {curve.best:.2f}) after {model.num_timesteps:,} steps in {seconds:.0f} s", flush=True)
    if args.save:
        save_model(model, args.save.format(env=args.env_id.replace("/", "-"), seed=args.seed))
    if args.record:
        record = dict(tag=args.env_id, seed=args.seed, env_id=args.env_id, steps=model.num_timesteps,
                      budget=args.total_timesteps, curve=curve.curve, final=mean, best=curve.best, seconds=seconds,
                      policy_kwargs=policy_kwargs, args=asdict(args))
        name = args.env_id.replace("/", "-")
        print(f"wrote {write_record(os.path.join(args.record, f'{name}_seed{args.seed}.json'), record)}")


if __name__ == "__main__":
    main()
