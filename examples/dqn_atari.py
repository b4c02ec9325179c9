"""Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3.SpikingQPolicy), seed-000 configuration.

    pip install "snnrl-sb3[atari]" opencv-python-headless
    python examples/dqn_atari.py --env-id BreakoutNoFrameskip-v4 --steps 10000000

SB3's Atari preprocessing (AtariWrapper: no-op reset, frame skip 4, 84x84 grey, episodic life,
clipped reward; 4 stacked frames, channels first) and rl-zoo3's DQN Atari settings, with the
network of Ghoreishee et al. (seed 000): spiking NatureCNN (3 conv + 2 FC), asymmetric ternary
neurons, Bernoulli rate-coded pixels, T = 20, spike-count read-out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from snnrl_sb3.cli import parse_args


@dataclass
class Args:
    """Spiking DQN on Atari (stock SB3 DQN + snnrl_sb3.SpikingQPolicy, seed-000 network)."""

    env_id: str = "BreakoutNoFrameskip-v4"
    steps: int = 10_000_000
    seed: int = 0
    num_steps: int = 20
    neuron: str = "ternary"
    encoder: str = "bernoulli"
    decoder: str = "spike_count"
    dueling: bool = False
    policy_kwargs: str = "{}"
    learning_rate: float = 1e-4
    batch_size: int = 32
    buffer_size: int = 100_000
    learning_starts: int = 100_000
    target_update_interval: int = 1000
    train_freq: int = 4
    exploration_fraction: float = 0.1
    exploration_final_eps: float = 0.01
    n_envs: int = 1
    eval_episodes: int = 5
    save: str = ""
    threads: int = 1
    device: str = "auto"
    progress_bar: bool = True


HELP = {
    "steps": "total environment steps (rl-zoo3: 1e7)",
    "num_steps": "simulation steps T per forward (seed 000: 20)",
    "neuron": "ternary | lif | symmetric_ternary | current_lif",
    "encoder": "bernoulli (seed 000) | direct",
    "decoder": "spike_count (seed 000) | membrane_max (DSQN) | membrane_mean | membrane_last",
    "dueling": "dueling read-out (seed 002's dueling DQN)",
    "policy_kwargs": "JSON of further SpikingQPolicy kwargs",
    "buffer_size": "replay size (100k frames stacks need ~5.6 GB without optimize_memory_usage)",
    "save": "path to save the trained model (.zip); empty: don't save",
    "threads": "torch CPU threads",
}


def main() -> None:
    args = parse_args(Args, helps=HELP)
    try:
        import ale_py
        import cv2  # noqa: F401  (SB3's AtariWrapper resizes frames with OpenCV)
    except ImportError as err:
        raise SystemExit(f"Atari needs ale-py and OpenCV ({err}): pip install ale-py opencv-python-headless") from None
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecFrameStack

    from snnrl_sb3 import SpikingQPolicy
    from snnrl_sb3.utils import tune_allocator

    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env(args.env_id, n_envs=args.n_envs, seed=args.seed), n_stack=4)
    policy_kwargs = dict(num_steps=args.num_steps, neuron=args.neuron, encoder=args.encoder,
                         decoder=args.decoder, dueling=args.dueling, **json.loads(args.policy_kwargs))
    model = DQN(SpikingQPolicy, env, learning_rate=args.learning_rate, batch_size=args.batch_size,
                buffer_size=args.buffer_size, learning_starts=args.learning_starts,
                target_update_interval=args.target_update_interval, train_freq=args.train_freq, gradient_steps=1,
                exploration_fraction=args.exploration_fraction, exploration_final_eps=args.exploration_final_eps,
                optimize_memory_usage=False, policy_kwargs=policy_kwargs, seed=args.seed, device=args.device,
                verbose=0)
    print(f"{args.env_id}: observations {model.observation_space.shape}, "
          f"spiking NatureCNN + FC {model.policy.net_arch}, T={args.num_steps}, {args.neuron}, {args.encoder}")
    start = time.perf_counter()
    model.learn(args.steps, progress_bar=args.progress_bar)
    seconds = time.perf_counter() - start
    eval_env = VecFrameStack(make_atari_env(args.env_id, n_envs=1, seed=args.seed + 1000), n_stack=4)
    # greedy (deterministic=True: frozen Bernoulli noise); the AtariWrapper's episodic life makes an
    # "episode" one life here, as in SB3's own Atari evaluation
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"{args.env_id} seed {args.seed}: eval return {mean:.2f} +/- {std:.2f} "
          f"({args.eval_episodes} episodes) after {args.steps} steps in {seconds:.0f} s")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
