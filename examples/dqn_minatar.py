"""Spiking DQN on MinAtar (stock SB3 DQN + snnrl_sb3.SpikingQPolicy, MinAtar DQN body).

    pip install minatar            # GPL-3.0: an optional extra, not a dependency of snnrl_sb3
    python examples/dqn_minatar.py --env-id MinAtar/Breakout-v1 --steps 1000000

MinAtar observations are 10x10xC bool grids (channels last). SB3 does not treat them as images
(not uint8) and NatureCNN cannot take 10x10 inputs, so ``SpikingQPolicy`` picks its ``small_cnn``
body automatically: the MinAtar paper's conv 16@3x3 -> FC 128, with spiking neurons after both.
Hyperparameters follow the MinAtar DQN (Young & Tian, 2019) as in snnrl_sb3/hyperparams/dqn.yml.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from snnrl_sb3.cli import parse_args


@dataclass
class Args:
    """Spiking DQN on MinAtar (stock SB3 DQN + snnrl_sb3.SpikingQPolicy)."""

    env_id: str = "MinAtar/Breakout-v1"
    steps: int = 1_000_000
    seed: int = 0
    num_steps: int = 8
    neuron: str = "ternary"
    encoder: str = "direct"
    decoder: str = "membrane_max"
    policy_kwargs: str = "{}"
    learning_rate: float = 2.5e-4
    batch_size: int = 32
    buffer_size: int = 100_000
    learning_starts: int = 5000
    target_update_interval: int = 1000
    exploration_steps: int = 100_000
    eval_episodes: int = 10
    save: str = ""
    threads: int = 1
    device: str = "auto"
    progress_bar: bool = True


HELP = {
    "steps": "total environment steps (the MinAtar paper trains 5M frames)",
    "num_steps": "simulation steps T per forward",
    "neuron": "ternary | lif | symmetric_ternary | current_lif",
    "encoder": "direct | bernoulli",
    "decoder": "membrane_max | membrane_mean | membrane_last | spike_count",
    "policy_kwargs": "JSON of further SpikingQPolicy kwargs",
    "exploration_steps": "epsilon anneals 1 -> 0.1 over this many steps",
    "save": "path to save the trained model (.zip); empty: don't save",
    "threads": "torch CPU threads",
}


def main() -> None:
    args = parse_args(Args, helps=HELP)
    try:
        import minatar.gym
    except ImportError:
        raise SystemExit("MinAtar is not installed: pip install minatar (GPL-3.0, optional)") from None
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from snnrl_sb3 import SpikingQPolicy
    from snnrl_sb3.utils import tune_allocator

    tune_allocator()  # keep freed [T, B, ...] buffers: avoids page faults (opt-in, see its docs)
    torch.set_num_threads(args.threads)
    minatar.gym.register_envs()  # gymnasium 1.x: MinAtar envs exist only after this call
    env = Monitor(gym.make(args.env_id))
    policy_kwargs = dict(num_steps=args.num_steps, neuron=args.neuron, encoder=args.encoder,
                         decoder=args.decoder, **json.loads(args.policy_kwargs))
    model = DQN(SpikingQPolicy, env, learning_rate=args.learning_rate, batch_size=args.batch_size,
                buffer_size=args.buffer_size, learning_starts=args.learning_starts, gamma=0.99,
                target_update_interval=args.target_update_interval, train_freq=1, gradient_steps=1,
                exploration_initial_eps=1.0, exploration_final_eps=0.1,
                exploration_fraction=min(1.0, args.exploration_steps / max(args.steps, 1)),
                policy_kwargs=policy_kwargs, seed=args.seed, device=args.device, verbose=0)
    print(f"{args.env_id}: observations {env.observation_space}, body {model.policy.net_arch} "
          f"({type(model.q_net.features_extractor).__name__}), T={args.num_steps}")
    start = time.perf_counter()
    model.learn(args.steps, progress_bar=args.progress_bar)
    seconds = time.perf_counter() - start
    eval_env = Monitor(gym.make(args.env_id))
    eval_env.reset(seed=args.seed + 1000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"{args.env_id} seed {args.seed}: eval return {mean:.2f} +/- {std:.2f} "
          f"({args.eval_episodes} episodes) after {args.steps} steps in {seconds:.0f} s")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
