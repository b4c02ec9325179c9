"""Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3.SpikingQPolicy), seed-000 configuration.

    pip install "snnrl-sb3[atari]"
    python examples/dqn_atari.py --env-id BreakoutNoFrameskip-v4 --total-timesteps 10000000
    python examples/dqn_atari.py --help

SB3's Atari preprocessing (AtariWrapper: no-op reset, frame skip 4, 84x84 grey, episodic life,
clipped reward; 4 stacked frames, channels first) and rl-zoo3's DQN Atari settings, with the
network of Ghoreishee et al. (seed 000): spiking NatureCNN (3 conv + 2 FC), asymmetric ternary
neurons, Bernoulli rate-coded pixels, T = 20, spike-count read-out. Every evaluation is printed
as it happens; the model is saved (``--save``) with the line that loads it.
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
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

from snnrl_sb3 import SpikingQPolicy
from snnrl_sb3.results import LearningCurve, ProgressBar, save_model, write_record
from snnrl_sb3.utils import tune_allocator

MISSING = ""
try:
    import ale_py
    import cv2  # noqa: F401  (SB3's AtariWrapper resizes frames with OpenCV)
except ImportError as err:  # optional; main() says how to install them
    ale_py, MISSING = None, str(err)


@dataclass
class Args:
    """Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3.SpikingQPolicy, seed-000 network)."""

    env_id: str = "BreakoutNoFrameskip-v4"
    """Atari environment id (a NoFrameskip-v4 id: SB3's AtariWrapper skips frames itself)"""
    total_timesteps: int = 10_000_000
    """environment-step budget, summed over the --n-envs envs (rl-zoo3: 1e7)"""
    seed: int = 0
    """random seed of the agent (the evaluation env uses seed + 1000)"""
    num_steps: int = 20
    """spiking simulation length T per decision (seed 000: 20)"""
    neuron: str = "ternary"
    """spiking neuron: ternary (seed 000), lif, symmetric_ternary, current_lif"""
    encoder: str = "bernoulli"
    """pixel coding: bernoulli (seed 000, rate-coded spikes) or direct"""
    readout: str = "spike_count"
    """Q-value read-out: spike_count (seed 000), membrane_max (DSQN), membrane_mean, membrane_last"""
    dueling: bool = False
    """dueling read-out (seed 002's dueling DQN)"""
    policy_kwargs: str = "{}"
    """JSON of further SpikingQPolicy kwargs, e.g. '{"surrogate": "trapezoid"}'"""
    learning_rate: float = 1e-4
    """Adam learning rate"""
    batch_size: int = 32
    """minibatch size"""
    buffer_size: int = 100_000
    """replay size (100k stacks of frames need ~5.6 GB without optimize_memory_usage)"""
    learning_starts: int = 100_000
    """random-action steps before learning"""
    target_update_interval: int = 1000
    """environment steps between target network updates"""
    train_freq: int = 4
    """environment steps between gradient steps"""
    exploration_fraction: float = 0.1
    """fraction of the budget over which epsilon anneals from 1 to --exploration-final-eps"""
    exploration_final_eps: float = 0.01
    """final epsilon"""
    n_envs: int = 1
    """parallel training environments"""
    eval_freq: int = 500_000
    """environment steps between greedy evaluations (0: only at the end)"""
    eval_episodes: int = 5
    """episodes per evaluation (whole games, raw score: SB3's Monitor sits below the AtariWrapper)"""
    save: str = "runs/dqn_atari/{env}_seed{seed}.zip"
    """where to save the model ({env}, {seed} filled in; .zip added if missing); empty: don't"""
    record: str = ""
    """folder to write the run's record into (learning curve and summary, JSON); empty: don't"""
    threads: int = 1
    """torch CPU threads (1: on a 2-core machine, SB3 training with torch's default count ran 5.7x slower)"""
    device: str = "auto"
    """torch device: auto, cpu, cuda, ..."""
    progress_bar: bool = True
    """show a progress bar (tqdm + rich)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__)
    if ale_py is None:
        raise SystemExit(f"Atari needs ale-py and OpenCV ({MISSING}): pip install ale-py opencv-python-headless")
    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env(args.env_id, n_envs=args.n_envs, seed=args.seed), n_stack=4)
    # channels first, as DQN wraps the training env
    eval_env = VecTransposeImage(VecFrameStack(make_atari_env(args.env_id, n_envs=1, seed=args.seed + 1000), n_stack=4))
    policy_kwargs = dict(num_steps=args.num_steps, neuron=args.neuron, encoder=args.encoder,
                         readout=args.readout, dueling=args.dueling, **json.loads(args.policy_kwargs))
    model = DQN(SpikingQPolicy, env, learning_rate=args.learning_rate, batch_size=args.batch_size,
                buffer_size=args.buffer_size, learning_starts=args.learning_starts,
                target_update_interval=args.target_update_interval, train_freq=args.train_freq, gradient_steps=1,
                exploration_fraction=args.exploration_fraction, exploration_final_eps=args.exploration_final_eps,
                optimize_memory_usage=False, policy_kwargs=policy_kwargs, seed=args.seed, device=args.device,
                verbose=0)
    print(f"{args.env_id}: observations {model.observation_space.shape}, spiking NatureCNN + FC "
          f"{model.policy.net_arch}, T={args.num_steps}, {args.neuron}, {args.encoder}", flush=True)
    # greedy (deterministic=True: frozen Bernoulli noise); EvalCallback counts calls, one per n_envs steps
    curve = LearningCurve(name=f"{args.env_id} seed {args.seed}: ")
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=args.eval_freq // args.n_envs,
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
        save_model(model, args.save.format(env=args.env_id, seed=args.seed))
    if args.record:
        record = dict(tag=args.env_id, seed=args.seed, env_id=args.env_id, steps=model.num_timesteps,
                      budget=args.total_timesteps, curve=curve.curve, final=mean, best=curve.best, seconds=seconds,
                      policy_kwargs=policy_kwargs, args=asdict(args))
        print(f"wrote {write_record(os.path.join(args.record, f'{args.env_id}_seed{args.seed}.json'), record)}")


if __name__ == "__main__":
    main()
