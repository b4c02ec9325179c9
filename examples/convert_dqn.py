"""Train an ANN DQN on CartPole-v1 (rl-zoo3 settings), convert it to a spiking DQN, and compare.

    python examples/convert_dqn.py                       # train, convert at T = 8, 16, 32, 64
    python examples/convert_dqn.py --ann-path runs/ann   # reuse a saved ANN model
    python examples/convert_dqn.py --help

For each T it prints the converted agent's evaluation return, its ratio to the ANN's, and the
fraction of calibration observations on which both choose the same action; ``--plot`` writes
return vs T as a PNG.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from snnrl_sb3.cli import parse_args
from snnrl_sb3.conversion import action_agreement, collect_observations, convert_dqn


@dataclass
class Args:
    """ANN -> SNN conversion of a DQN on CartPole-v1."""

    env_id: str = "CartPole-v1"
    """gymnasium environment id"""
    steps: int = 50_000
    """ANN training steps (rl-zoo3: 50k)"""
    seed: int = 0
    """random seed"""
    ann_path: str = ""
    """load this saved ANN DQN instead of training one (it is saved there after training otherwise)"""
    num_steps: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    """simulation lengths T to convert at"""
    normalization: str = "data"
    """weight normalisation: data (99.9th percentile), fixed (seed 002: x10 per layer) or none"""
    neuron: str = "if"
    """if (integrate-and-fire) or lif"""
    encoder: str = "direct"
    """direct or bernoulli (inputs in [0, 1] only)"""
    calibration_steps: int = 2000
    """observations gathered from the ANN's own play for normalisation and agreement"""
    eval_episodes: int = 20
    """evaluation episodes per model"""
    plot: str = ""
    """write return vs T to this PNG"""
    threads: int = 1
    """torch threads"""
    progress_bar: bool = True
    """show a progress bar while training"""


def main() -> None:
    args = parse_args(Args)
    torch.set_num_threads(args.threads)
    env = make_vec_env(args.env_id, n_envs=1, seed=args.seed)
    if args.ann_path and os.path.exists(args.ann_path + ".zip"):
        ann = DQN.load(args.ann_path, env=env)
    else:
        # rl-zoo3's CartPole-v1 DQN; the best checkpoint of periodic evaluation is the one converted
        ann = DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                  gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                  exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
                  seed=args.seed)
        best_dir = args.ann_path or "runs/convert_dqn"
        callback = EvalCallback(make_vec_env(args.env_id, n_envs=1, seed=args.seed + 100), eval_freq=2500,
                                n_eval_episodes=10, best_model_save_path=best_dir, verbose=0)
        start = time.perf_counter()
        ann.learn(args.steps, callback=callback, progress_bar=args.progress_bar)
        print(f"trained the ANN for {args.steps} steps in {time.perf_counter() - start:.0f} s")
        best = os.path.join(best_dir, "best_model")
        if os.path.exists(best + ".zip"):  # no evaluation ran on very short budgets: keep the last model
            ann = DQN.load(best, env=env)
    ann_return, _ = evaluate_policy(ann, env, n_eval_episodes=args.eval_episodes)
    observations = collect_observations(ann, env, args.calibration_steps, seed=args.seed)
    print(f"ANN return {ann_return:.1f}")
    print("| T | SNN return | SNN / ANN | action agreement |\n|---|---|---|---|")
    returns = []
    for steps in args.num_steps:
        snn = convert_dqn(ann, observations=observations, num_steps=steps, neuron=args.neuron,
                          normalization=args.normalization, encoder=args.encoder)
        mean, _ = evaluate_policy(snn, env, n_eval_episodes=args.eval_episodes)
        agreement = action_agreement(ann, snn, observations)
        returns.append(mean)
        print(f"| {steps} | {mean:.1f} | {mean / ann_return:.0%} | {agreement:.3f} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(args.num_steps, returns, "o-", label=f"converted SNN ({args.neuron}, {args.normalization})")
        ax.axhline(ann_return, color="k", ls="--", label="ANN")
        ax.set(xscale="log", xlabel="simulation steps T", ylabel="evaluation return", title=args.env_id)
        ax.set_xticks(args.num_steps, [str(t) for t in args.num_steps])
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    best = max(range(len(returns)), key=lambda i: returns[i])
    print(f"best: T={args.num_steps[best]} reaches {returns[best] / ann_return:.0%} of the ANN's return "
          f"({returns[best]:.1f} / {ann_return:.1f})")


if __name__ == "__main__":
    main()
